// source-controller: fetches sources, packs and stores artifacts, and
// publishes them over gRPC and plain HTTP. main only parses flags and wires
// objects.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/fs/confined.h"
#include "common/http/endpoints.h"
#include "common/http/limit_flags.h"
#include "common/kube/config.h"
#include "common/kube/events.h"
#include "common/kube/http_kube_client.h"
#include "common/kube/leader_election.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/runtime/byte_size.h"
#include "common/runtime/duration.h"
#include "common/runtime/flags.h"
#include "common/runtime/shutdown.h"
#include "common/status/status_macros.h"
#include "source-controller/artifact/storage.h"
#include "source-controller/controller/kube_runner.h"
#include "source-controller/controller/reconciler.h"
#include "source-controller/controller/sources_file.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "source-controller/grpc/artifact_server.h"
#include "source-controller/grpc/event_hub.h"
#include "source-controller/http/file_server.h"

ABSL_FLAG(std::string, grpc_addr, ":9090", "Address the gRPC ArtifactService listens on.");
ABSL_FLAG(std::string, metrics_addr, ":8080", "Address /metrics is served on.");
ABSL_FLAG(std::string, health_addr, ":9440", "Address /healthz and /readyz are served on.");
ABSL_FLAG(std::string, storage_path, "/data", "Directory artifacts are stored in.");
ABSL_FLAG(std::string, storage_addr, ":9080",
          "Address the plain HTTP artifact server listens on (Flux's file server: GET/HEAD "
          "/<kind>/<namespace>/<name>/<digest>.tar.gz); artifact URLs are then http://. Empty "
          "disables it and artifact URLs are grpc://.");
ABSL_FLAG(std::string, storage_adv_addr, "",
          "host[:port] put in artifact URLs (<scheme>://<storage-adv-addr>/<path>). Default, as "
          "Flux: the --storage-addr listen address (--grpc-addr when HTTP is disabled) with an "
          "empty host read as localhost and 0.0.0.0 as $HOSTNAME, and the bound port. In a "
          "cluster: the Service's DNS name, without a port when the Service maps port 80 to the "
          "HTTP port.");
ABSL_FLAG(std::string, artifact_max_size, "0",
          "Refuse to store an artifact whose files add up to more than this many bytes: a number "
          "with an optional suffix Ki, Mi, Gi, Ti (1024-based) or k, M, G, T (1000-based). 0 = no "
          "limit.");
ABSL_FLAG(int, interval_jitter_percentage, 5,
          "Percentage of jitter to apply to interval durations. A value of 10 will apply a "
          "jitter of +/-10% to the interval duration. It cannot be negative, and must be less "
          "than 100.");
ABSL_FLAG(std::string, artifact_retention_ttl, "60s",
          "How long superseded artifacts are kept before garbage collection.");
ABSL_FLAG(int, artifact_retention_records, 2,
          "How many artifacts per source are kept after garbage collection.");
ABSL_FLAG(std::string, sources_file, "",
          "Run without Kubernetes: reconcile the GitRepository (and Secret) manifests in this "
          "file, re-read whenever it changes.");
ABSL_FLAG(int, concurrent, 2, "Number of sources reconciled at the same time.");
ABSL_FLAG(std::string, kubeconfig, "",
          "Kubernetes mode: path to a kubeconfig (default: $KUBECONFIG, in-cluster config, then "
          "~/.kube/config).");
ABSL_FLAG(bool, watch_all_namespaces, true,
          "Watch GitRepositories in all namespaces; false watches only the runtime namespace "
          "($RUNTIME_NAMESPACE, else the kubeconfig's namespace).");
ABSL_FLAG(double, kube_api_qps, 50, "Maximum queries per second to the Kubernetes API.");
ABSL_FLAG(int, kube_api_burst, 300, "Maximum burst of queries to the Kubernetes API.");
ABSL_FLAG(bool, enable_leader_election, false,
          "Run only while holding the Lease source-controller-leader-election in the runtime "
          "namespace, so that one replica works at a time.");
ABSL_FLAG(std::string, requeue_dependency, "30s",
          "Retry delay for a source waiting on another one (reserved for spec.include).");
ABSL_FLAG(std::string, grpc_tls_cert, "", "PEM certificate for TLS on the gRPC port.");
ABSL_FLAG(std::string, grpc_tls_key, "", "PEM private key for TLS on the gRPC port.");
ABSL_FLAG(std::string, grpc_tls_client_ca, "",
          "PEM CA; when set, gRPC clients must present a certificate it signed (mTLS).");
ABSL_FLAG(int, storage_max_connections, 64,
          "Connections the HTTP artifact server (--storage-addr) keeps open at once, one thread "
          "each. At the bound, a new connection replaces one that has not sent a whole request "
          "(from the client with the most connections), else it is answered 503 and closed.");
ABSL_FLAG(int, storage_max_connections_per_client, 16,
          "Connections the HTTP artifact server keeps open at once from one client IP address; "
          "more are answered 503 and closed. 0 = no limit.");
ABSL_FLAG(int, grpc_max_streams, 64,
          "WatchArtifacts and FetchArtifact streams served at once; more are refused with "
          "RESOURCE_EXHAUSTED. Each costs a thread and, while its client does not read, up to "
          "about two chunks (2 MiB) of memory.");
ABSL_FLAG(std::string, grpc_write_timeout, "60s",
          "A gRPC stream whose client reads nothing for this long (its flow-control window "
          "stays full) is ended with UNAVAILABLE, freeing its thread and buffers; the client "
          "reconnects and resumes from its last sequence number or byte offset.");
ABSL_FLAG(std::string, grpc_max_connection_idle, "5m",
          "A gRPC connection with no call open for this long is closed (HTTP/2 GOAWAY).");
ABSL_FLAG(std::string, log_level, "info", "Log verbosity: debug, info or error.");
ABSL_FLAG(std::string, log_encoding, "json", "Log format: json or console.");

namespace gitops::source {
namespace {

// Serves /metrics, /healthz and /readyz on the metrics address and, when it
// differs, on the health address too (`health` stays null otherwise).
struct Endpoints {
  std::unique_ptr<common::HttpEndpoints> metrics, health;
};
absl::StatusOr<Endpoints> StartEndpoints(std::function<absl::Status()> ready_check,
                                         const common::HttpServerLimits& limits) {
  Endpoints e;
  auto metrics_http = common::HttpEndpoints::Start(absl::GetFlag(FLAGS_metrics_addr), ready_check,
                                                   &common::Metrics::Global(), limits);
  if (!metrics_http.ok()) return metrics_http.status();
  e.metrics = std::move(*metrics_http);
  if (absl::GetFlag(FLAGS_health_addr) != absl::GetFlag(FLAGS_metrics_addr)) {
    auto h = common::HttpEndpoints::Start(absl::GetFlag(FLAGS_health_addr), ready_check,
                                          &common::Metrics::Global(), limits);
    if (!h.ok()) return h.status();
    e.health = std::move(*h);
  }
  return e;
}

// The connection limits of the HTTP servers, from the flags.
struct HttpLimits {
  common::HttpServerLimits storage, endpoints;
};
absl::StatusOr<HttpLimits> HttpLimitsFromFlags() {
  HttpLimits l;
  ASSIGN_OR_RETURN(l.endpoints, common::EndpointLimitsFromFlags());
  l.storage = FileServerOptions::DefaultFileServerLimits();
  RETURN_IF_ERROR(common::ApplyHttpTimeoutFlags(&l.storage));
  l.storage.max_connections = absl::GetFlag(FLAGS_storage_max_connections);
  l.storage.max_connections_per_client = absl::GetFlag(FLAGS_storage_max_connections_per_client);
  absl::Status s = common::ValidateHttpServerLimits(l.storage);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-read-header-timeout, --http-write-timeout, --storage-max-connections, "
                     "--storage-max-connections-per-client: ",
                     s.message()));
  }
  return l;
}

std::string Hostname() {
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  return host;
}

// Flux's default for --storage-adv-addr: the listen address, an empty host
// read as localhost and 0.0.0.0 as $HOSTNAME (else the host's name), with the
// bound port (so that port 0 gives a usable URL).
std::string DefaultAdvertisedAddress(absl::string_view listen_address, int bound_port) {
  auto hp = common::ParseHostPort(listen_address);
  std::string host = hp.ok() ? hp->host : "";
  if (host.empty()) {
    host = "localhost";
  } else if (host == "0.0.0.0" || host == "::") {
    const char* env = std::getenv("HOSTNAME");
    host = env != nullptr && *env != '\0' ? env : Hostname();
  }
  if (host.find(':') != std::string::npos) host = absl::StrCat("[", host, "]");
  return absl::StrCat(host, ":", bound_port);
}

// The artifact servers: gRPC always, plain HTTP unless --storage-addr="".
struct Servers {
  std::unique_ptr<ArtifactServer> grpc;
  std::unique_ptr<ArtifactFileServer> http;

  std::string http_port() const { return http ? std::to_string(http->port()) : ""; }
  // Both drain at once: HTTP downloads get Flux's 5 s, gRPC streams 10 s.
  void Shutdown() {
    std::thread http_stop([this] {
      if (http) http->Shutdown(absl::Seconds(5));
    });
    grpc->Shutdown(absl::Seconds(10));
    http_stop.join();
  }
};

// Kubernetes mode: the GitRepository controller on the API server, under
// leader election when asked, until SIGTERM/SIGINT or a lost lease.
int RunKubernetes(common::HttpKubeClient& kube, GitRepositoryReconciler& reconciler,
                  const std::string& runtime_namespace, absl::Duration requeue_dependency,
                  Servers& servers, const std::string& storage_path, const std::string& adv,
                  const common::HttpServerLimits& endpoint_limits) {
  common::KubeEventRecorder::Options event_options;
  event_options.component = "source-controller";
  event_options.host = Hostname();
  common::KubeEventRecorder events(kube, event_options);

  KubeRunnerOptions runner_options;
  runner_options.watch_namespace =
      absl::GetFlag(FLAGS_watch_all_namespaces) ? "" : runtime_namespace;
  runner_options.workers = absl::GetFlag(FLAGS_concurrent);
  runner_options.requeue_dependency = requeue_dependency;
  runner_options.interval_jitter_percent = absl::GetFlag(FLAGS_interval_jitter_percentage);
  runner_options.storage_root = storage_path;
  std::atomic<bool> shutdown{false};
  runner_options.cancel = &shutdown;
  KubeGitRepositoryRunner runner(kube, &events, &reconciler, runner_options);

  std::atomic<bool> ready{true};
  auto endpoints = StartEndpoints(
      [&ready]() {
        return ready.load() ? absl::OkStatus() : absl::UnavailableError("shutting down");
      },
      endpoint_limits);
  if (!endpoints.ok()) {
    common::LogError("cannot serve metrics or health probes",
                     {{"error", endpoints.status().message()}});
    return 1;
  }

  std::unique_ptr<common::LeaderElectionConfig> election;
  if (absl::GetFlag(FLAGS_enable_leader_election)) {
    election = std::make_unique<common::LeaderElectionConfig>();
    election->lease_namespace = runtime_namespace;
    election->lease_name = "source-controller-leader-election";
    std::mt19937_64 rng{std::random_device{}()};
    election->identity = absl::StrCat(Hostname(), "_", absl::Hex(rng(), absl::kZeroPad16));
  }
  common::LogInfo("source-controller started",
                  {{"grpc_port", std::to_string(servers.grpc->port())},
                   {"http_port", servers.http_port()},
                   {"metrics_port", std::to_string(endpoints->metrics->port())},
                   {"health_port", std::to_string(endpoints->health ? endpoints->health->port()
                                                                    : endpoints->metrics->port())},
                   {"storage_path", storage_path},
                   {"storage_adv_addr", adv},
                   {"artifact_max_size", absl::GetFlag(FLAGS_artifact_max_size)},
                   {"interval_jitter_percentage",
                    std::to_string(absl::GetFlag(FLAGS_interval_jitter_percentage))},
                   {"mode", "kubernetes"},
                   {"watch_namespace", runner_options.watch_namespace},
                   {"leader_election", election ? "true" : "false"}});

  // The controller runs on its own thread while this one waits for a signal.
  std::atomic<int> exit_code{0};
  std::thread controller([&]() {
    auto start = [&]() {
      absl::Status s = runner.Start();
      if (!s.ok() && !absl::IsCancelled(s)) {
        common::LogError("cannot start the GitRepository controller", {{"error", s.message()}});
        exit_code.store(1);
        common::RequestShutdown();
      }
    };
    auto stop = [&]() { runner.Stop(); };
    absl::Status s = common::RunWithLeaderElection(kube, election.get(), start, stop, shutdown);
    if (!s.ok()) {
      common::LogError("leader election lost; exiting", {{"error", s.message()}});
      exit_code.store(1);
      common::RequestShutdown();
    }
  });

  std::string sig = common::WaitForShutdownSignal();
  common::LogInfo("shutting down", {{"signal", sig}});
  ready.store(false);
  shutdown.store(true);
  controller.join();  // in-flight reconciles finish first
  runner.Stop();
  events.Flush();
  servers.Shutdown();
  common::LogInfo("stopped");
  return exit_code.load();
}

int Run() {
  namespace fs = std::filesystem;
  auto level = common::ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  auto encoding = common::ParseLogEncoding(absl::GetFlag(FLAGS_log_encoding));
  if (!level.ok() || !encoding.ok()) {
    fprintf(stderr, "%s\n",
            std::string((!level.ok() ? level.status() : encoding.status()).message()).c_str());
    return 2;
  }
  common::InitLogging("source-controller", *level, *encoding);
  auto fail = [](absl::string_view what, const absl::Status& s) {
    common::LogError(what, {{"error", s.message()}});
    return 1;
  };

  auto ttl = common::ParseGoDuration(absl::GetFlag(FLAGS_artifact_retention_ttl));
  if (!ttl.ok()) return fail("invalid --artifact-retention-ttl", ttl.status());
  auto max_size = common::ParseByteSize(absl::GetFlag(FLAGS_artifact_max_size));
  if (!max_size.ok()) return fail("invalid --artifact-max-size", max_size.status());
  const int jitter = absl::GetFlag(FLAGS_interval_jitter_percentage);
  if (jitter < 0 || jitter >= 100) {
    return fail("invalid --interval-jitter-percentage",
                absl::InvalidArgumentError(absl::StrCat(
                    "the interval jitter percentage must be a non-negative value and less than "
                    "100, got ",
                    jitter)));
  }
  auto http_limits = HttpLimitsFromFlags();
  if (!http_limits.ok()) return fail("invalid HTTP server limits", http_limits.status());
  auto grpc_write_timeout = common::ParseGoDuration(absl::GetFlag(FLAGS_grpc_write_timeout));
  if (!grpc_write_timeout.ok())
    return fail("invalid --grpc-write-timeout", grpc_write_timeout.status());
  auto grpc_idle = common::ParseGoDuration(absl::GetFlag(FLAGS_grpc_max_connection_idle));
  if (!grpc_idle.ok()) return fail("invalid --grpc-max-connection-idle", grpc_idle.status());
  const std::string storage_addr = absl::GetFlag(FLAGS_storage_addr);
  if (!storage_addr.empty()) {
    auto hp = common::ParseHostPort(storage_addr);
    if (!hp.ok()) return fail("invalid --storage-addr", hp.status());
  }
  const std::string sources_file = absl::GetFlag(FLAGS_sources_file);
  // Kubernetes mode unless --sources-file: load the kubeconfig before
  // opening storage or ports, so a bad config fails fast.
  std::unique_ptr<common::HttpKubeClient> kube;
  std::string runtime_namespace;
  absl::Duration requeue_dependency = absl::Seconds(30);
  if (sources_file.empty()) {
    auto config = common::LoadDefaultKubeConfig(absl::GetFlag(FLAGS_kubeconfig));
    if (!config.ok()) return fail("cannot load kubeconfig", config.status());
    config->qps = absl::GetFlag(FLAGS_kube_api_qps);
    config->burst = absl::GetFlag(FLAGS_kube_api_burst);
    config->user_agent = "source-controller";
    const char* env_ns = std::getenv("RUNTIME_NAMESPACE");
    runtime_namespace = env_ns != nullptr && *env_ns != '\0' ? env_ns : config->default_namespace;
    auto client = common::HttpKubeClient::Create(*config);
    if (!client.ok()) return fail("cannot create Kubernetes client", client.status());
    kube = std::move(*client);
    auto requeue = common::ParseGoDuration(absl::GetFlag(FLAGS_requeue_dependency));
    if (!requeue.ok()) return fail("invalid --requeue-dependency", requeue.status());
    requeue_dependency = *requeue;
  }

  const fs::path storage_root = absl::GetFlag(FLAGS_storage_path);
  auto storage = ArtifactStorage::Create(storage_root.string());
  if (!storage.ok()) return fail("cannot open storage", storage.status());
  ArtifactEventHub hub;

  ArtifactServerOptions server_options;
  server_options.listen_address = absl::GetFlag(FLAGS_grpc_addr);
  server_options.tls_cert_file = absl::GetFlag(FLAGS_grpc_tls_cert);
  server_options.tls_key_file = absl::GetFlag(FLAGS_grpc_tls_key);
  server_options.tls_client_ca_file = absl::GetFlag(FLAGS_grpc_tls_client_ca);
  server_options.max_streams = absl::GetFlag(FLAGS_grpc_max_streams);
  server_options.write_timeout = *grpc_write_timeout;
  server_options.max_connection_idle = *grpc_idle;
  Servers servers;
  auto grpc_server = ArtifactServer::Start(server_options, &hub, storage->get());
  if (!grpc_server.ok()) return fail("cannot start gRPC server", grpc_server.status());
  servers.grpc = std::move(*grpc_server);
  if (!storage_addr.empty()) {
    FileServerOptions http_options;
    http_options.listen_address = storage_addr;
    http_options.storage_root = (*storage)->root();
    http_options.limits = http_limits->storage;
    auto http_server = ArtifactFileServer::Start(http_options);
    if (!http_server.ok()) return fail("cannot start HTTP artifact server", http_server.status());
    servers.http = std::move(*http_server);
  }

  std::string adv = absl::GetFlag(FLAGS_storage_adv_addr);
  if (adv.empty()) {
    adv = servers.http
              ? DefaultAdvertisedAddress(storage_addr, servers.http->port())
              : DefaultAdvertisedAddress(server_options.listen_address, servers.grpc->port());
  }

  std::unique_ptr<GitFetcher> git = NewLibgit2Fetcher();
  ReconcilerOptions rec_options;
  rec_options.cache_root = (storage_root / ".git-cache").string();
  rec_options.work_root = (storage_root / ".work").string();
  rec_options.advertised_address = adv;
  rec_options.url_scheme = servers.http ? "http" : "grpc";
  rec_options.max_artifact_size = *max_size;
  rec_options.retention_records = absl::GetFlag(FLAGS_artifact_retention_records);
  rec_options.retention_ttl = *ttl;
  // Checkouts a crash left behind; their symlinks are removed, not followed.
  if (absl::Status s = common::RemoveTree(rec_options.work_root); !s.ok()) {
    common::LogError("cannot remove old work directory", {{"error", s.message()}});
  }
  GitRepositoryReconciler reconciler(ReconcilerDeps{git.get(), storage->get(), &hub}, rec_options);

  if (kube != nullptr) {
    return RunKubernetes(*kube, reconciler, runtime_namespace, requeue_dependency, servers,
                         storage_root.string(), adv, http_limits->endpoints);
  }

  SourcesFileOptions file_options;
  file_options.path = sources_file;
  file_options.state_root = (storage_root / ".state").string();
  file_options.workers = absl::GetFlag(FLAGS_concurrent);
  SourcesFileRunner runner(file_options, &reconciler);
  absl::Status started = runner.Start();
  if (!started.ok()) return fail("cannot load sources file", started);

  std::atomic<bool> ready{true};
  auto ready_check = [&ready]() {
    return ready.load() ? absl::OkStatus() : absl::UnavailableError("shutting down");
  };
  auto endpoints = StartEndpoints(ready_check, http_limits->endpoints);
  if (!endpoints.ok()) return fail("cannot serve metrics or health probes", endpoints.status());
  auto& metrics_http = endpoints->metrics;
  auto& health_http = endpoints->health;
  common::LogInfo(
      "source-controller started",
      {{"grpc_port", std::to_string(servers.grpc->port())},
       {"http_port", servers.http_port()},
       {"metrics_port", std::to_string(metrics_http->port())},
       {"health_port", std::to_string(health_http ? health_http->port() : metrics_http->port())},
       {"storage_path", storage_root.string()},
       {"storage_adv_addr", adv},
       {"artifact_max_size", absl::GetFlag(FLAGS_artifact_max_size)},
       {"sources_file", sources_file}});

  std::string sig = common::WaitForShutdownSignal();
  common::LogInfo("shutting down", {{"signal", sig}});
  ready.store(false);
  runner.Stop();  // in-flight reconciles finish first
  servers.Shutdown();
  common::LogInfo("stopped");
  return 0;
}

}  // namespace
}  // namespace gitops::source

int main(int argc, char** argv) {
  gitops::common::BlockShutdownSignals();
  std::vector<std::string> args = gitops::common::ParseFlags(
      argc, argv,
      "Flux-compatible source-controller: fetches GitRepositories, packs deterministic "
      "artifacts and publishes them over gRPC and, like Flux, plain HTTP.\n\n"
      "  source-controller [--kubeconfig=FILE] --storage-path=DIR [--grpc-addr=:9090] "
      "[--storage-addr=:9080]\n"
      "  source-controller --sources-file=FILE --storage-path=DIR [--grpc-addr=:9090] "
      "[--storage-addr=:9080]\n");
  if (args.size() > 1) {
    fprintf(stderr, "unexpected argument \"%s\"; see --help\n", args[1].c_str());
    return 2;
  }
  return gitops::source::Run();
}
