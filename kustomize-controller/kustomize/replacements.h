// kustomize `replacements`: copy a field of one resource into fields of
// others, with kustomize's path syntax (dots, `[name=value]` element
// selectors, list indexes) and options (delimiter, index, create).
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_REPLACEMENTS_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_REPLACEMENTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kustomize-controller/kustomize/engine.h"
#include "kustomize-controller/kustomize/node.h"

namespace gitops::kustomize {

// Applies `replacements` (each a map with source and targets) in order.
// InvalidArgument when a source is missing or ambiguous, or a target field
// cannot be found (and `create` is off).
absl::Status ApplyReplacements(std::vector<Resource>* ra, const std::vector<Node>& replacements);

// Splits a replacement field path on dots outside brackets.
std::vector<std::string> SplitReplacementPath(const std::string& path);

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_REPLACEMENTS_H_
