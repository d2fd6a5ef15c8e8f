// The Kubernetes API as the controllers use it: typed-by-GVK verbs over JSON
// objects (nlohmann::json), errors as absl::Status carrying the server's
// metav1.Status reason. Implementations: HttpKubeClient (libcurl).
//
// Error codes (from the HTTP status / metav1.Status reason):
//   NotFound           404 NotFound, or a kind the server does not serve
//   AlreadyExists      409 AlreadyExists
//   Aborted            409 Conflict (stale resourceVersion; SSA field conflict)
//   InvalidArgument    400 BadRequest, 422 Invalid, 415
//   Unauthenticated    401;  PermissionDenied 403
//   OutOfRange         410 Gone / Expired (resourceVersion too old: relist)
//   ResourceExhausted  429 after retries;  Unavailable 5xx / connection errors
// KubeReason(status) gives the metav1.Status reason ("Conflict", "Invalid").
#ifndef GITOPS_COMMON_KUBE_KUBE_CLIENT_H_
#define GITOPS_COMMON_KUBE_KUBE_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace gitops::common {

struct GroupVersionKind {
  std::string group;  // "" for core
  std::string version;
  std::string kind;

  // From an object's apiVersion ("apps/v1", "v1") and kind.
  static GroupVersionKind FromApiVersion(absl::string_view api_version, absl::string_view kind);
  // From an object's apiVersion and kind fields.
  static GroupVersionKind Of(const nlohmann::json& obj);
  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  bool operator==(const GroupVersionKind& o) const {
    return group == o.group && version == o.version && kind == o.kind;
  }
  bool operator<(const GroupVersionKind& o) const {
    return std::tie(group, version, kind) < std::tie(o.group, o.version, o.kind);
  }
};

// What discovery says about a kind.
struct ResourceMapping {
  GroupVersionKind gvk;
  std::string resource;  // plural, e.g. "deployments"
  bool namespaced = true;
  bool has_status = false;  // serves the status subresource
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;           // page size; 0 = everything in one response
  std::string continue_token;  // from a previous page's metadata.continue
  std::string resource_version;
};

struct WatchOptions {
  std::string resource_version;  // "" = send current objects as ADDED first
  std::string label_selector;
  std::string field_selector;
  bool allow_bookmarks = true;
  int timeout_seconds = 0;  // server-side timeout; 0 = none
  // Set to true from another thread to end the watch (checked at least
  // once a second).
  const std::atomic<bool>* cancel = nullptr;
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark };
  Type type;
  nlohmann::json object;
};

struct WriteOptions {
  std::string field_manager;  // defaults to the client's user agent
  bool dry_run = false;       // dryRun=All
  bool force = false;         // server-side apply: take over conflicting fields
};

struct DeleteOptions {
  std::string propagation_policy;  // "", "Background", "Foreground", "Orphan"
  bool dry_run = false;
  std::string precondition_uid;
  std::string precondition_resource_version;
};

enum class PatchType { kMerge, kJson, kStrategicMerge };

class KubeClient {
 public:
  virtual ~KubeClient() = default;

  // Discovery: resource name and scope of a kind. Unknown kinds trigger a
  // fresh discovery of their group/version (a CRD installed later becomes
  // usable without restart). NotFound "no matches for kind ..." otherwise.
  virtual absl::StatusOr<ResourceMapping> Mapping(const GroupVersionKind& gvk) = 0;

  virtual absl::StatusOr<nlohmann::json> Get(const GroupVersionKind& gvk, absl::string_view ns,
                                             absl::string_view name) = 0;
  // The List object (items, metadata.resourceVersion, metadata.continue).
  // `ns` empty lists across namespaces.
  virtual absl::StatusOr<nlohmann::json> List(const GroupVersionKind& gvk, absl::string_view ns,
                                              const ListOptions& options) = 0;
  // Streams events to `on_event` until it returns false (OK), the server ends
  // the stream (OK), options.cancel is set (Cancelled) or an error: a 410 in
  // the stream returns OutOfRange (relist), a dropped connection Unavailable.
  virtual absl::Status Watch(const GroupVersionKind& gvk, absl::string_view ns,
                             const WatchOptions& options,
                             const std::function<bool(const WatchEvent&)>& on_event) = 0;

  // Write verbs take the whole object (apiVersion, kind, metadata.name and,
  // for namespaced kinds, metadata.namespace) and return the stored object.
  virtual absl::StatusOr<nlohmann::json> Create(const nlohmann::json& obj,
                                                const WriteOptions& options = {}) = 0;
  // PUT; with metadata.resourceVersion set, Aborted if it is stale.
  virtual absl::StatusOr<nlohmann::json> Update(const nlohmann::json& obj,
                                                const WriteOptions& options = {}) = 0;
  virtual absl::StatusOr<nlohmann::json> UpdateStatus(const nlohmann::json& obj,
                                                      const WriteOptions& options = {}) = 0;
  virtual absl::StatusOr<nlohmann::json> Patch(const GroupVersionKind& gvk, absl::string_view ns,
                                               absl::string_view name, PatchType type,
                                               const nlohmann::json& patch,
                                               const WriteOptions& options = {},
                                               bool status = false) = 0;
  // Server-side apply (application/apply-patch+yaml) of `obj` as
  // options.field_manager (required). Creates the object when missing.
  virtual absl::StatusOr<nlohmann::json> Apply(const nlohmann::json& obj,
                                               const WriteOptions& options) = 0;
  virtual absl::StatusOr<nlohmann::json> ApplyStatus(const nlohmann::json& obj,
                                                     const WriteOptions& options) = 0;
  // OK when deleted or deletion started (finalizers pending); NotFound if absent.
  virtual absl::Status Delete(const GroupVersionKind& gvk, absl::string_view ns,
                              absl::string_view name, const DeleteOptions& options = {}) = 0;

  // A client that sends Impersonate-User / Impersonate-Group headers and
  // shares this client's connection pool, rate limit and discovery cache.
  virtual std::unique_ptr<KubeClient> Impersonate(const std::string& user,
                                                  const std::vector<std::string>& groups) = 0;
};

// The metav1.Status reason the server gave ("NotFound", "Conflict", ...), or "".
std::string KubeReason(const absl::Status& status);
// The full metav1.Status body, or null.
nlohmann::json KubeStatusBody(const absl::Status& status);
// absl::IsNotFound / absl::IsAlreadyExists cover 404 and AlreadyExists.
inline bool IsConflict(const absl::Status& s) { return s.code() == absl::StatusCode::kAborted; }
inline bool IsGone(const absl::Status& s) { return s.code() == absl::StatusCode::kOutOfRange; }
// Runs `fn` until it returns something other than a Conflict (Aborted), up
// to `attempts` times, for read-modify-write loops (client-go RetryOnConflict).
absl::Status RetryOnConflict(const std::function<absl::Status()>& fn, int attempts = 5);
// Builds the status for an HTTP response: `http_code` and its body (a
// metav1.Status when the server sent one). `context` prefixes the message.
absl::Status StatusFromResponse(long http_code, absl::string_view body, absl::string_view context);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_KUBE_KUBE_CLIENT_H_
