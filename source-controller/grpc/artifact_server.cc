#include "source-controller/grpc/artifact_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/runtime/shutdown.h"
#include "gitops/artifact/v1/artifact.grpc.pb.h"

namespace gitops::source {
namespace {

using ::grpc::ServerContext;
using ::grpc::ServerWriter;
using ::grpc::Status;
using ::grpc::StatusCode;

constexpr char kBytesMetric[] = "gitops_artifact_bytes_sent_total";
constexpr char kFetchMetric[] = "gitops_artifact_fetches_total";
constexpr char kWatchersMetric[] = "gitops_artifact_watchers";

std::string Describe(const v1::SourceReference& ref) {
  return absl::StrCat(ref.kind(), " ", ref.namespace_(), "/", ref.name());
}

SourceKey KeyOf(const v1::SourceReference& ref) {
  return SourceKey{ref.kind(), ref.namespace_(), ref.name()};
}

Status ToGrpc(const absl::Status& s) {
  return Status(static_cast<StatusCode>(s.code()), std::string(s.message()));
}

class ArtifactServiceImpl final : public v1::ArtifactService::Service {
 public:
  ArtifactServiceImpl(const ArtifactServerOptions& options, ArtifactEventHub* hub,
                      ArtifactStorage* storage)
      : options_(options), hub_(hub), storage_(storage) {}

  void BeginShutdown() { shutting_down_.store(true); }

  Status WatchArtifacts(ServerContext* context, const v1::WatchArtifactsRequest* request,
                        ServerWriter<v1::ArtifactEvent>* writer) override {
    EventFilter filter{request->kind(), request->namespace_(), request->name()};
    common::Metrics::Global().Add(kWatchersMetric, {}, 1);
    struct Gauge {
      ~Gauge() { common::Metrics::Global().Add(kWatchersMetric, {}, -1); }
    } gauge;
    common::LogInfo("watch started",
                    {{"peer", context->peer()},
                     {"resume_epoch", request->resume_epoch()},
                     {"resume_sequence", std::to_string(request->resume_sequence())}});

    uint64_t after = 0;
    if (!request->resume_epoch().empty() &&
        hub_->CanResume(request->resume_epoch(), request->resume_sequence())) {
      // The client's resume point is still in the history: replay only what it
      // missed (the loop below), then mark it synced.
      after = request->resume_sequence();
      uint64_t next = after;
      auto missed = hub_->WaitForEvents(filter, after, absl::Now(), &next);
      if (!missed.ok()) return ToGrpc(missed.status());
      for (const auto& event : *missed) {
        if (!writer->Write(event)) return Status::OK;
      }
      after = next;
      if (!writer->Write(SyncedMarker(after, /*full_snapshot=*/false))) return Status::OK;
    } else {
      ArtifactEventHub::Snapshot snap = hub_->TakeSnapshot(filter);
      for (const auto& event : snap.events) {
        if (!writer->Write(event)) return Status::OK;
      }
      after = snap.sequence;
      if (!writer->Write(SyncedMarker(after, /*full_snapshot=*/true))) return Status::OK;
    }

    while (!context->IsCancelled()) {
      if (shutting_down_.load()) {
        return Status(StatusCode::UNAVAILABLE, "source-controller is shutting down");
      }
      uint64_t next = after;
      auto events =
          hub_->WaitForEvents(filter, after, absl::Now() + absl::Milliseconds(500), &next);
      if (!events.ok()) {
        if (absl::IsCancelled(events.status())) {
          return Status(StatusCode::UNAVAILABLE, "source-controller is shutting down");
        }
        // Fell out of the history: the client reconnects and gets a snapshot.
        return Status(StatusCode::ABORTED, std::string(events.status().message()));
      }
      for (const auto& event : *events) {
        if (!writer->Write(event)) return Status::OK;
      }
      after = next;
    }
    return Status::OK;
  }

  Status FetchArtifact(ServerContext* context, const v1::FetchArtifactRequest* request,
                       ServerWriter<v1::ArtifactChunk>* writer) override {
    const v1::SourceReference& ref = request->source();
    if (ref.kind().empty() || ref.namespace_().empty() || ref.name().empty()) {
      return Status(StatusCode::INVALID_ARGUMENT, "source kind, namespace and name are required");
    }
    if (!common::IsValidDigest(request->digest())) {
      return Status(
          StatusCode::INVALID_ARGUMENT,
          absl::StrCat("invalid digest \"", request->digest(), "\": want sha256:<64 hex digits>"));
    }
    if (request->offset() < 0) {
      return Status(StatusCode::OUT_OF_RANGE, absl::StrCat("negative offset ", request->offset()));
    }
    std::optional<v1::Artifact> current = hub_->Current(ref);
    if (!current) {
      return Status(StatusCode::NOT_FOUND, absl::StrCat(Describe(ref), " has no artifact"));
    }
    auto reader = storage_->Open(KeyOf(ref), request->digest());
    if (!reader.ok()) {
      if (absl::IsNotFound(reader.status())) {
        return Status(
            StatusCode::NOT_FOUND,
            absl::StrCat("artifact ", request->digest(), " of ", Describe(ref),
                         " is no longer stored; the current digest is ", current->digest()));
      }
      return ToGrpc(reader.status());
    }
    const StoredArtifact& stored = (*reader)->artifact();
    const int64_t total = stored.size;
    if (request->offset() > total) {
      return Status(StatusCode::OUT_OF_RANGE,
                    absl::StrCat("offset ", request->offset(), " is past the end of the ", total,
                                 "-byte artifact"));
    }
    int64_t chunk =
        request->chunk_size() > 0 ? request->chunk_size() : options_.default_chunk_bytes;
    chunk = std::clamp<int64_t>(chunk, options_.min_chunk_bytes, options_.max_chunk_bytes);

    v1::ArtifactChunk msg;
    if (current->digest() == request->digest()) {
      *msg.mutable_artifact() = *current;
    } else {
      // An older artifact still in storage: what we know of it.
      v1::Artifact* a = msg.mutable_artifact();
      *a->mutable_source() = ref;
      a->set_digest(stored.digest);
      a->set_size(stored.size);
      a->set_path(stored.path);
    }
    msg.set_total_size(total);
    common::Metrics::Global().Add(kFetchMetric, {{"kind", ref.kind()}});

    int64_t offset = request->offset();
    bool first = true;
    while (first || offset < total) {
      if (context->IsCancelled()) return Status(StatusCode::CANCELLED, "client cancelled");
      if (shutting_down_.load()) {
        return Status(StatusCode::UNAVAILABLE, "source-controller is shutting down");
      }
      int64_t want = std::min<int64_t>(chunk, total - offset);
      // Read straight into the message's buffer: one copy fewer per chunk.
      std::string* data = msg.mutable_data();
      data->resize(static_cast<size_t>(want));
      int64_t got = 0;
      if (want > 0) {
        auto n = (*reader)->ReadAt(offset, data->data(), want);
        if (!n.ok()) return ToGrpc(n.status());
        got = *n;
        if (got <= 0) {
          return Status(StatusCode::DATA_LOSS,
                        absl::StrCat("artifact ", stored.path, " is shorter than recorded"));
        }
        data->resize(static_cast<size_t>(got));
      }
      msg.set_offset(offset);
      if (!writer->Write(msg)) return Status::OK;
      common::Metrics::Global().Add(kBytesMetric, {}, static_cast<double>(got));
      offset += got;
      if (first) {
        msg.clear_artifact();
        msg.clear_total_size();
        first = false;
      }
    }
    return Status::OK;
  }

  Status GetArtifact(ServerContext* context, const v1::GetArtifactRequest* request,
                     v1::Artifact* response) override {
    std::optional<v1::Artifact> current = hub_->Current(request->source());
    if (!current) {
      return Status(StatusCode::NOT_FOUND,
                    absl::StrCat(Describe(request->source()), " has no artifact"));
    }
    *response = *current;
    return Status::OK;
  }

 private:
  v1::ArtifactEvent SyncedMarker(uint64_t sequence, bool full) const {
    v1::ArtifactEvent e;
    e.set_type(v1::ArtifactEvent::SYNCED);
    e.set_sequence(sequence);
    e.set_epoch(hub_->epoch());
    e.set_full_snapshot(full);
    return e;
  }

  const ArtifactServerOptions options_;
  ArtifactEventHub* const hub_;
  ArtifactStorage* const storage_;
  std::atomic<bool> shutting_down_{false};
};

class GrpcArtifactServer : public ArtifactServer {
 public:
  GrpcArtifactServer(std::unique_ptr<ArtifactServiceImpl> service, ArtifactEventHub* hub)
      : service_(std::move(service)), hub_(hub) {}
  ~GrpcArtifactServer() override { Shutdown(absl::Seconds(5)); }

  absl::Status Build(const ArtifactServerOptions& options) {
    auto hp = common::ParseHostPort(options.listen_address);
    if (!hp.ok()) return hp.status();
    std::string address = absl::StrCat(hp->host.empty() ? "0.0.0.0" : hp->host, ":", hp->port);
    if (hp->host.find(':') != std::string::npos)
      address = absl::StrCat("[", hp->host, "]:", hp->port);

    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
      grpc::SslServerCredentialsOptions ssl;
      auto cert = ReadSmallFile(options.tls_cert_file);
      auto key = ReadSmallFile(options.tls_key_file);
      if (!cert.ok())
        return absl::InvalidArgumentError(absl::StrCat("tls cert: ", cert.status().message()));
      if (!key.ok())
        return absl::InvalidArgumentError(absl::StrCat("tls key: ", key.status().message()));
      ssl.pem_key_cert_pairs.push_back({*key, *cert});
      if (!options.tls_client_ca_file.empty()) {
        auto ca = ReadSmallFile(options.tls_client_ca_file);
        if (!ca.ok())
          return absl::InvalidArgumentError(absl::StrCat("tls client CA: ", ca.status().message()));
        ssl.pem_root_certs = *ca;
        ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
      }
      creds = grpc::SslServerCredentials(ssl);
    }

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, creds, &port_);
    builder.RegisterService(service_.get());
    // Idle streams stay alive through HTTP/2 pings, not fake events.
    // gRPC sets SO_REUSEPORT by default: a second server on the same port
    // would start and share it silently instead of failing.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    builder.SetMaxSendMessageSize(8 << 20);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 256 << 10);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 2 << 20);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen_address));
    }
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  void Shutdown(absl::Duration grace) override {
    if (!server_ || stopped_.exchange(true)) return;
    service_->BeginShutdown();
    hub_->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
    server_->Wait();
  }

 private:
  std::unique_ptr<ArtifactServiceImpl> service_;
  ArtifactEventHub* hub_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> stopped_{false};
};

}  // namespace

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::unique_ptr<ArtifactServer>> ArtifactServer::Start(
    const ArtifactServerOptions& options, ArtifactEventHub* hub, ArtifactStorage* storage) {
  if (options.min_chunk_bytes <= 0 || options.max_chunk_bytes < options.min_chunk_bytes) {
    return absl::InvalidArgumentError("invalid chunk size bounds");
  }
  common::Metrics::Global().DefineCounter(kBytesMetric,
                                          "Artifact bytes sent to FetchArtifact clients.");
  common::Metrics::Global().DefineCounter(kFetchMetric, "FetchArtifact calls, by source kind.");
  common::Metrics::Global().DefineGauge(kWatchersMetric, "Open WatchArtifacts streams.");
  auto server = std::make_unique<GrpcArtifactServer>(
      std::make_unique<ArtifactServiceImpl>(options, hub, storage), hub);
  absl::Status s = server->Build(options);
  if (!s.ok()) return s;
  return std::unique_ptr<ArtifactServer>(std::move(server));
}

}  // namespace gitops::source
