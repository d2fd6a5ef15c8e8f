// Ignore rules for packing a source into an artifact, with the semantics of
// Flux's source-controller (fluxcd/pkg/sourceignore on top of go-git's
// gitignore matcher).
#ifndef GITOPS_SOURCE_CONTROLLER_ARTIFACT_IGNORE_H_
#define GITOPS_SOURCE_CONTROLLER_ARTIFACT_IGNORE_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gitops::source {

namespace internal {
// One element of a compiled glob: a literal rune, '?', '*' or a '[...]' class.
struct GlobToken {
  enum Kind { kLiteral, kAny, kStar, kClass } kind = kLiteral;
  char32_t rune = 0;
  bool negated = false;
  std::vector<std::pair<char32_t, char32_t>> ranges;
};
}  // namespace internal

// Flux's default exclusions (fluxcd/pkg/sourceignore), comma-separated.
// The VCS set always applies; the others apply only when the source has no
// patterns of its own (no non-empty .sourceignore and no spec.ignore).
inline constexpr absl::string_view kExcludeVcs = ".git/,.gitignore,.gitmodules,.gitattributes";
inline constexpr absl::string_view kExcludeExt =
    "*.jpg,*.jpeg,*.gif,*.png,*.wmv,*.flv,*.tar.gz,*.zip";
inline constexpr absl::string_view kExcludeCi =
    ".github/,.circleci/,.travis.yml,.gitlab-ci.yml,appveyor.yml,.drone.yml,cloudbuild.yaml,"
    "codeship-services.yml,codeship-steps.yml";
inline constexpr absl::string_view kExcludeExtra = "**/.goreleaser.yml,**/.sops.yaml,**/.flux.yaml";
// Name of the per-directory ignore file.
inline constexpr absl::string_view kSourceIgnoreFile = ".sourceignore";

// An ordered list of .gitignore-syntax patterns; later patterns win.
//
// Semantics are go-git's (what Flux uses), which differ from git in two
// corner cases: a negation can re-include a file below an excluded directory
// (git cannot), and `**/` matches greedily without backtracking. Character
// classes use Go's syntax (`[^a]` negates; `[!a]` is the set {'!', 'a'}).
// Without a negation that re-includes it, a path under an excluded directory
// is excluded.
//
// Not thread-safe for AddPatterns; const methods may be called concurrently.
class IgnoreMatcher {
 public:
  // Adds .gitignore-syntax lines; patterns are relative to `domain` (a
  // directory relative to the root, "" = root), as a .sourceignore in that
  // directory would be. Blank lines and lines starting with '#' are skipped.
  void AddPatterns(absl::string_view text, absl::string_view domain = "");

  // True when `path` (relative to the root, '/'-separated, no leading slash)
  // is excluded; a path under an excluded directory is excluded.
  bool Excluded(absl::string_view path, bool is_dir) const;

  // Appends all of `other`'s patterns after this one's (they win).
  void Append(const IgnoreMatcher& other);

  // Number of patterns added so far.
  size_t size() const { return patterns_.size(); }
  // True when some pattern is a negation ('!'), i.e. something under an
  // excluded directory may be re-included. Packers may skip excluded
  // directories wholesale when this is false.
  bool has_negations() const { return has_negations_; }

 private:
  // One '/'-separated component of a pattern, compiled once.
  struct Part {
    std::string text;
    std::vector<internal::GlobToken> tokens;
    bool valid = true;         // false: malformed, matches nothing (Go's ErrBadPattern)
    bool literal = true;       // no wildcards: compare text directly
    bool star_suffix = false;  // "*<literal>": compare the suffix (text minus '*')
  };
  struct Pattern {
    std::vector<std::string> domain;
    std::vector<Part> parts;
    bool inclusion = false;
    bool dir_only = false;
    bool is_glob = false;
  };
  enum class Result { kNoMatch, kExclude, kInclude };
  static Result Match(const Pattern& p, const absl::string_view* path, size_t n, bool is_dir);
  static bool PartMatches(const Part& part, absl::string_view name);

  std::vector<Pattern> patterns_;
  bool has_negations_ = false;
};

// Go's path/filepath.Match for one path component: '*', '?', '[...]' with
// '^' negation and ranges, '\\' escapes. A malformed pattern matches nothing.
bool GlobMatch(absl::string_view pattern, absl::string_view name);

// Bounds on reading a checkout's ignore files, which its author controls.
struct IgnoreLoadOptions {
  // A .sourceignore larger than this is refused (ResourceExhausted).
  int64_t max_file_bytes = int64_t{1} << 20;
  // The walk stops past this time (DeadlineExceeded): the reconcile's.
  absl::Time deadline = absl::InfiniteFuture();
};

// The rules Flux applies to a checkout at `root`:
//   - always: the VCS exclusions (kExcludeVcs);
//   - then, only when the source brings no patterns of its own, Flux's other
//     defaults (kExcludeExt, kExcludeCi, kExcludeExtra);
//   - every .sourceignore under root (scoped to its directory; parents before
//     children, siblings in name order; .git directories are not searched);
//   - spec.ignore (nullopt = not set), scoped to the root, last so it wins.
// A non-empty spec.ignore or .sourceignore therefore replaces the non-VCS
// defaults, as in Flux. Nothing below `root` is followed: the walk does not
// enter symlinked directories, and a .sourceignore that is not a regular file
// (a symlink, a FIFO, a device) is refused, FailedPrecondition, as is one
// larger than options.max_file_bytes, ResourceExhausted (Flux would follow
// the link, or block on the FIFO); a .sourceignore directory is skipped.
// Messages name files by their path in the checkout. Errors also:
// DeadlineExceeded past options.deadline, Internal/NotFound on I/O failure.
absl::StatusOr<IgnoreMatcher> LoadIgnoreRules(const std::string& root,
                                              const std::optional<std::string>& spec_ignore);
absl::StatusOr<IgnoreMatcher> LoadIgnoreRules(const std::string& root,
                                              const std::optional<std::string>& spec_ignore,
                                              const IgnoreLoadOptions& options);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_ARTIFACT_IGNORE_H_
