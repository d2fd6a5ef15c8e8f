// Patches as kustomize applies them: strategic merge (with the merge keys of
// the built-in kinds, `$patch` directives, null deletes) and JSON 6902.
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_PATCH_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_PATCH_H_

#include "absl/status/status.h"
#include "kustomize-controller/kustomize/node.h"

namespace gitops::kustomize {

// Merges `patch` into `target` in place. Sets *deleted when the patch is a
// top-level `$patch: delete` (the caller drops the resource).
absl::Status ApplyStrategicMerge(Node& target, const Node& patch, bool* deleted);

// Applies a JSON 6902 operation list. InvalidArgument on a bad op or path,
// FailedPrecondition when a `test` fails.
absl::Status ApplyJson6902(Node& target, const Node& ops);

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_PATCH_H_
