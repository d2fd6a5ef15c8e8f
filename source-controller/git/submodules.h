// Pure helpers for submodules: the .gitmodules file (git config syntax) and
// the resolution of submodule URLs against the superproject's URL.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_SUBMODULES_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_SUBMODULES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::source {

// One [submodule "NAME"] section; path or url may be empty when not set.
struct SubmoduleConfig {
  std::string name;
  std::string path;
  std::string url;
};

// Parses .gitmodules content with git's config syntax (comments, quoting,
// escapes, line continuations, case-insensitive section and key names, the
// last value of a key wins). Sections other than "submodule" are ignored;
// includes are never followed. InvalidArgument (with the line number) for
// malformed content. Sections are returned in order of first appearance.
absl::StatusOr<std::vector<SubmoduleConfig>> ParseGitmodules(absl::string_view text);

// The URL to fetch a submodule from, as `git submodule` computes it: a URL
// starting with "./" or "../" is relative to the superproject's URL taken as
// a directory ("../b.git" next to "https://h/x/a.git" is "https://h/x/b.git",
// "./b.git" is "https://h/x/a.git/b.git"); scp-like "user@host:path" becomes
// "ssh://user@host/path"; other URLs are returned unchanged. InvalidArgument
// for an empty URL, one starting with '-', or a relative URL that climbs
// above the superproject URL's root.
absl::StatusOr<std::string> ResolveSubmoduleUrl(absl::string_view parent_url,
                                                absl::string_view url);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_SUBMODULES_H_
