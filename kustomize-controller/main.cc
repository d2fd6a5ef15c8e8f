// kustomize-controller: subscribes to the source-controller's artifact
// stream, pulls and verifies artifacts, and renders them. main only parses
// flags and wires objects.
//
//   kustomize-controller [flags]            run: keep the artifact cache in sync
//   kustomize-controller watch [flags]      print artifact events as JSON lines
//   kustomize-controller fetch [flags] DIR  download, verify and extract one artifact
//                                           (DIR ending in .tar.gz: the tarball only)
//   kustomize-controller build DIR          render DIR like `kustomize build`
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/archive/extract.h"
#include "common/http/endpoints.h"
#include "common/http/limit_flags.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/runtime/duration.h"
#include "common/runtime/flags.h"
#include "common/runtime/shutdown.h"
#include "kustomize-controller/grpc/health_server.h"
#include "kustomize-controller/kustomize/build.h"
#include "kustomize-controller/subscriber/artifact_cache.h"
#include "kustomize-controller/subscriber/artifact_client.h"

ABSL_FLAG(std::string, source_addr, "source-controller.flux-system.svc.cluster.local:9090",
          "host:port of the source-controller's gRPC artifact service.");
ABSL_FLAG(std::string, source_tls_ca, "", "PEM CA to verify the source-controller (enables TLS).");
ABSL_FLAG(std::string, source_tls_cert, "", "PEM client certificate for mTLS.");
ABSL_FLAG(std::string, source_tls_key, "", "PEM client key for mTLS.");
ABSL_FLAG(std::string, artifact_cache_path, "/tmp/kustomize-controller/artifacts",
          "Directory extracted artifacts are cached in, keyed by digest.");
ABSL_FLAG(int64_t, max_artifact_bytes, int64_t{1} << 30,
          "Refuse artifacts that extract to more than this many bytes.");
ABSL_FLAG(int64_t, max_artifact_files, 100000, "Refuse artifacts with more entries than this.");
ABSL_FLAG(int64_t, max_bytes_per_second, 0, "Cap artifact download speed (0 = unlimited).");
ABSL_FLAG(std::string, fetch_timeout, "5m", "Give up on one artifact download after this long.");
ABSL_FLAG(std::string, kind, "", "watch/fetch: the source kind (fetch default GitRepository).");
ABSL_FLAG(std::string, namespace, "", "watch/fetch: the source namespace.");
ABSL_FLAG(std::string, name, "", "watch/fetch: the source name.");
ABSL_FLAG(std::string, digest, "", "fetch: a specific digest (default: the current artifact).");
ABSL_FLAG(std::string, grpc_addr, ":9091", "Address the gRPC health service listens on.");
ABSL_FLAG(std::string, metrics_addr, ":8080", "Address /metrics is served on.");
ABSL_FLAG(std::string, health_addr, ":9440", "Address /healthz and /readyz are served on.");
ABSL_FLAG(std::string, log_level, "info", "Log verbosity: debug, info or error.");
ABSL_FLAG(std::string, log_encoding, "json", "Log format: json or console.");

namespace gitops::kustomize {
namespace {

absl::StatusOr<std::unique_ptr<ArtifactClient>> NewClient() {
  ArtifactClientOptions o;
  o.source_address = absl::GetFlag(FLAGS_source_addr);
  o.tls_ca_file = absl::GetFlag(FLAGS_source_tls_ca);
  o.tls_cert_file = absl::GetFlag(FLAGS_source_tls_cert);
  o.tls_key_file = absl::GetFlag(FLAGS_source_tls_key);
  o.max_bytes_per_second = absl::GetFlag(FLAGS_max_bytes_per_second);
  return ArtifactClient::Create(o);
}

common::ExtractLimits Limits() {
  common::ExtractLimits l;
  l.max_total_bytes = absl::GetFlag(FLAGS_max_artifact_bytes);
  l.max_files = absl::GetFlag(FLAGS_max_artifact_files);
  return l;
}

std::string EventJson(const WatchEvent& e) {
  std::string out = "{\"type\":";
  const char* type = e.type == WatchEvent::Type::kUpdated   ? "UPDATED"
                     : e.type == WatchEvent::Type::kDeleted ? "DELETED"
                                                            : "SYNCED";
  common::AppendJsonString(out, type);
  absl::StrAppend(&out, ",\"sequence\":", e.sequence);
  if (e.type != WatchEvent::Type::kSynced) {
    const ArtifactRef& a = e.artifact;
    for (auto [k, v] : {std::pair<const char*, const std::string*>{"kind", &a.kind},
                        {"namespace", &a.namespace_name},
                        {"name", &a.name},
                        {"revision", &a.revision},
                        {"digest", &a.digest},
                        {"url", &a.url}}) {
      absl::StrAppend(&out, ",\"", k, "\":");
      common::AppendJsonString(out, *v);
    }
    absl::StrAppend(&out, ",\"size\":", a.size);
  }
  out += "}\n";
  return out;
}

// Runs `body` on a thread until it returns or a shutdown signal arrives; on a
// signal, `stop` is called and the thread joined. Returns 0.
template <typename Body, typename Stop>
int RunUntilSignal(Body body, Stop stop) {
  std::atomic<bool> done{false};
  std::thread worker([&] {
    body();
    done.store(true);
    common::RequestShutdown();
  });
  std::string sig = common::WaitForShutdownSignal();
  if (!done.load()) {
    common::LogInfo("shutting down", {{"signal", sig}});
    stop();
  }
  worker.join();
  return 0;
}

int Watch() {
  auto client = NewClient();
  if (!client.ok()) {
    common::LogError("invalid options", {{"error", client.status().message()}});
    return 2;
  }
  WatchFilter filter{absl::GetFlag(FLAGS_kind), absl::GetFlag(FLAGS_namespace),
                     absl::GetFlag(FLAGS_name)};
  return RunUntilSignal(
      [&] {
        (*client)->Watch(filter, [](const WatchEvent& e) {
          std::string line = EventJson(e);
          fwrite(line.data(), 1, line.size(), stdout);
          fflush(stdout);
        });
      },
      [&] { (*client)->Stop(); });
}

int Fetch(const std::string& dir) {
  auto client = NewClient();
  if (!client.ok()) {
    common::LogError("invalid options", {{"error", client.status().message()}});
    return 2;
  }
  std::string kind =
      absl::GetFlag(FLAGS_kind).empty() ? "GitRepository" : absl::GetFlag(FLAGS_kind);
  std::string ns =
      absl::GetFlag(FLAGS_namespace).empty() ? "default" : absl::GetFlag(FLAGS_namespace);
  if (absl::GetFlag(FLAGS_name).empty()) {
    fprintf(stderr, "fetch: --name is required\n");
    return 2;
  }
  auto timeout = common::ParseGoDuration(absl::GetFlag(FLAGS_fetch_timeout));
  if (!timeout.ok()) {
    fprintf(stderr, "--fetch-timeout: %s\n", std::string(timeout.status().message()).c_str());
    return 2;
  }
  int rc = 1;
  RunUntilSignal(
      [&] {
        auto artifact = (*client)->GetArtifact(kind, ns, absl::GetFlag(FLAGS_name));
        if (!artifact.ok()) {
          common::LogError("fetch failed", {{"error", artifact.status().message()}});
          return;
        }
        if (!absl::GetFlag(FLAGS_digest).empty()) artifact->digest = absl::GetFlag(FLAGS_digest);
        namespace fs = std::filesystem;
        std::error_code ec;
        fs::path out(dir);
        fs::create_directories(out.parent_path().empty() ? fs::path(".") : out.parent_path(), ec);
        // A destination ending in .tar.gz gets the verified tarball only.
        const bool tarball_only = absl::EndsWith(dir, ".tar.gz");
        std::string tarball = tarball_only ? dir : out.string() + ".tar.gz";
        absl::Status s = (*client)->Fetch(*artifact, tarball, absl::Now() + *timeout);
        if (s.ok() && !tarball_only) {
          std::string staging = out.string() + ".extracting";
          fs::remove_all(staging, ec);
          s = common::ExtractTarGz(tarball, staging, Limits());
          if (s.ok()) {
            fs::remove_all(out, ec);
            fs::rename(staging, out, ec);
            if (ec) s = absl::InternalError(absl::StrCat("rename into ", dir, ": ", ec.message()));
          } else {
            fs::remove_all(staging, ec);
          }
        }
        if (!s.ok()) {
          common::LogError("fetch failed",
                           {{"source", artifact->SourceId()}, {"error", s.message()}});
          return;
        }
        common::LogInfo("artifact fetched and verified", {{"source", artifact->SourceId()},
                                                          {"revision", artifact->revision},
                                                          {"digest", artifact->digest},
                                                          {"tarball", tarball},
                                                          {"dir", dir}});
        rc = 0;
      },
      [&] { (*client)->Stop(); });
  return rc;
}

// Controller mode (until the Kubernetes-driven reconciler lands): keep the
// artifact cache in sync with the stream, so every announced revision is
// pulled, verified and extracted once.
int Run() {
  auto client = NewClient();
  if (!client.ok()) {
    common::LogError("invalid options", {{"error", client.status().message()}});
    return 2;
  }
  auto cache =
      ArtifactCache::Create(absl::GetFlag(FLAGS_artifact_cache_path), client->get(), Limits());
  if (!cache.ok()) {
    common::LogError("cannot create artifact cache", {{"error", cache.status().message()}});
    return 1;
  }
  auto timeout = common::ParseGoDuration(absl::GetFlag(FLAGS_fetch_timeout));
  if (!timeout.ok()) {
    common::LogError("invalid --fetch-timeout", {{"error", timeout.status().message()}});
    return 2;
  }
  std::atomic<bool> synced{false};
  auto ready_check = [&synced]() {
    return synced.load() ? absl::OkStatus()
                         : absl::UnavailableError("artifact stream not synced yet");
  };
  auto limits = common::EndpointLimitsFromFlags();
  if (!limits.ok()) {
    common::LogError("invalid flag", {{"error", limits.status().message()}});
    return 2;
  }
  auto metrics_http = common::HttpEndpoints::Start(absl::GetFlag(FLAGS_metrics_addr), ready_check,
                                                   &common::Metrics::Global(), *limits);
  if (!metrics_http.ok()) {
    common::LogError("cannot serve metrics", {{"error", metrics_http.status().message()}});
    return 1;
  }
  std::unique_ptr<common::HttpEndpoints> health_http;
  if (absl::GetFlag(FLAGS_health_addr) != absl::GetFlag(FLAGS_metrics_addr)) {
    auto h = common::HttpEndpoints::Start(absl::GetFlag(FLAGS_health_addr), ready_check,
                                          &common::Metrics::Global(), *limits);
    if (!h.ok()) {
      common::LogError("cannot serve health probes", {{"error", h.status().message()}});
      return 1;
    }
    health_http = std::move(*h);
  }
  auto grpc_health = HealthServer::Start(absl::GetFlag(FLAGS_grpc_addr));
  if (!grpc_health.ok()) {
    common::LogError("cannot start gRPC health service",
                     {{"error", grpc_health.status().message()}});
    return 1;
  }
  common::LogInfo("kustomize-controller started",
                  {{"source_addr", absl::GetFlag(FLAGS_source_addr)},
                   {"grpc_port", std::to_string((*grpc_health)->port())},
                   {"metrics_port", std::to_string((*metrics_http)->port())},
                   {"health_port",
                    std::to_string(health_http ? health_http->port() : (*metrics_http)->port())}});
  int rc = RunUntilSignal(
      [&] {
        (*client)->Watch(WatchFilter{}, [&](const WatchEvent& e) {
          if (e.type == WatchEvent::Type::kSynced) {
            if (!synced.exchange(true)) common::LogInfo("artifact stream synced");
            return;
          }
          if (e.type == WatchEvent::Type::kDeleted) {
            common::LogInfo("source deleted", {{"source", e.artifact.SourceId()}});
            return;
          }
          common::LogInfo("new artifact announced", {{"source", e.artifact.SourceId()},
                                                     {"revision", e.artifact.revision},
                                                     {"digest", e.artifact.digest}});
          auto dir = (*cache)->Get(e.artifact, absl::Now() + *timeout);
          if (!dir.ok()) {
            common::LogError("artifact rejected", {{"source", e.artifact.SourceId()},
                                                   {"revision", e.artifact.revision},
                                                   {"error", dir.status().message()}});
          }
        });
      },
      [&] {
        synced.store(false);
        (*grpc_health)->SetNotServing();
        (*client)->Stop();
      });
  common::LogInfo("stopped");
  return rc;
}

}  // namespace
}  // namespace gitops::kustomize

int main(int argc, char** argv) {
  gitops::common::BlockShutdownSignals();
  std::vector<std::string> args = gitops::common::ParseFlags(
      argc, argv,
      "Flux-compatible kustomize-controller.\n\n"
      "  kustomize-controller [--source-addr=HOST:PORT]    keep the artifact cache in sync\n"
      "  kustomize-controller watch [--kind= --namespace= --name=]   print artifact events\n"
      "  kustomize-controller fetch --namespace=NS --name=NAME DIR   fetch, verify, extract\n"
      "  kustomize-controller build DIR                  render like `kustomize build`\n");
  auto level = gitops::common::ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  auto encoding = gitops::common::ParseLogEncoding(absl::GetFlag(FLAGS_log_encoding));
  if (!level.ok() || !encoding.ok()) {
    fprintf(stderr, "invalid --log-level or --log-encoding\n");
    return 2;
  }
  gitops::common::InitLogging("kustomize-controller", *level, *encoding);
  std::string command = args.size() > 1 ? args[1] : "";
  if (command.empty()) return gitops::kustomize::Run();
  if (command == "watch" && args.size() == 2) return gitops::kustomize::Watch();
  if (command == "fetch" && args.size() == 3) return gitops::kustomize::Fetch(args[2]);
  if (command == "build" && args.size() == 3) return gitops::kustomize::RunBuildCommand(args[2]);
  fprintf(stderr, "unknown command; see --help\n");
  return 2;
}
