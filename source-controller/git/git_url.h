// Validation and parsing of Git remote URLs. Pure functions.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_GIT_URL_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_GIT_URL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::source {

struct GitUrl {
  // "http", "https", "ssh", "git", "file"; "file" also for a local path.
  std::string scheme;
  std::string username;  // from userinfo, may be empty
  bool has_password = false;
  std::string host;         // without brackets for IPv6; empty for file
  int port = 0;             // 0 when not given
  std::string path;         // for file: the filesystem path
  bool local_path = false;  // given as a bare absolute path, not file://
};

// Accepts http://, https://, ssh://, git://, file:// URLs and absolute local
// paths. InvalidArgument (with a message that never repeats a password) for
// anything else: empty, unsupported scheme, scp-like "user@host:path",
// missing host, bad port, whitespace or control characters.
absl::StatusOr<GitUrl> ParseGitUrl(absl::string_view url);

// `url` with any userinfo password removed, for messages and logs
// ("https://user:secret@host/x" -> "https://user@host/x"). Unparseable input
// is returned with everything between "://" and the last '@' before the host
// removed.
std::string RedactUrl(absl::string_view url);

// The port to use: the explicit one, else the scheme's default (http 80,
// https 443, ssh 22, git 9418); 0 for file.
int EffectivePort(const GitUrl& url);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_GIT_URL_H_
