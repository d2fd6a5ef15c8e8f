// Writes a reconciler makes to its own object: finalizers and status. Both
// send a JSON merge patch of just the difference, so they do not clobber
// fields other writers own.
#ifndef GITOPS_COMMON_CONTROLLER_OBJECT_PATCH_H_
#define GITOPS_COMMON_CONTROLLER_OBJECT_PATCH_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/kube/kube_client.h"
#include "nlohmann/json.hpp"

namespace gitops::common {

bool HasFinalizer(const nlohmann::json& obj, absl::string_view finalizer);
// Adds/removes `finalizer` (no request when nothing changes). The patch
// carries metadata.resourceVersion, so a concurrent change gives Aborted.
// On success `obj` becomes the server's copy.
absl::Status AddFinalizer(KubeClient& client, nlohmann::json& obj, absl::string_view finalizer);
absl::Status RemoveFinalizer(KubeClient& client, nlohmann::json& obj, absl::string_view finalizer);

// Patches the status subresource from `before` to `after` (merge patch of
// the difference; no request when equal). On success `after` becomes the
// server's copy. Once per reconcile, like Flux's deferred patch.
absl::Status PatchStatus(KubeClient& client, const nlohmann::json& before, nlohmann::json& after,
                         const std::string& field_manager);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_CONTROLLER_OBJECT_PATCH_H_
