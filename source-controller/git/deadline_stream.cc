#include "source-controller/git/deadline_stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace gitops::source::internal {
namespace {

thread_local NetworkOperation* current_operation = nullptr;

// Layout must begin like libgit2 1.5's internal git_socket_stream
// {git_stream parent; char* host; char* port; GIT_SOCKET s;}: the SSH
// transport hands `s` straight to libssh2.
struct DeadlineSocketStream {
  git_stream parent;
  char* host;
  char* port;
  int s;
  NetworkOperation* op;
  // Connected to a forward proxy in place of the http remote libgit2 asked
  // for (libgit2 sends absolute-form requests over it).
  bool forwarding;
  // Data was read since the last write: the next write starts a new request.
  bool read_since_write;
  // Connected to the proxy for libgit2's own CONNECT: the target, to check
  // against the operation's origin, is in the first request written.
  bool target_in_connect;
};

DeadlineSocketStream* Cast(git_stream* stream) {
  return reinterpret_cast<DeadlineSocketStream*>(stream);
}

void SetNetError(const std::string& message) { git_error_set_str(GIT_ERROR_NET, message.c_str()); }

int CloseSocket(DeadlineSocketStream* st) {
  if (st->s >= 0) {
    if (st->op != nullptr) st->op->RemoveSocket(st->s);
    ::close(st->s);
    st->s = -1;
  }
  return 0;
}

// Connects one address; returns the fd or -1 with errno set. ETIMEDOUT when
// the operation's deadline passes first.
int ConnectOne(const addrinfo* ai, NetworkOperation* op) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
  if (fd < 0) return -1;
  // libgit2 writes an HTTP request's headers and body in two send()s; with
  // Nagle on, the body waits for the server's delayed ACK (~40 ms a fetch).
  if (ai->ai_socktype == SOCK_STREAM) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      int saved = errno;
      ::close(fd);
      errno = saved;
      return -1;
    }
    while (true) {
      int timeout_ms = -1;
      if (op != nullptr) {
        absl::Duration left = op->deadline() - absl::Now();
        timeout_ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(left)));
      }
      pollfd p{fd, POLLOUT, 0};
      int rc = ::poll(&p, 1, timeout_ms);
      if (rc < 0 && errno == EINTR) continue;
      if (rc <= 0) {
        ::close(fd);
        errno = rc == 0 ? ETIMEDOUT : errno;
        return -1;
      }
      break;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ::close(fd);
      errno = err;
      return -1;
    }
  }
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

// Resolves and connects host:port within the operation's deadline. Returns
// the fd, or -1 with the git error set (and the operation marked).
int ConnectHost(const std::string& host, const std::string& port, NetworkOperation* op,
                absl::string_view what) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int gai = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &result);
  if (gai != 0) {
    if (op != nullptr) op->NoteConnectFailure();
    SetNetError(absl::StrCat("failed to resolve address for ", what, ": ", gai_strerror(gai)));
    return -1;
  }
  int fd = -1;
  int last_errno = 0;
  for (addrinfo* ai = result; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ConnectOne(ai, op);
    if (fd < 0) last_errno = errno;
    if (fd < 0 && last_errno == ETIMEDOUT) break;
  }
  ::freeaddrinfo(result);
  if (fd < 0) {
    if (op != nullptr) {
      if (last_errno == ETIMEDOUT) {
        op->MarkTimedOut();
      } else {
        op->NoteConnectFailure();
      }
    }
    SetNetError(absl::StrCat("failed to connect to ", what, ": ", std::strerror(last_errno)));
    return -1;
  }
  return fd;
}

absl::Status SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status RecvAll(int fd, unsigned char* out, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = ::recv(fd, out + off, len - off, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("receive: ", std::strerror(errno)));
    if (n == 0) return absl::UnavailableError("connection closed by the proxy");
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

const char* Socks5Reply(unsigned char code) {
  switch (code) {
    case 1:
      return "general failure";
    case 2:
      return "connection not allowed by ruleset";
    case 3:
      return "network unreachable";
    case 4:
      return "host unreachable";
    case 5:
      return "connection refused";
    case 6:
      return "ttl expired";
    case 7:
      return "command not supported";
    case 8:
      return "address type not supported";
    default:
      return "unknown error";
  }
}

// RFC 1928 CONNECT to host:port over `fd` (connected to the proxy), with
// RFC 1929 username/password when the route has a username.
absl::Status Socks5Connect(int fd, const std::string& host, const std::string& port,
                           const ProxyRoute& route) {
  const std::string proxy = absl::StrCat("socks5 proxy ", route.display);
  bool with_auth = !route.username.empty();
  std::string greeting =
      with_auth ? std::string("\x05\x02\x00\x02", 4) : std::string("\x05\x01\x00", 3);
  unsigned char reply[262];
  absl::Status s = SendAll(fd, greeting);
  if (s.ok()) s = RecvAll(fd, reply, 2);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat(proxy, ": ", s.message()));
  if (reply[0] != 5) return absl::UnavailableError(absl::StrCat(proxy, ": not a socks5 server"));
  if (reply[1] == 0xff || (reply[1] == 2 && !with_auth)) {
    if (!with_auth) {
      return absl::UnauthenticatedError(
          absl::StrCat(proxy, " requires authentication but no proxy username/password given"));
    }
    return absl::UnauthenticatedError(
        absl::StrCat(proxy, " accepts neither no authentication nor username/password"));
  }
  if (reply[1] == 2) {
    if (route.username.size() > 255 || route.password.size() > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat(proxy, ": username and password must be at most 255 bytes"));
    }
    std::string auth("\x01", 1);
    auth += static_cast<char>(route.username.size());
    auth += route.username;
    auth += static_cast<char>(route.password.size());
    auth += route.password;
    s = SendAll(fd, auth);
    if (s.ok()) s = RecvAll(fd, reply, 2);
    if (!s.ok()) return absl::UnavailableError(absl::StrCat(proxy, ": ", s.message()));
    if (reply[1] != 0) {
      return absl::UnauthenticatedError(absl::StrCat(
          proxy, " rejected the username/password of proxy user '", route.username, "'"));
    }
  } else if (reply[1] != 0) {
    return absl::UnavailableError(
        absl::StrCat(proxy, ": unsupported authentication method ", reply[1]));
  }
  std::string request("\x05\x01\x00", 3);
  unsigned char addr[16];
  if (::inet_pton(AF_INET, host.c_str(), addr) == 1) {
    request += '\x01';
    request.append(reinterpret_cast<char*>(addr), 4);
  } else if (::inet_pton(AF_INET6, host.c_str(), addr) == 1) {
    request += '\x04';
    request.append(reinterpret_cast<char*>(addr), 16);
  } else {
    if (host.empty() || host.size() > 255) {
      return absl::InvalidArgumentError(absl::StrCat(proxy, ": host name too long"));
    }
    request += '\x03';
    request += static_cast<char>(host.size());
    request += host;
  }
  int port_number = std::atoi(port.c_str());
  request += static_cast<char>((port_number >> 8) & 0xff);
  request += static_cast<char>(port_number & 0xff);
  s = SendAll(fd, request);
  if (s.ok()) s = RecvAll(fd, reply, 4);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat(proxy, " could not connect to ", host, ":", port, ": ", s.message()));
  }
  if (reply[0] != 5) return absl::UnavailableError(absl::StrCat(proxy, ": bad reply"));
  if (reply[1] != 0) {
    return absl::UnavailableError(absl::StrCat(proxy, " could not connect to ", host, ":", port,
                                               ": ", Socks5Reply(reply[1])));
  }
  size_t rest = 0;
  if (reply[3] == 1) {
    rest = 4 + 2;
  } else if (reply[3] == 4) {
    rest = 16 + 2;
  } else if (reply[3] == 3) {
    s = RecvAll(fd, reply, 1);
    if (!s.ok()) return absl::UnavailableError(absl::StrCat(proxy, ": ", s.message()));
    rest = reply[0] + 2u;
  } else {
    return absl::UnavailableError(absl::StrCat(proxy, ": bad reply address type"));
  }
  s = RecvAll(fd, reply, rest);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat(proxy, ": ", s.message()));
  return absl::OkStatus();
}

// Opens an HTTP CONNECT tunnel to host:port over `fd` (connected to the
// proxy), sending Basic credentials up front when the route has them.
absl::Status HttpConnect(int fd, const std::string& host, const std::string& port,
                         const ProxyRoute& route) {
  const std::string proxy = absl::StrCat("proxy ", route.display);
  std::string target = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                                           : absl::StrCat(host, ":", port);
  std::string request = absl::StrCat("CONNECT ", target, " HTTP/1.1\r\nHost: ", target, "\r\n");
  if (!route.username.empty() || !route.password.empty()) {
    absl::StrAppend(&request, "Proxy-Authorization: Basic ",
                    absl::Base64Escape(absl::StrCat(route.username, ":", route.password)), "\r\n");
  }
  absl::StrAppend(&request, "\r\n");
  absl::Status s = SendAll(fd, request);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat(proxy, ": ", s.message()));
  // Read the answer's head byte by byte: nothing after it may be consumed.
  std::string head;
  while (!absl::EndsWith(head, "\r\n\r\n") && !absl::EndsWith(head, "\n\n")) {
    if (head.size() > 16384) {
      return absl::UnavailableError(absl::StrCat(proxy, ": answer to CONNECT too long"));
    }
    unsigned char c;
    s = RecvAll(fd, &c, 1);
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat(proxy, ": CONNECT ", target, ": ", s.message()));
    }
    head += static_cast<char>(c);
  }
  absl::string_view line = absl::string_view(head).substr(0, head.find_first_of("\r\n"));
  int code = 0;
  if (!absl::StartsWith(line, "HTTP/1.") || line.size() < 12 ||
      !absl::SimpleAtoi(line.substr(9, 3), &code)) {
    return absl::UnavailableError(absl::StrCat(proxy, ": not an http proxy"));
  }
  if (code >= 200 && code < 300) return absl::OkStatus();
  std::string answer(absl::StripAsciiWhitespace(line.substr(9)));
  // 407, or 401 from proxies such as tinyproxy for a wrong password: the
  // remote is not involved before the tunnel stands.
  if (code == 407 || code == 401) {
    if (route.username.empty() && route.password.empty()) {
      return absl::UnauthenticatedError(absl::StrCat(
          proxy, " requires authentication but no proxy username/password given (", answer, ")"));
    }
    return absl::UnauthenticatedError(absl::StrCat(
        "proxy authentication failed: ", proxy, " rejected the username/password of proxy user '",
        route.username, "' (", answer, ")"));
  }
  return absl::UnavailableError(absl::StrCat(proxy, " refused CONNECT to ", target, ": ", answer));
}

int StreamConnect(git_stream* stream) {
  DeadlineSocketStream* st = Cast(stream);
  CloseSocket(st);
  NetworkOperation* op = st->op;
  if (op != nullptr && op->Expired()) {
    SetNetError("operation timed out");
    return -1;
  }
  static const ProxyRoute kDirect;
  const ProxyRoute& route = op != nullptr ? op->proxy_route() : kDirect;
  std::string host = st->host;
  std::string port = st->port;
  bool via_proxy = false;
  if (route.kind == ProxyRoute::Kind::kForward || route.kind == ProxyRoute::Kind::kConnect ||
      route.kind == ProxyRoute::Kind::kSocks5) {
    // (After a redirect to https, libgit2 itself connects to the forward
    // proxy for its CONNECT: that stream is not "forwarding".)
    st->forwarding =
        route.kind == ProxyRoute::Kind::kForward && !(host == route.host && port == route.port);
    host = route.host;
    port = route.port;
    via_proxy = true;
  } else if (route.kind == ProxyRoute::Kind::kLibgit2) {
    via_proxy = host == route.host && port == route.port;
  }
  // Credentials stay at their origin: libgit2 follows a redirect anywhere
  // with the bearer header and the password it holds. Where libgit2 itself
  // talks to the proxy, the target is checked in its CONNECT request.
  st->target_in_connect = (route.kind == ProxyRoute::Kind::kLibgit2 && via_proxy) ||
                          (route.kind == ProxyRoute::Kind::kForward && !st->forwarding);
  if (op != nullptr && !st->target_in_connect && !op->AllowsTarget(st->host, st->port)) {
    SetNetError(absl::StrCat("connection to ", op->refused_target(),
                             " refused: credentials are only sent to the url's origin"));
    return -1;
  }
  std::string what =
      via_proxy ? absl::StrCat("proxy ", route.display) : absl::StrCat(host, ":", port);
  int fd = ConnectHost(host, port, op, what);
  if (fd < 0) {
    if (via_proxy && op != nullptr && !op->timed_out()) {
      const git_error* err = git_error_last();
      op->NoteProxyError(
          absl::UnavailableError(err != nullptr && err->message != nullptr ? err->message : what));
    }
    return -1;
  }
  st->s = fd;
  if (op != nullptr) op->AddSocket(fd);
  if (route.kind == ProxyRoute::Kind::kSocks5 || route.kind == ProxyRoute::Kind::kConnect) {
    absl::Status s = route.kind == ProxyRoute::Kind::kSocks5
                         ? Socks5Connect(fd, st->host, st->port, route)
                         : HttpConnect(fd, st->host, st->port, route);
    if (!s.ok()) {
      CloseSocket(st);
      if (op != nullptr && op->timed_out()) {
        SetNetError("operation timed out");
        return -1;
      }
      if (op != nullptr) op->NoteProxyError(s);
      SetNetError(std::string(s.message()));
      return -1;
    }
  }
  return 0;
}

int StreamCertificate(git_cert** out, git_stream* stream) {
  SetNetError("plain socket has no certificate");
  return -1;
}

// An http proxy answers 407 with a body that ends when it closes the
// connection, which libgit2 1.5 reports as "unexpected EOF"; notes the
// rejection so the error says what happened. `data` is what one recv()
// returned; an answer starts at the start of a recv() (libgit2 reads only
// after sending a request).
void NoteForwardProxyAnswer(NetworkOperation* op, absl::string_view data) {
  if (!absl::StartsWith(data, "HTTP/1.")) return;
  absl::string_view status = data.substr(8, 5);
  // tinyproxy answers a wrong password with its own 401 (not 407); a 401
  // the remote sends through it keeps the remote's Server header.
  bool proxy_401 =
      status == " 401 " &&
      absl::StrContains(absl::AsciiStrToLower(data.substr(0, 1024)), "\nserver: tinyproxy");
  if (status != " 407 " && !proxy_401) return;
  const ProxyRoute& route = op->proxy_route();
  if (route.username.empty() && route.password.empty()) {
    op->NoteProxyError(absl::UnauthenticatedError(absl::StrCat(
        "proxy ", route.display, " requires authentication but no proxy username/password given")));
    return;
  }
  op->NoteProxyError(absl::UnauthenticatedError(
      absl::StrCat("proxy authentication failed: proxy ", route.display,
                   " rejected the username/password of proxy user '", route.username, "'")));
}

ssize_t StreamRead(git_stream* stream, void* data, size_t len) {
  DeadlineSocketStream* st = Cast(stream);
  ssize_t n;
  do {
    n = ::recv(st->s, data, len, 0);
  } while (n < 0 && errno == EINTR);
  if (st->op != nullptr && st->op->timed_out()) {
    SetNetError("operation timed out");
    return -1;
  }
  if (n < 0) {
    SetNetError(absl::StrCat("error receiving data from socket: ", std::strerror(errno)));
    return -1;
  }
  st->read_since_write = true;
  if (st->forwarding && n >= 12) {
    NoteForwardProxyAnswer(st->op, absl::string_view(static_cast<const char*>(data), n));
  }
  return n;
}

ssize_t StreamWrite(git_stream* stream, const char* data, size_t len, int flags) {
  DeadlineSocketStream* st = Cast(stream);
  if (st->target_in_connect) {
    st->target_in_connect = false;
    std::optional<HostPort> target = ParseConnectTarget(absl::string_view(data, len));
    if (st->op != nullptr && target && !st->op->AllowsTarget(target->host, target->port)) {
      SetNetError(absl::StrCat("connection to ", st->op->refused_target(),
                               " refused: credentials are only sent to the url's origin"));
      return -1;
    }
  }
  if (st->read_since_write && st->forwarding) {
    // A new request on a connection to a forward proxy. Proxies such as
    // tinyproxy close the connection after each answer without saying so
    // (HTTP/1.1, no "Connection: close"), and libgit2 1.5 does not retry a
    // request on a dead kept-alive connection: open a fresh one.
    if (StreamConnect(stream) != 0) return -1;
  }
  st->read_since_write = false;
  ssize_t n;
  do {
    n = ::send(st->s, data, len, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (st->op != nullptr && st->op->timed_out()) {
      SetNetError("operation timed out");
    } else {
      SetNetError(absl::StrCat("error sending data: ", std::strerror(errno)));
    }
    return -1;
  }
  return n;
}

int StreamClose(git_stream* stream) { return CloseSocket(Cast(stream)); }

void StreamFree(git_stream* stream) {
  DeadlineSocketStream* st = Cast(stream);
  CloseSocket(st);
  std::free(st->host);
  std::free(st->port);
  delete st;
}

int StreamInit(git_stream** out, const char* host, const char* port) {
  auto* st = new DeadlineSocketStream();
  st->parent.version = GIT_STREAM_VERSION;
  st->parent.encrypted = 0;
  st->parent.proxy_support = 0;
  st->parent.connect = StreamConnect;
  st->parent.certificate = StreamCertificate;
  st->parent.set_proxy = nullptr;
  st->parent.read = StreamRead;
  st->parent.write = StreamWrite;
  st->parent.close = StreamClose;
  st->parent.free = StreamFree;
  st->host = ::strdup(host);
  st->port = ::strdup(port);
  st->s = -1;
  st->op = current_operation;
  st->forwarding = false;
  st->read_since_write = false;
  st->target_in_connect = false;
  *out = &st->parent;
  return 0;
}

}  // namespace

NetworkOperation::NetworkOperation(absl::Time deadline)
    : deadline_(deadline), watchdog_([this] { Watch(); }) {}

NetworkOperation::~NetworkOperation() {
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  watchdog_.join();
}

void NetworkOperation::Watch() {
  absl::MutexLock lock(&mu_);
  if (mu_.AwaitWithDeadline(absl::Condition(&done_), deadline_)) return;
  // Deadline passed: wake whatever blocks on our sockets. SHUT_RD (not
  // SHUT_RDWR) so a late write by libssh2 cannot raise SIGPIPE.
  timed_out_ = true;
  for (int fd : sockets_) ::shutdown(fd, SHUT_RD);
}

bool NetworkOperation::Expired() {
  absl::MutexLock lock(&mu_);
  if (!timed_out_ && absl::Now() >= deadline_) timed_out_ = true;
  return timed_out_;
}

bool NetworkOperation::timed_out() const {
  absl::MutexLock lock(&mu_);
  return timed_out_;
}

void NetworkOperation::MarkTimedOut() {
  absl::MutexLock lock(&mu_);
  timed_out_ = true;
}

absl::Status NetworkOperation::proxy_error() const {
  absl::MutexLock lock(&mu_);
  return proxy_error_;
}

void NetworkOperation::NoteProxyError(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (proxy_error_.ok()) proxy_error_ = std::move(status);
}

bool NetworkOperation::connect_failed() const {
  absl::MutexLock lock(&mu_);
  return connect_failed_;
}

void NetworkOperation::NoteConnectFailure() {
  absl::MutexLock lock(&mu_);
  connect_failed_ = true;
}

void NetworkOperation::RestrictToOrigin(std::string host, std::string port) {
  absl::MutexLock lock(&mu_);
  restricted_ = true;
  origin_host_ = absl::AsciiStrToLower(host);
  origin_port_ = std::move(port);
}

void NetworkOperation::Unrestrict() {
  absl::MutexLock lock(&mu_);
  restricted_ = false;
}

bool NetworkOperation::AllowsTarget(const std::string& host, const std::string& port) {
  absl::MutexLock lock(&mu_);
  if (!restricted_) return true;
  if (absl::AsciiStrToLower(host) == origin_host_ && port == origin_port_) return true;
  if (refused_target_.empty()) {
    refused_target_ = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                                          : absl::StrCat(host, ":", port);
  }
  return false;
}

std::string NetworkOperation::refused_target() const {
  absl::MutexLock lock(&mu_);
  return refused_target_;
}

void NetworkOperation::AddSocket(int fd) {
  absl::MutexLock lock(&mu_);
  sockets_.push_back(fd);
  if (timed_out_) ::shutdown(fd, SHUT_RD);
}

void NetworkOperation::RemoveSocket(int fd) {
  absl::MutexLock lock(&mu_);
  sockets_.erase(std::remove(sockets_.begin(), sockets_.end(), fd), sockets_.end());
}

ScopedNetworkOperation::ScopedNetworkOperation(NetworkOperation* op)
    : previous_(current_operation) {
  current_operation = op;
}

ScopedNetworkOperation::~ScopedNetworkOperation() { current_operation = previous_; }

std::optional<HostPort> ParseConnectTarget(absl::string_view request) {
  if (!absl::ConsumePrefix(&request, "CONNECT ")) return std::nullopt;
  absl::string_view authority = request.substr(0, request.find(' '));
  size_t colon = authority.rfind(':');
  if (colon == absl::string_view::npos || colon + 1 == authority.size()) return std::nullopt;
  absl::string_view host = authority.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return std::nullopt;
  return HostPort{std::string(host), std::string(authority.substr(colon + 1))};
}

int RegisterDeadlineSocketStream() {
  git_stream_registration registration{};
  registration.version = GIT_STREAM_VERSION;
  registration.init = StreamInit;
  registration.wrap = nullptr;
  return git_stream_register(GIT_STREAM_STANDARD, &registration);
}

}  // namespace gitops::source::internal
