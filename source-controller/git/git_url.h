// Validation and parsing of Git remote URLs. Pure functions.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_GIT_URL_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_GIT_URL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "source-controller/git/git_fetcher.h"

namespace gitops::source {

struct GitUrl {
  // "http", "https", "ssh", "git", "file"; "file" also for a local path.
  std::string scheme;
  // From the userinfo, percent-decoded; may be empty. The password is a
  // credential: never put it (or a GitUrl's username, which can be a token)
  // in a message.
  std::string username;
  std::string password;
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

// `url` with its whole userinfo removed ("https://TOKEN@host/x" and
// "https://user:secret@host/x" -> "https://host/x"): the form of a URL we
// show anywhere (conditions, events, logs) and the one libgit2 gets for
// http(s), so that user names that are tokens never appear. Works on
// unparseable input too: everything between "://" and the last '@' before
// the first '/' goes. Other input is returned unchanged.
std::string RedactUrl(absl::string_view url);

// "scheme://host:port" with the effective port and a lowercased host
// (IPv6 in brackets): the origin credentials are bound to. Empty for file.
std::string UrlOrigin(const GitUrl& url);

// The port to use: the explicit one, else the scheme's default (http 80,
// https 443, ssh 22, git 9418); 0 for file.
int EffectivePort(const GitUrl& url);

// Flux's rule for credentials in an http(s) URL (fluxcd/pkg git
// NewAuthOptions): the URL's user name and password fill in the username and
// password `credentials` leave empty ("https://TOKEN@host/x" is basic auth
// with user TOKEN and an empty password). Other schemes: unchanged (an ssh
// URL's user name is the login, handled by the ssh transport).
GitCredentials WithUrlCredentials(const GitUrl& url, GitCredentials credentials);

// Whether an http(s) request would carry credentials of the GitRepository:
// a username, password or bearer token.
bool HasHttpCredentials(const GitCredentials& credentials);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_GIT_URL_H_
