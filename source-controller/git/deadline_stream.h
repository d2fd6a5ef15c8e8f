// Deadlines for libgit2 network I/O. libgit2 1.5 has no timeout option, so the
// fetcher registers a socket stream (GIT_STREAM_STANDARD, also under TLS) that
// bounds connect() by the operation's deadline and records every socket of
// the operation; a watchdog shuts those sockets down for reading when the
// deadline passes, which unblocks libgit2 and libssh2 wherever they wait.
// The stream also routes connections through the operation's proxy where
// libgit2 1.5 cannot: to an http proxy for http:// remotes (libgit2 writes
// the absolute-form request but would connect to the remote itself), and
// through a SOCKS5 proxy for any remote (libgit2 has no SOCKS support).
// It also keeps credentials at their origin: while an operation carries
// credentials, a connection to another host:port (a redirect) is refused
// before a byte is sent, since libgit2 would send it the bearer token header
// and answer its challenge with the password.
// Internal to the libgit2 fetcher.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_DEADLINE_STREAM_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_DEADLINE_STREAM_H_

#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gitops::source::internal {

// Where the streams of an operation connect.
struct ProxyRoute {
  enum class Kind {
    kNone,     // directly to the host libgit2 asks for
    kLibgit2,  // libgit2 connects to the proxy itself (https CONNECT); the
               // stream only recognizes the proxy to name it in errors
    kForward,  // every connection goes to the proxy instead (libgit2
               // writes absolute-form requests); a 407 answer is noted
    kConnect,  // every connection is tunnelled with HTTP CONNECT
    kSocks5,   // every connection is tunnelled through the SOCKS5 proxy
  };
  Kind kind = Kind::kNone;
  std::string host;  // the proxy's host (no brackets) and port
  std::string port;
  // Proxy credentials: sent for kConnect (Basic) and kSocks5 (RFC 1929);
  // for kForward libgit2 sends them, the username only names the user.
  std::string username, password;
  std::string display;  // "socks5://host:port", for messages
};

// State of one network operation (one ls-remote or fetch). Thread-safe.
class NetworkOperation {
 public:
  // Starts the watchdog thread.
  explicit NetworkOperation(absl::Time deadline);
  // Stops the watchdog.
  ~NetworkOperation();
  NetworkOperation(const NetworkOperation&) = delete;
  NetworkOperation& operator=(const NetworkOperation&) = delete;

  absl::Time deadline() const { return deadline_; }
  // Set before the operation's first connection; not changed afterwards.
  void set_proxy_route(ProxyRoute route) { proxy_route_ = std::move(route); }
  const ProxyRoute& proxy_route() const { return proxy_route_; }
  // The first failure that involved the proxy (connect, SOCKS5 handshake).
  absl::Status proxy_error() const;
  void NoteProxyError(absl::Status status);
  // True once the deadline passed (marks the operation timed out).
  bool Expired();
  bool timed_out() const;
  void MarkTimedOut();

  bool connect_failed() const;
  void NoteConnectFailure();

  // Binds the operation's connections to `host`:`port` (the origin of the
  // URL, whose credentials libgit2 holds): any other target, proxies aside,
  // is refused and noted. Call before the first connection.
  void RestrictToOrigin(std::string host, std::string port);
  // Lifts that restriction (the credentials were dropped).
  void Unrestrict();
  // Whether a connection to host:port may go ahead; notes a refusal.
  bool AllowsTarget(const std::string& host, const std::string& port);
  // "host:port" (IPv6 in brackets) of the first target refused, or empty.
  std::string refused_target() const;

  void AddSocket(int fd);
  void RemoveSocket(int fd);

 private:
  void Watch();

  const absl::Time deadline_;
  ProxyRoute proxy_route_;
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool timed_out_ ABSL_GUARDED_BY(mu_) = false;
  bool connect_failed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status proxy_error_ ABSL_GUARDED_BY(mu_);
  bool restricted_ ABSL_GUARDED_BY(mu_) = false;
  std::string origin_host_ ABSL_GUARDED_BY(mu_);
  std::string origin_port_ ABSL_GUARDED_BY(mu_);
  std::string refused_target_ ABSL_GUARDED_BY(mu_);
  std::vector<int> sockets_ ABSL_GUARDED_BY(mu_);
  std::thread watchdog_;
};

// Makes `op` the operation whose deadline the streams opened on this thread
// obey, for the lifetime of the guard.
class ScopedNetworkOperation {
 public:
  explicit ScopedNetworkOperation(NetworkOperation* op);
  ~ScopedNetworkOperation();

 private:
  NetworkOperation* previous_;
};

// A connection target.
struct HostPort {
  std::string host;  // no brackets around IPv6
  std::string port;
};
// The target of an HTTP "CONNECT host:port HTTP/1.1" request (what libgit2
// asks a proxy for); nullopt for anything else.
std::optional<HostPort> ParseConnectTarget(absl::string_view request);

// Registers the stream with libgit2. Call once, after git_libgit2_init.
// Returns libgit2's result code.
int RegisterDeadlineSocketStream();

}  // namespace gitops::source::internal

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_DEADLINE_STREAM_H_
