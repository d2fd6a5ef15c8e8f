// A rate-limited work queue of string keys ("namespace/name"), with the
// semantics of client-go's workqueue:
//   * a key is queued at most once, however often it is added (de-duplication);
//   * a key handed out by Get() is not handed out again until Done(key), even
//     if re-added meanwhile (per-key exclusivity); a re-add while processing
//     queues it once more after Done;
//   * AddRateLimited() delays by base * 2^failures, capped; Forget() resets;
//   * AddAfter() delays (requeue intervals), keeping the earliest due time.
// Thread-safe. Reports workqueue_depth / workqueue_adds_total /
// workqueue_retries_total{name} to Metrics::Global().
#ifndef GITOPS_COMMON_CONTROLLER_WORK_QUEUE_H_
#define GITOPS_COMMON_CONTROLLER_WORK_QUEUE_H_

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gitops::common {

struct WorkQueueOptions {
  std::string name = "queue";  // metrics label
  // Flux's defaults: --min-retry-delay=750ms, --max-retry-delay=15m.
  absl::Duration base_delay = absl::Milliseconds(750);
  absl::Duration max_delay = absl::Minutes(15);
};

// base * 2^(failures-1), capped at max (failures >= 1).
absl::Duration ExponentialBackoff(int failures, absl::Duration base, absl::Duration max);
// `d` scaled by a random factor in [1, 1 + fraction) (requeue jitter).
absl::Duration Jitter(absl::Duration d, double fraction);

class WorkQueue {
 public:
  explicit WorkQueue(WorkQueueOptions options = {});
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Add(const std::string& key);
  void AddAfter(const std::string& key, absl::Duration delay);
  // Adds after the key's backoff and counts a failure.
  void AddRateLimited(const std::string& key);
  // Clears the key's failure count.
  void Forget(const std::string& key);
  int NumRequeues(const std::string& key) const;

  // Blocks until a key is ready; nullopt once ShutDown() was called.
  std::optional<std::string> Get();
  // Marks the key processed; re-queues it if it was added meanwhile.
  void Done(const std::string& key);
  // Wakes all Get() callers; later adds are ignored.
  void ShutDown();
  bool ShuttingDown() const;

  // Keys ready to be handed out (not counting delayed or in-process keys).
  size_t Len() const;
  // Keys waiting for a delay to pass.
  size_t Waiting() const;

 private:
  void AddLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PromoteDueLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportDepthLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const WorkQueueOptions options_;
  mutable absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> processing_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> waiting_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<absl::Time, std::string>> waiting_order_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> failures_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped when AddAfter sets a new earliest wake-up.
  uint64_t earliest_changed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gitops::common

#endif  // GITOPS_COMMON_CONTROLLER_WORK_QUEUE_H_
