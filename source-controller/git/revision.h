// Flux revision strings: "<name>@sha1:<hex>" or "sha1:<hex>". Pure functions.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_REVISION_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_REVISION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::source {

struct ParsedRevision {
  std::string name;       // "main", "v1.0.0", "refs/pull/1/head"; empty when commit-only
  std::string algorithm;  // "sha1" (or "sha256")
  std::string hash;       // lowercase hex
};

// "<name>@sha1:<hex>", or "sha1:<hex>" when name is empty.
std::string FormatRevision(absl::string_view name, absl::string_view commit_hex);

// Parses the formats above. Also accepts Flux's legacy "<name>/<hex>" and a
// bare hex digest. InvalidArgument otherwise.
absl::StatusOr<ParsedRevision> ParseRevision(absl::string_view revision);

// True when both revisions name the same commit (names are not compared, so
// "main@sha1:x" equals "sha1:x").
bool SameCommit(absl::string_view a, absl::string_view b);

// "refs/heads/main" -> "main", "refs/tags/v1" -> "v1"; other refs unchanged.
std::string ShortRefName(absl::string_view full_ref);

// True for 40 (sha1) or 64 (sha256) hex digits.
bool IsFullHexHash(absl::string_view hex);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_REVISION_H_
