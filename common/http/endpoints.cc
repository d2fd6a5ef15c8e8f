#include "common/http/endpoints.h"

#include <httplib.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/httplib_socket.h"
#include "common/runtime/shutdown.h"

namespace gitops::common {
namespace {

class HttplibEndpoints : public HttpEndpoints {
 public:
  HttplibEndpoints(ReadyCheck ready, const Metrics* metrics)
      : ready_(std::move(ready)), metrics_(metrics) {
    UseExclusivePort(server_);
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    server_.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      absl::Status s = ready_ ? ready_() : absl::OkStatus();
      if (s.ok()) {
        res.set_content("ok\n", "text/plain");
      } else {
        res.status = 503;
        res.set_content(absl::StrCat("not ready: ", s.message(), "\n"), "text/plain");
      }
    });
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_ ? metrics_->Render() : std::string(),
                      "text/plain; version=0.0.4; charset=utf-8");
    });
  }

  ~HttplibEndpoints() override {
    // cpp-httplib's stop() is lost if the accept loop has not started yet:
    // wait for it (or for listen_after_bind to have returned).
    while (thread_.joinable() && !server_.is_running() && !listen_returned_.load()) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Listen(const HostPort& hp) {
    std::string host = hp.host.empty() ? "0.0.0.0" : hp.host;
    if (hp.port == 0) {
      port_ = server_.bind_to_any_port(host.c_str());
      if (port_ <= 0) return absl::UnavailableError(absl::StrCat("bind ", host, ":0 failed"));
    } else {
      if (!server_.bind_to_port(host.c_str(), hp.port)) {
        return absl::UnavailableError(
            absl::StrCat("bind ", host, ":", hp.port, " failed (port in use?)"));
      }
      port_ = hp.port;
    }
    thread_ = std::thread([this] {
      server_.listen_after_bind();
      listen_returned_ = true;
    });
    return absl::OkStatus();
  }

  int port() const override { return port_; }

 private:
  ReadyCheck ready_;
  const Metrics* metrics_;
  httplib::Server server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  int port_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpEndpoints>> HttpEndpoints::Start(absl::string_view address,
                                                                    ReadyCheck ready,
                                                                    const Metrics* metrics) {
  auto hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status();
  auto server = std::make_unique<HttplibEndpoints>(std::move(ready), metrics);
  absl::Status s = server->Listen(*hp);
  if (!s.ok()) return s;
  return std::unique_ptr<HttpEndpoints>(std::move(server));
}

}  // namespace gitops::common
