#include "source-controller/grpc/artifact_server.h"

#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/crypto/sha256.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/runtime/memory_trim.h"
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
constexpr char kStreamsMetric[] = "gitops_grpc_streams";
constexpr char kRejectedMetric[] = "gitops_grpc_streams_rejected_total";
constexpr char kStalledMetric[] = "gitops_grpc_streams_stalled_total";
// Events a watcher takes from the history per write burst: what a stalled
// watcher holds besides the message gRPC is sending.
constexpr size_t kWatchBatch = 64;
// Threads beyond max_streams for gRPC's pollers and the short calls
// (GetArtifact, health, reflection).
constexpr int kThreadHeadroom = 32;

std::string Describe(const v1::SourceReference& ref) {
  return absl::StrCat(ref.kind(), " ", ref.namespace_(), "/", ref.name());
}

SourceKey KeyOf(const v1::SourceReference& ref) {
  return SourceKey{ref.kind(), ref.namespace_(), ref.name()};
}

Status ToGrpc(const absl::Status& s) {
  return Status(static_cast<StatusCode>(s.code()), std::string(s.message()));
}

// The open WatchArtifacts and FetchArtifact streams: bounds how many run at
// once, and ends those whose client stopped reading. A sync server's Write
// blocks while the stream's HTTP/2 window is full, so a client that stops
// reading holds a thread and the message being sent (issue 17, item 7: 800
// such streams took 1.7 GB and 853 threads); a watchdog thread cancels a
// Write that has not completed within the write timeout, with a status that
// tells the client to resume. Thread-safe.
class StreamRegistry {
 public:
  // One open stream; released when destroyed (on the handler's thread).
  class Slot {
   public:
    Slot(StreamRegistry* registry, ServerContext* context, absl::string_view method)
        : registry_(registry), context_(context), method_(method) {}
    ~Slot() { registry_->Release(this); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

    // writer->Write(msg), ended with UNAVAILABLE by the watchdog when it has
    // not completed within the write timeout. `resume` completes "reconnect
    // and ..." in that status's message.
    template <typename Writer, typename Message>
    bool Write(Writer* writer, const Message& msg, std::string resume) {
      registry_->BeginWrite(this, std::move(resume));
      const bool ok = writer->Write(msg);
      registry_->EndWrite(this);
      return ok;
    }

   private:
    friend class StreamRegistry;
    StreamRegistry* const registry_;
    ServerContext* const context_;
    const std::string method_;
    // Guarded by the registry's mu_.
    absl::Time write_started_ = absl::InfiniteFuture();
    std::string resume_;
    bool cancelled_ = false;
  };

  StreamRegistry(int max_streams, absl::Duration write_timeout)
      : max_streams_(max_streams), write_timeout_(write_timeout) {
    watchdog_ = std::thread([this] { Watchdog(); });
  }
  ~StreamRegistry() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    watchdog_.join();
  }

  // A slot for a new stream, or null when max_streams are open.
  std::unique_ptr<Slot> Acquire(ServerContext* context, absl::string_view method) {
    absl::MutexLock lock(&mu_);
    if (static_cast<int>(slots_.size()) >= max_streams_) {
      common::Metrics::Global().Add(kRejectedMetric, {{"method", std::string(method)}});
      return nullptr;
    }
    auto slot = std::make_unique<Slot>(this, context, method);
    slots_.insert(slot.get());
    common::Metrics::Global().Set(kStreamsMetric, {}, static_cast<double>(slots_.size()));
    return slot;
  }

  int max_streams() const { return max_streams_; }

 private:
  void Release(Slot* slot) {
    absl::MutexLock lock(&mu_);
    slots_.erase(slot);
    ++ended_since_trim_;
    common::Metrics::Global().Set(kStreamsMetric, {}, static_cast<double>(slots_.size()));
  }
  void BeginWrite(Slot* slot, std::string resume) {
    absl::MutexLock lock(&mu_);
    slot->write_started_ = absl::Now();
    slot->resume_ = std::move(resume);
  }
  void EndWrite(Slot* slot) {
    absl::MutexLock lock(&mu_);
    slot->write_started_ = absl::InfiniteFuture();
  }

  void Watchdog() {
    const absl::Duration tick = std::min(absl::Seconds(1), write_timeout_ / 4);
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), tick)) {
      const absl::Time now = absl::Now();
      for (Slot* slot : slots_) {
        if (slot->cancelled_ || now - slot->write_started_ < write_timeout_) continue;
        // The slot (and its call) stays alive until Release, which needs mu_.
        slot->cancelled_ = true;
        const std::string message =
            absl::StrCat(slot->method_, " stream stalled: the client read nothing for ",
                         absl::FormatDuration(write_timeout_),
                         " (--grpc-write-timeout); reconnect and ", slot->resume_);
        grpc_call_cancel_with_status(slot->context_->c_call(), GRPC_STATUS_UNAVAILABLE,
                                     message.c_str(), nullptr);
        common::Metrics::Global().Add(kStalledMetric, {{"method", slot->method_}});
        common::LogInfo("ended a stalled stream",
                        {{"peer", slot->context_->peer()}, {"method", slot->method_}});
      }
      // Streams that ended leave their buffers in glibc's per-thread arenas,
      // which keeps them mapped (measured: the memory of 800 stalled streams
      // stayed after they left): give it back now and then.
      if (ended_since_trim_ > 0) {
        mu_.Unlock();
        const bool trimmed = common::TrimFreedMemory();
        mu_.Lock();
        if (trimmed) ended_since_trim_ = 0;
      }
    }
  }

  const int max_streams_;
  const absl::Duration write_timeout_;
  absl::Mutex mu_;
  std::set<Slot*> slots_ ABSL_GUARDED_BY(mu_);
  int ended_since_trim_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
};

Status TooManyStreams(int max_streams) {
  return Status(StatusCode::RESOURCE_EXHAUSTED,
                absl::StrCat("too many streams: the source-controller serves at most ", max_streams,
                             " WatchArtifacts and FetchArtifact streams at once "
                             "(--grpc-max-streams); retry later"));
}

class ArtifactServiceImpl final : public v1::ArtifactService::Service {
 public:
  ArtifactServiceImpl(const ArtifactServerOptions& options, ArtifactEventHub* hub,
                      ArtifactStorage* storage)
      : options_(options),
        hub_(hub),
        storage_(storage),
        streams_(options.max_streams, options.write_timeout) {}

  void BeginShutdown() { shutting_down_.store(true); }

  Status WatchArtifacts(ServerContext* context, const v1::WatchArtifactsRequest* request,
                        ServerWriter<v1::ArtifactEvent>* writer) override {
    std::unique_ptr<StreamRegistry::Slot> slot = streams_.Acquire(context, "WatchArtifacts");
    if (slot == nullptr) return TooManyStreams(streams_.max_streams());
    EventFilter filter{request->kind(), request->namespace_(), request->name()};
    common::Metrics::Global().Add(kWatchersMetric, {}, 1);
    struct Gauge {
      ~Gauge() { common::Metrics::Global().Add(kWatchersMetric, {}, -1); }
    } gauge;
    common::LogInfo("watch started",
                    {{"peer", context->peer()},
                     {"resume_epoch", request->resume_epoch()},
                     {"resume_sequence", std::to_string(request->resume_sequence())}});

    // Where a client whose stream is ended mid-write picks up.
    auto resume_after = [this](uint64_t sequence) {
      return absl::StrCat("resume with resume_epoch=", hub_->epoch(),
                          " resume_sequence=", sequence);
    };
    uint64_t after = 0;
    if (!request->resume_epoch().empty() &&
        hub_->CanResume(request->resume_epoch(), request->resume_sequence())) {
      // The client's resume point is still in the history: replay only what it
      // missed, a batch at a time, then mark it synced.
      after = request->resume_sequence();
      while (true) {
        const uint64_t from = after;
        uint64_t next = from;
        auto missed = hub_->WaitForEvents(filter, from, absl::Now(), &next, kWatchBatch);
        if (!missed.ok()) return ToGrpc(missed.status());
        for (const auto& event : *missed) {
          if (!slot->Write(writer, event, resume_after(after))) return Status::OK;
          after = event.sequence();
        }
        after = next;
        if (next == from || missed->size() < kWatchBatch) break;
      }
      if (!slot->Write(writer, SyncedMarker(after, /*full_snapshot=*/false), resume_after(after))) {
        return Status::OK;
      }
    } else {
      ArtifactEventHub::Snapshot snap = hub_->TakeSnapshot(filter);
      for (const auto& event : snap.events) {
        if (!slot->Write(writer, event, "take a new snapshot")) return Status::OK;
      }
      after = snap.sequence;
      if (!slot->Write(writer, SyncedMarker(after, /*full_snapshot=*/true),
                       "take a new snapshot")) {
        return Status::OK;
      }
    }

    while (!context->IsCancelled()) {
      if (shutting_down_.load()) {
        return Status(StatusCode::UNAVAILABLE, "source-controller is shutting down");
      }
      uint64_t next = after;
      auto events = hub_->WaitForEvents(filter, after, absl::Now() + absl::Milliseconds(500), &next,
                                        kWatchBatch);
      if (!events.ok()) {
        if (absl::IsCancelled(events.status())) {
          return Status(StatusCode::UNAVAILABLE, "source-controller is shutting down");
        }
        // Fell out of the history: the client reconnects and gets a snapshot.
        return Status(StatusCode::ABORTED, std::string(events.status().message()));
      }
      for (const auto& event : *events) {
        if (!slot->Write(writer, event, resume_after(after))) return Status::OK;
        after = event.sequence();
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
    std::unique_ptr<StreamRegistry::Slot> slot = streams_.Acquire(context, "FetchArtifact");
    if (slot == nullptr) return TooManyStreams(streams_.max_streams());
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
      if (!slot->Write(writer, msg, absl::StrCat("resume with offset=", offset))) {
        return Status::OK;
      }
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
  StreamRegistry streams_;
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
    auto ms = [](absl::Duration d) {
      return static_cast<int>(std::min<int64_t>(INT_MAX, absl::ToInt64Milliseconds(d)));
    };
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ms(options.keepalive_time));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ms(options.keepalive_timeout));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    // Slow or idle clients: a connection that never finishes its handshake,
    // or holds no call, is closed; the sync server's threads are capped (past
    // the cap gRPC answers RESOURCE_EXHAUSTED itself; our own bound on
    // streams comes first, with a message naming the flag).
    builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, ms(options.handshake_timeout));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, ms(options.max_connection_idle));
    grpc::ResourceQuota quota("source-controller-grpc");
    quota.SetMaxThreads(options.max_streams + kThreadHeadroom);
    builder.SetResourceQuota(quota);
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
  if (options.max_streams < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max streams must be at least 1, got ", options.max_streams));
  }
  for (absl::Duration d :
       {options.write_timeout, options.max_connection_idle, options.keepalive_time,
        options.keepalive_timeout, options.handshake_timeout}) {
    if (d <= absl::ZeroDuration())
      return absl::InvalidArgumentError("grpc timeouts must be positive");
  }
  common::Metrics::Global().DefineCounter(kBytesMetric,
                                          "Artifact bytes sent to FetchArtifact clients.");
  common::Metrics::Global().DefineCounter(kFetchMetric, "FetchArtifact calls, by source kind.");
  common::Metrics::Global().DefineGauge(kWatchersMetric, "Open WatchArtifacts streams.");
  common::Metrics::Global().DefineGauge(kStreamsMetric,
                                        "Open WatchArtifacts and FetchArtifact streams.");
  common::Metrics::Global().DefineCounter(
      kRejectedMetric, "Streams refused with RESOURCE_EXHAUSTED (--grpc-max-streams), by method.");
  common::Metrics::Global().DefineCounter(
      kStalledMetric, "Streams ended because the client stopped reading (--grpc-write-timeout).");
  auto server = std::make_unique<GrpcArtifactServer>(
      std::make_unique<ArtifactServiceImpl>(options, hub, storage), hub);
  absl::Status s = server->Build(options);
  if (!s.ok()) return s;
  return std::unique_ptr<ArtifactServer>(std::move(server));
}

}  // namespace gitops::source
