// Kubernetes Events about objects, the way Flux's controllers emit them:
// core/v1 Events with type Normal|Warning, a reason ("ReconciliationSucceeded",
// "GitOperationFailed", ...), source.component and reportingController set to
// the controller name, and optional annotations (e.g. the revision).
// Repeats of the same (object, type, reason, message) within 10 minutes bump
// count/lastTimestamp on one Event instead of creating new ones, and each
// object gets a token bucket (burst 25, one per 5 minutes), so a hot loop
// cannot flood the API.
#ifndef GITOPS_COMMON_KUBE_EVENTS_H_
#define GITOPS_COMMON_KUBE_EVENTS_H_

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kube/kube_client.h"
#include "nlohmann/json.hpp"

namespace gitops::common {

inline constexpr char kEventTypeNormal[] = "Normal";
inline constexpr char kEventTypeWarning[] = "Warning";

class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  // `involved` is the object (apiVersion, kind, metadata). Never blocks on
  // the API and never fails the caller.
  virtual void Event(const nlohmann::json& involved, absl::string_view type,
                     absl::string_view reason, absl::string_view message,
                     const std::map<std::string, std::string>& annotations = {}) = 0;
};

// Writes Events through a KubeClient from a background thread. Thread-safe.
class KubeEventRecorder : public EventRecorder {
 public:
  struct Options {
    std::string component;  // e.g. "source-controller"
    std::string host;
    absl::Duration aggregation_window = absl::Minutes(10);
    int burst = 25;
    absl::Duration refill_every = absl::Minutes(5);
    size_t max_pending = 1000;
  };
  KubeEventRecorder(KubeClient& client, Options options);
  ~KubeEventRecorder() override;  // flushes and stops

  void Event(const nlohmann::json& involved, absl::string_view type, absl::string_view reason,
             absl::string_view message,
             const std::map<std::string, std::string>& annotations = {}) override;
  // Waits until every queued event has been written (or dropped).
  void Flush();
  int64_t dropped() const;

 private:
  struct Pending {
    nlohmann::json event;
    std::string aggregate_key;
  };
  struct Seen {
    std::string ns, name;
    int64_t count = 1;
    absl::Time last;
  };
  struct Bucket {
    double tokens;
    absl::Time last;
  };
  void Run();
  void Write(Pending p);

  KubeClient& client_;
  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stop_ = false;
  int in_flight_ = 0;
  int64_t dropped_ = 0;
  std::map<std::string, Bucket> buckets_;  // by involved uid
  std::map<std::string, Seen> seen_;       // by aggregate key (writer thread only)
  std::thread thread_;
};

}  // namespace gitops::common

#endif  // GITOPS_COMMON_KUBE_EVENTS_H_
