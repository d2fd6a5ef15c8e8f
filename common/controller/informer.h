// An informer: lists one kind, then watches it, keeping an in-memory cache
// and calling handlers on add/update/delete. Survives the API server going
// away (reconnects with capped backoff), resumes from the last seen
// resourceVersion (bookmarks included), and relists on 410 Gone, turning the
// difference into add/update/delete calls so no change is lost.
//
// Handlers run on the informer's thread, one at a time; keep them short (e.g.
// enqueue a key). Cache reads are thread-safe.
#ifndef GITOPS_COMMON_CONTROLLER_INFORMER_H_
#define GITOPS_COMMON_CONTROLLER_INFORMER_H_

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/kube/kube_client.h"
#include "nlohmann/json.hpp"

namespace gitops::common {

struct InformerHandlers {
  std::function<void(const nlohmann::json& obj)> on_add;
  std::function<void(const nlohmann::json& old_obj, const nlohmann::json& new_obj)> on_update;
  std::function<void(const nlohmann::json& obj)> on_delete;
};

struct InformerOptions {
  GroupVersionKind gvk;
  std::string namespace_;  // "" = all namespaces
  std::string label_selector;
  std::string field_selector;
  int64_t page_size = 500;
  absl::Duration max_backoff = absl::Seconds(30);
  // Server-side watch timeout; the informer re-watches when it expires.
  int watch_timeout_seconds = 300;
};

// "namespace/name", or "name" for cluster-scoped objects.
std::string ObjectKey(const nlohmann::json& obj);
// The inverse: {namespace, name} ({"", name} for cluster-scoped keys).
std::pair<std::string, std::string> SplitObjectKey(absl::string_view key);

class Informer {
 public:
  Informer(KubeClient& client, InformerOptions options, InformerHandlers handlers);
  ~Informer();  // stops
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();
  void Stop();
  // True once the first list has been delivered to the handlers.
  bool HasSynced() const { return synced_.HasBeenNotified(); }
  bool WaitForSync(absl::Duration timeout) const {
    return synced_.WaitForNotificationWithTimeout(timeout);
  }

  std::optional<nlohmann::json> Get(const std::string& key) const;
  std::vector<nlohmann::json> List() const;
  std::vector<std::string> Keys() const;
  // resourceVersion the cache is current as of.
  std::string ResourceVersion() const;
  // How many full lists were done (1 + relists); for tests.
  int list_count() const { return list_count_.load(); }

 private:
  void Run();
  absl::Status ListAndReplace();
  absl::Status WatchOnce();
  void SleepInterruptible(absl::Duration d);

  KubeClient& client_;
  const InformerOptions options_;
  const InformerHandlers handlers_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  absl::Notification synced_;
  std::atomic<int> list_count_{0};

  mutable absl::Mutex mu_;
  std::map<std::string, nlohmann::json> cache_ ABSL_GUARDED_BY(mu_);
  std::string resource_version_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gitops::common

#endif  // GITOPS_COMMON_CONTROLLER_INFORMER_H_
