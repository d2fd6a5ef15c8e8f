// spec.proxySecretRef: the proxy address and how a remote is reached through
// it. Pure functions.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_PROXY_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_PROXY_H_

#include <string>

#include "absl/status/statusor.h"
#include "source-controller/git/git_fetcher.h"

namespace gitops::source {

struct ProxyEndpoint {
  std::string scheme;  // "http", "https", "socks5" or "socks5h"
  std::string host;    // without brackets for IPv6
  int port = 0;        // explicit or the scheme's default (80, 443, 1080)
  std::string username, password;

  // "scheme://host:port" without credentials, for messages and libgit2.
  std::string Url() const;
  bool socks() const { return scheme == "socks5" || scheme == "socks5h"; }
};

// Parses GitProxy::address ("http://host:port", "https://...", "socks5://..."
// as Flux accepts; a trailing "/" is allowed). GitProxy::username/password
// take precedence over userinfo in the address. InvalidArgument for a missing
// or unsupported scheme, a missing host, a bad port, or a path.
absl::StatusOr<ProxyEndpoint> ParseProxy(const GitProxy& proxy);

// How a remote of `url_scheme` ("http", "https", "ssh", "git", "file") goes
// through `proxy`.
enum class ProxyMode {
  kNone,     // no proxy (none configured, or a local file remote)
  kForward,  // http remote through an http proxy: libgit2 writes
             // absolute-form requests (with a preemptive
             // Proxy-Authorization header), our socket stream connects to
             // the proxy (libgit2 1.5 would connect to the remote directly)
  kConnect,  // https remote through an http proxy: our socket stream opens
             // the CONNECT tunnel (preemptive Proxy-Authorization), libgit2
             // runs TLS through it
  kLibgit2,  // https remote through an https proxy: libgit2's own CONNECT
  kSocks5,   // any remote through a SOCKS5 proxy: our socket stream tunnels
};
// InvalidArgument for combinations that cannot work: an ssh or git remote
// through an http(s) proxy (Flux, too, proxies ssh only through SOCKS5), and
// an http remote through an https proxy.
absl::StatusOr<ProxyMode> SelectProxyMode(absl::string_view url_scheme, const ProxyEndpoint* proxy);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_PROXY_H_
