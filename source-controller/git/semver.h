// Semantic versions and version constraints with the semantics of
// Masterminds/semver v3, which Flux uses for GitRepository spec.ref.semver.
// Pure values; thread-compatible.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_SEMVER_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_SEMVER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::source {

// A parsed version. Parsing is lenient like Masterminds' NewVersion: an
// optional leading "v", missing minor/patch default to 0
// ("v1.2" == "1.2.0"), optional "-prerelease" and "+metadata".
class SemVersion {
 public:
  // InvalidArgument when `text` is not a version.
  static absl::StatusOr<SemVersion> Parse(absl::string_view text);

  uint64_t major() const { return major_; }
  uint64_t minor() const { return minor_; }
  uint64_t patch() const { return patch_; }
  const std::string& prerelease() const { return prerelease_; }
  const std::string& metadata() const { return metadata_; }
  // The text it was parsed from (e.g. the tag name "v1.2.0").
  const std::string& original() const { return original_; }

  // Semver 2.0 precedence: -1, 0, 1. Metadata is ignored.
  int Compare(const SemVersion& other) const;
  bool operator<(const SemVersion& o) const { return Compare(o) < 0; }
  bool operator==(const SemVersion& o) const { return Compare(o) == 0; }

 private:
  uint64_t major_ = 0, minor_ = 0, patch_ = 0;
  std::string prerelease_, metadata_, original_;
};

// A constraint such as ">= 1.2, < 2.0 || ^3.1", "1.2 - 1.4.5", "~1.2.x", "*".
// AND terms are separated by spaces or commas, OR groups by "||". Operators:
// = != > < >= => <= =< ~ ~> ^ and none (= with wildcards x X *). A version
// with a prerelease only matches terms whose version has a prerelease too.
class SemverConstraint {
 public:
  // InvalidArgument (naming the offending part) when `text` is malformed.
  static absl::StatusOr<SemverConstraint> Parse(absl::string_view text);

  bool Matches(const SemVersion& version) const;
  const std::string& text() const { return text_; }

  struct Term {
    std::string op;
    std::string orig;
    SemVersion version;  // wildcards replaced by 0
    bool dirty = false;
    bool minor_dirty = false;
    bool patch_dirty = false;
  };

 private:
  std::string text_;
  std::vector<std::vector<Term>> any_of_;  // OR of ANDs
};

// The highest of `tags` that parses as a version and matches `constraint`;
// nullopt when none does. Ties (e.g. "v1.0.0" and "1.0.0") go to the larger
// tag name.
std::optional<SemVersion> HighestMatching(const SemverConstraint& constraint,
                                          const std::vector<std::string>& tags);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_SEMVER_H_
