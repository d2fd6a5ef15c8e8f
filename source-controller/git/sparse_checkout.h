// spec.sparseCheckout: which paths of a tree are written to the checkout.
// Pure functions.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_SPARSE_CHECKOUT_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_SPARSE_CHECKOUT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::source {

struct SparseDir {
  std::string path;  // normalized: "a/b", no leading "./" or trailing "/"
  std::string spec;  // as the user wrote it, for messages
};

// Normalizes spec.sparseCheckout entries: leading "./" (Flux trims it) and
// trailing "/" are dropped, "//" and "/./" collapse. An entry that names the
// root ("", ".", "./") selects the whole tree, and so does an empty list:
// both return an empty vector. InvalidArgument for absolute paths, ".."
// components and control characters.
absl::StatusOr<std::vector<SparseDir>> NormalizeSparseCheckout(
    const std::vector<std::string>& dirs);

enum class SparseMatch {
  kInclude,   // the path is one of the dirs or inside one: write it
  kAncestor,  // a dir lies below the path: create it and descend
  kExclude,   // neither: skip it and everything below it
};

// Classifies `path` (relative to the root, '/'-separated) against `dirs`
// (normalized, non-empty). Matching is by whole path components: "apps"
// includes "apps/x" but not "apps-old" or "apps.yaml".
SparseMatch MatchSparse(const std::vector<SparseDir>& dirs, absl::string_view path);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_SPARSE_CHECKOUT_H_
