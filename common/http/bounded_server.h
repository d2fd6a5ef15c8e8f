// A cpp-httplib server that slow or numerous clients cannot exhaust: the
// connection loop of the artifact file server and of the /healthz, /readyz
// and /metrics endpoints. Only these two servers include it (it pulls in
// httplib.h).
//
// cpp-httplib 0.11.4 on its own serves a connection on one thread of a
// fixed pool with per-recv read timeouts, so a client trickling one header
// byte a second holds a worker for ever; 8 such clients stopped the probes
// and 16 the artifact server (issue 17, item 6). Here, instead:
//   - the request line and headers must arrive whole before a deadline
//     (read_header_timeout) and within max_header_bytes;
//   - a write that makes no progress for write_timeout closes the connection;
//   - connections are bounded in total and per client address. At the total
//     bound a new connection evicts one still waiting for or sending its
//     request (from the client holding the most connections, oldest first):
//     clients that have not sent a request cost nothing to drop, so a probe
//     is served even while slow clients hold every slot. Only when every
//     slot is sending a response is the newcomer refused (503, closed).
// Each admitted connection runs on its own thread (at most max_connections
// at once, plus evicted ones on their way out).
#ifndef GITOPS_COMMON_HTTP_BOUNDED_SERVER_H_
#define GITOPS_COMMON_HTTP_BOUNDED_SERVER_H_

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/http/server_limits.h"
#include "common/runtime/shutdown.h"

namespace gitops::common {

// Register routes (Get, set_pre_routing_handler, ...) before Listen.
// Thread-safe after Listen.
class BoundedHttpServer : public httplib::Server {
 public:
  // `name` labels this server's metrics (gitops_http_connections_*_total
  // {server="<name>"}) and logs.
  BoundedHttpServer(std::string name, HttpServerLimits limits);
  ~BoundedHttpServer() override;
  BoundedHttpServer(const BoundedHttpServer&) = delete;
  BoundedHttpServer& operator=(const BoundedHttpServer&) = delete;

  // Binds `hp` (an empty host is 0.0.0.0; port 0 picks one; no
  // SO_REUSEPORT) and serves on a thread of its own. Returns the bound port.
  // Unavailable when the port cannot be bound.
  absl::StatusOr<int> Listen(const HostPort& hp);

  // Closes the connections that are not sending a response (idle keep-alive
  // ones, and ones still sending a request), and serves every later request
  // with "Connection: close". For graceful shutdown. Idempotent.
  void CloseIdleConnections();

  // Stops accepting, closes every connection (responses in progress are cut)
  // and joins every thread. Idempotent; the destructor calls it.
  void Stop();

  // Connections open now (for tests and metrics).
  int open_connections() const;

  // Called from a route handler: the connection closes after this response
  // ("Connection: close" is sent) instead of reading another request, e.g.
  // after refusing a request whose body was not read, which would otherwise
  // be parsed as the next request. Applies to the calling thread's request.
  static void CloseAfterThisResponse();

 private:
  struct Connection;
  class ConnectionStream;
  class InlineQueue;

  // Runs on the accept thread (InlineQueue): admission, then a thread.
  bool process_and_close_socket(socket_t sock) override;
  void Serve(Connection* conn);
  // Drops `conn` from the books (once): counts and eviction candidates.
  void UncountLocked(Connection* conn);
  Connection* PickVictimLocked();
  void MarkResponding(Connection* conn);
  void MarkWaiting(Connection* conn);
  void ReapFinished();
  void Reject(int fd, const char* reason);

  const std::string name_;
  const HttpServerLimits limits_;
  std::thread accept_thread_;
  std::atomic<bool> listen_returned_{false};

  mutable std::mutex mu_;
  std::condition_variable all_closed_;
  std::map<Connection*, std::unique_ptr<Connection>> live_;  // guarded by mu_
  std::map<std::string, int> per_client_;                    // guarded by mu_
  int counted_ = 0;                                          // guarded by mu_
  std::vector<std::thread> finished_;                        // guarded by mu_
  bool draining_ = false;                                    // guarded by mu_
  bool stopping_ = false;                                    // guarded by mu_
  bool stopped_ = false;                                     // guarded by mu_
};

}  // namespace gitops::common

#endif  // GITOPS_COMMON_HTTP_BOUNDED_SERVER_H_
