#include "common/http/bounded_server.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/httplib_socket.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"

namespace gitops::common {
namespace {

constexpr char kOpenMetric[] = "gitops_http_connections";
constexpr char kRejectedMetric[] = "gitops_http_connections_rejected_total";
constexpr char kClosedMetric[] = "gitops_http_connections_closed_total";

// Waits until `fd` has one of `events` (or an error or hang-up, which the
// following recv/send reports) for at most `timeout`. False on timeout.
bool WaitFd(int fd, short events, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    const int64_t ms = std::min<int64_t>(
        INT_MAX, absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, static_cast<int>(ms));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let the I/O call report it
  }
}

// "ip" and port of a socket's local or peer address.
void SocketAddress(int fd, bool peer, std::string* ip, int* port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int r = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                     : getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  char host[NI_MAXHOST] = "";
  char serv[NI_MAXSERV] = "0";
  if (r == 0) {
    getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
  }
  *ip = host;
  *port = atoi(serv);
}

}  // namespace

absl::Status ValidateHttpServerLimits(const HttpServerLimits& limits) {
  if (limits.read_header_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("read header timeout must be positive");
  }
  if (limits.write_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("write timeout must be positive");
  }
  if (limits.idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle timeout must be positive");
  }
  if (limits.max_connections < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max connections must be at least 1, got ", limits.max_connections));
  }
  if (limits.max_connections_per_client < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max connections per client must not be negative, got ",
                     limits.max_connections_per_client));
  }
  return absl::OkStatus();
}

// One accepted connection. Owned by live_; fields other than `thread` and
// the constants are guarded by the server's mu_.
struct BoundedHttpServer::Connection {
  int fd = -1;
  std::string client;  // peer IP address
  absl::Time accepted;
  // The request has been read whole (or the response begun): no longer a
  // candidate for eviction.
  bool handling = false;
  // When it last began waiting for a request.
  absl::Time waiting_since;
  // Still counted against the limits (false once evicted or closed).
  bool counted = true;
  std::thread thread;
};

// cpp-httplib's stream over one connection, with the request deadline, the
// request byte budget and the write timeout. Used by its connection's thread
// only.
class BoundedHttpServer::ConnectionStream : public httplib::Stream {
 public:
  ConnectionStream(int fd, const HttpServerLimits& limits) : fd_(fd), limits_(limits) {}

  // A new request must be read whole by `deadline`.
  void BeginRequest(absl::Time deadline) {
    deadline_ = deadline;
    budget_ = limits_.max_request_bytes;
    read_timed_out_ = write_timed_out_ = too_large_ = false;
  }
  bool read_timed_out() const { return read_timed_out_; }
  bool write_timed_out() const { return write_timed_out_; }
  bool too_large() const { return too_large_; }

  bool is_readable() const override { return WaitFd(fd_, POLLIN, deadline_ - absl::Now()); }
  bool is_writable() const override {
    if (WaitFd(fd_, POLLOUT, limits_.write_timeout)) return true;
    write_timed_out_ = true;
    return false;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (budget_ == 0) {
      too_large_ = true;
      return -1;
    }
    size = std::min(size, budget_);
    while (true) {
      const absl::Duration left = deadline_ - absl::Now();
      if (left <= absl::ZeroDuration()) {
        read_timed_out_ = true;
        return -1;
      }
      if (!WaitFd(fd_, POLLIN, left)) continue;  // the loop notices the deadline
      const ssize_t n = recv(fd_, ptr, size, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (n > 0) budget_ -= static_cast<size_t>(n);
      return n;
    }
  }

  ssize_t write(const char* ptr, size_t size) override {
    while (true) {
      if (!is_writable()) return -1;
      const ssize_t n = send(fd_, ptr, size, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      return n;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    SocketAddress(fd_, /*peer=*/true, &ip, &port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    SocketAddress(fd_, /*peer=*/false, &ip, &port);
  }
  socket_t socket() const override { return fd_; }

 private:
  const int fd_;
  const HttpServerLimits& limits_;
  absl::Time deadline_ = absl::InfinitePast();
  size_t budget_ = 0;
  bool read_timed_out_ = false;
  mutable bool write_timed_out_ = false;
  bool too_large_ = false;
};

// cpp-httplib runs each accepted socket through its task queue; this one
// runs it at once, on the accept thread, where admission happens.
class BoundedHttpServer::InlineQueue : public httplib::TaskQueue {
 public:
  explicit InlineQueue(BoundedHttpServer* server) : server_(server) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
  void on_idle() override { server_->ReapFinished(); }

 private:
  BoundedHttpServer* const server_;
};

BoundedHttpServer::BoundedHttpServer(std::string name, HttpServerLimits limits)
    : name_(std::move(name)), limits_(limits) {
  UseExclusivePort(*this);
  new_task_queue = [this] { return new InlineQueue(this); };
  // Wake the accept loop now and then to join finished connection threads.
  set_idle_interval(1, 0);
  Metrics& m = Metrics::Global();
  m.DefineGauge(kOpenMetric, "Open HTTP connections, by server.");
  m.DefineCounter(kRejectedMetric,
                  "HTTP connections refused at accept (503), by server and reason "
                  "(connection_limit, per_client_limit).");
  m.DefineCounter(kClosedMetric,
                  "HTTP connections closed by the server before their client finished, by "
                  "server and reason (read_header_timeout, write_timeout, request_too_large, "
                  "evicted).");
}

BoundedHttpServer::~BoundedHttpServer() { Stop(); }

absl::StatusOr<int> BoundedHttpServer::Listen(const HostPort& hp) {
  const std::string host = hp.host.empty() ? "0.0.0.0" : hp.host;
  int port = hp.port;
  if (port == 0) {
    port = bind_to_any_port(host);
    if (port <= 0) return absl::UnavailableError(absl::StrCat("bind ", host, ":0 failed"));
  } else if (!bind_to_port(host, port)) {
    return absl::UnavailableError(absl::StrCat("bind ", host, ":", port, " failed (port in use?)"));
  }
  accept_thread_ = std::thread([this] {
    listen_after_bind();
    listen_returned_ = true;
  });
  return port;
}

int BoundedHttpServer::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counted_;
}

void BoundedHttpServer::Reject(int fd, const char* reason) {
  Metrics::Global().Add(kRejectedMetric, {{"server", name_}, {"reason", reason}});
  static constexpr char kResponse[] =
      "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n"
      "Content-Length: 24\r\n\r\ntoo many connections, retry\n";
  // Best effort: never block the accept thread on a client.
  (void)send(fd, kResponse, sizeof kResponse - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
  close(fd);
}

bool BoundedHttpServer::process_and_close_socket(socket_t sock) {
  ReapFinished();
  std::string client;
  int port = 0;
  SocketAddress(sock, /*peer=*/true, &client, &port);
  Connection* victim_closed = nullptr;
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) {
    lock.unlock();
    close(sock);
    return false;
  }
  if (limits_.max_connections_per_client > 0) {
    auto it = per_client_.find(client);
    if (it != per_client_.end() && it->second >= limits_.max_connections_per_client) {
      lock.unlock();
      Reject(sock, "per_client_limit");
      return false;
    }
  }
  if (counted_ >= limits_.max_connections) {
    Connection* victim = PickVictimLocked();
    if (victim == nullptr) {
      lock.unlock();
      Reject(sock, "connection_limit");
      return false;
    }
    // Its thread sees end-of-file and closes it.
    UncountLocked(victim);
    shutdown(victim->fd, SHUT_RDWR);
    victim_closed = victim;
  }
  auto owned = std::make_unique<Connection>();
  Connection* conn = owned.get();
  conn->fd = sock;
  conn->client = client;
  conn->accepted = conn->waiting_since = absl::Now();
  ++counted_;
  ++per_client_[client];
  live_[conn] = std::move(owned);
  conn->thread = std::thread([this, conn] { Serve(conn); });
  const int open = counted_;
  lock.unlock();
  Metrics::Global().Set(kOpenMetric, {{"server", name_}}, open);
  if (victim_closed != nullptr) {
    Metrics::Global().Add(kClosedMetric, {{"server", name_}, {"reason", "evicted"}});
  }
  return true;
}

BoundedHttpServer::Connection* BoundedHttpServer::PickVictimLocked() {
  // Connections that have not sent a whole request: from the client holding
  // the most connections, the one waiting longest.
  Connection* best = nullptr;
  int best_count = 0;
  for (const auto& [conn, owned] : live_) {
    if (!conn->counted || conn->handling) continue;
    const int count = per_client_[conn->client];
    if (best == nullptr || count > best_count ||
        (count == best_count && conn->waiting_since < best->waiting_since)) {
      best = conn;
      best_count = count;
    }
  }
  return best;
}

void BoundedHttpServer::UncountLocked(Connection* conn) {
  if (!conn->counted) return;
  conn->counted = false;
  --counted_;
  auto it = per_client_.find(conn->client);
  if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
}

void BoundedHttpServer::MarkResponding(Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  conn->handling = true;
}

void BoundedHttpServer::MarkWaiting(Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  conn->handling = false;
  conn->waiting_since = absl::Now();
}

namespace {
// Set by CloseAfterThisResponse() in a handler; Serve runs the handler on
// the same thread and reads it after each request.
thread_local bool close_after_response = false;
}  // namespace

void BoundedHttpServer::CloseAfterThisResponse() { close_after_response = true; }

void BoundedHttpServer::Serve(Connection* conn) {
  ConnectionStream stream(conn->fd, limits_);
  const char* reason = nullptr;
  // The first request's deadline runs from accept: a client that connects
  // and sends nothing is as slow as one that trickles.
  absl::Time deadline = conn->accepted + limits_.read_header_timeout;
  const size_t max_requests = std::max<size_t>(1, keep_alive_max_count_);
  const auto handling = [this, conn](httplib::Request&) { MarkResponding(conn); };
  bool linger = false;  // closing with request bytes possibly unread
  for (size_t served = 0; served < max_requests; ++served) {
    if (served > 0) {
      if (!WaitFd(conn->fd, POLLIN, limits_.idle_timeout)) break;  // idle keep-alive
      deadline = absl::Now() + limits_.read_header_timeout;
    }
    bool close_connection;
    {
      std::lock_guard<std::mutex> lock(mu_);
      close_connection = draining_ || stopping_ || served + 1 == max_requests;
    }
    stream.BeginRequest(deadline);
    bool connection_closed = false;
    close_after_response = false;
    const bool ok = process_request(stream, close_connection, connection_closed, handling);
    if (close_after_response) {
      connection_closed = true;
      linger = true;
    }
    if (stream.read_timed_out()) {
      reason = "read_header_timeout";
      break;
    }
    if (stream.too_large()) {
      reason = "request_too_large";
      break;
    }
    if (stream.write_timed_out()) {
      reason = "write_timeout";
      break;
    }
    if (!ok || connection_closed || close_connection) break;
    MarkWaiting(conn);
  }
  if (linger) {
    // Closing with unread request bytes makes the kernel send a reset, which
    // can destroy the response still in flight: send FIN first, then read and
    // drop what the client still sends, for a bounded time and size.
    shutdown(conn->fd, SHUT_WR);
    const absl::Time until = absl::Now() + absl::Seconds(1);
    char sink[16 << 10];
    for (size_t drained = 0; drained < (256u << 10) && absl::Now() < until;) {
      if (!WaitFd(conn->fd, POLLIN, until - absl::Now())) break;
      const ssize_t got = recv(conn->fd, sink, sizeof sink, MSG_DONTWAIT);
      if (got <= 0) break;
      drained += static_cast<size_t>(got);
    }
  }
  if (reason != nullptr) {
    Metrics::Global().Add(kClosedMetric, {{"server", name_}, {"reason", reason}});
    LogDebug("http connection closed",
             {{"server", name_}, {"client", conn->client}, {"reason", reason}});
  }
  std::lock_guard<std::mutex> lock(mu_);
  UncountLocked(conn);
  // Closed under the lock: eviction and Stop shut sockets down under it, so
  // they never reach a descriptor number reused by another open.
  close(conn->fd);
  finished_.push_back(std::move(conn->thread));
  live_.erase(conn);
  Metrics::Global().Set(kOpenMetric, {{"server", name_}}, counted_);
  if (live_.empty()) all_closed_.notify_all();
}

void BoundedHttpServer::ReapFinished() {
  std::vector<std::thread> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(finished_);
  }
  for (std::thread& t : done) t.join();
}

void BoundedHttpServer::CloseIdleConnections() {
  std::lock_guard<std::mutex> lock(mu_);
  draining_ = true;
  for (const auto& [conn, owned] : live_) {
    if (!conn->handling) shutdown(conn->fd, SHUT_RDWR);
  }
}

void BoundedHttpServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = stopping_ = true;
    for (const auto& [conn, owned] : live_) shutdown(conn->fd, SHUT_RDWR);
  }
  if (accept_thread_.joinable()) {
    // cpp-httplib's stop() is lost if the accept loop has not started yet.
    while (!is_running() && !listen_returned_.load()) absl::SleepFor(absl::Milliseconds(1));
    stop();
    accept_thread_.join();
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    all_closed_.wait(lock, [this] { return live_.empty(); });
  }
  ReapFinished();
}

}  // namespace gitops::common
