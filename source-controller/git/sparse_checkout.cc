#include "source-controller/git/sparse_checkout.h"

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace gitops::source {

absl::StatusOr<std::vector<SparseDir>> NormalizeSparseCheckout(
    const std::vector<std::string>& dirs) {
  std::vector<SparseDir> out;
  bool whole_tree = false;
  for (const std::string& spec : dirs) {
    for (char c : spec) {
      if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sparse checkout dir '", absl::CHexEscape(spec), "' contains a control character"));
      }
    }
    if (absl::StartsWith(spec, "/")) {
      return absl::InvalidArgumentError(
          absl::StrCat("sparse checkout dir '", spec, "' must be relative to the repository root"));
    }
    std::vector<absl::string_view> parts;
    for (absl::string_view part : absl::StrSplit(spec, '/', absl::SkipEmpty())) {
      if (part == ".") continue;
      if (part == "..") {
        return absl::InvalidArgumentError(
            absl::StrCat("sparse checkout dir '", spec, "' must not contain '..'"));
      }
      parts.push_back(part);
    }
    if (parts.empty()) {
      whole_tree = true;
      continue;
    }
    out.push_back(SparseDir{absl::StrJoin(parts, "/"), spec});
  }
  if (whole_tree) out.clear();
  return out;
}

SparseMatch MatchSparse(const std::vector<SparseDir>& dirs, absl::string_view path) {
  bool ancestor = false;
  for (const SparseDir& dir : dirs) {
    absl::string_view d = dir.path;
    if (absl::StartsWith(path, d) && (path.size() == d.size() || path[d.size()] == '/')) {
      return SparseMatch::kInclude;
    }
    if (absl::StartsWith(d, path) && d.size() > path.size() && d[path.size()] == '/') {
      ancestor = true;
    }
  }
  return ancestor ? SparseMatch::kAncestor : SparseMatch::kExclude;
}

}  // namespace gitops::source
