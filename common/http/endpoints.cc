#include "common/http/endpoints.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/http/bounded_server.h"
#include "common/runtime/shutdown.h"

namespace gitops::common {
namespace {

class HttplibEndpoints : public HttpEndpoints {
 public:
  HttplibEndpoints(ReadyCheck ready, const Metrics* metrics, const HttpServerLimits& limits)
      : ready_(std::move(ready)), metrics_(metrics), server_("endpoints", limits) {
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

  ~HttplibEndpoints() override { server_.Stop(); }

  absl::Status Listen(const HostPort& hp) {
    auto port = server_.Listen(hp);
    if (!port.ok()) return port.status();
    port_ = *port;
    return absl::OkStatus();
  }

  int port() const override { return port_; }

 private:
  ReadyCheck ready_;
  const Metrics* metrics_;
  BoundedHttpServer server_;
  int port_ = 0;
};

}  // namespace

HttpServerLimits HttpEndpoints::DefaultLimits() {
  HttpServerLimits limits;
  limits.max_connections = 16;
  limits.write_timeout = absl::Seconds(10);
  return limits;
}

absl::StatusOr<std::unique_ptr<HttpEndpoints>> HttpEndpoints::Start(
    absl::string_view address, ReadyCheck ready, const Metrics* metrics,
    const HttpServerLimits& limits) {
  auto hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status();
  absl::Status valid = ValidateHttpServerLimits(limits);
  if (!valid.ok()) return valid;
  auto server = std::make_unique<HttplibEndpoints>(std::move(ready), metrics, limits);
  absl::Status s = server->Listen(*hp);
  if (!s.ok()) return s;
  return std::unique_ptr<HttpEndpoints>(std::move(server));
}

}  // namespace gitops::common
