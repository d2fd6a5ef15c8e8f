// Runs N workers that take keys from a WorkQueue and reconcile them, with
// Flux's requeue policy: an error requeues with backoff, success forgets the
// failures and requeues after `requeue_after` (with jitter) when set.
// Thread-safe; Stop() lets in-flight reconciles finish (drain).
#ifndef GITOPS_COMMON_CONTROLLER_CONTROLLER_H_
#define GITOPS_COMMON_CONTROLLER_CONTROLLER_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/controller/work_queue.h"

namespace gitops::common {

struct ReconcileResult {
  absl::Status status;                                  // not OK: retry with backoff
  absl::Duration requeue_after = absl::ZeroDuration();  // OK: run again after this
};

using ReconcileFn = std::function<ReconcileResult(const std::string& key)>;

struct ControllerOptions {
  std::string name = "controller";  // metrics label
  int workers = 4;                  // --concurrent
  double requeue_jitter = 0.05;
};

class Controller {
 public:
  Controller(ControllerOptions options, WorkQueue& queue, ReconcileFn reconcile);
  ~Controller();  // Stop()

  void Start();
  // Shuts the queue down and waits for the workers to finish their current key.
  void Stop();
  int64_t reconciles() const { return reconciles_.load(); }

 private:
  void Worker();
  const ControllerOptions options_;
  WorkQueue& queue_;
  const ReconcileFn reconcile_;
  std::vector<std::thread> workers_;
  std::atomic<int64_t> reconciles_{0};
};

}  // namespace gitops::common

#endif  // GITOPS_COMMON_CONTROLLER_CONTROLLER_H_
