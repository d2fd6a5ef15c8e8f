#include "kustomize-controller/subscriber/artifact_client.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "gitops/artifact/v1/artifact.grpc.pb.h"

namespace gitops::kustomize {
namespace {

namespace v1 = ::gitops::artifact::v1;
using common::LogError;
using common::LogInfo;

constexpr char kMismatchMetric[] = "gitops_artifact_digest_mismatch_total";
constexpr char kFetchedBytesMetric[] = "gitops_artifact_bytes_received_total";
constexpr char kReconnectMetric[] = "gitops_artifact_watch_reconnects_total";

absl::Status FromGrpc(const grpc::Status& s, absl::string_view context) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(context, ": ", s.error_message()));
}

ArtifactRef FromProto(const v1::Artifact& a) {
  ArtifactRef r;
  r.kind = a.source().kind();
  r.namespace_name = a.source().namespace_();
  r.name = a.source().name();
  r.revision = a.revision();
  r.digest = a.digest();
  r.size = a.size();
  r.path = a.path();
  r.url = a.url();
  r.last_update = absl::FromUnixSeconds(a.last_update_time().seconds()) +
                  absl::Nanoseconds(a.last_update_time().nanos());
  return r;
}

absl::StatusOr<std::string> ReadFileText(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// Capped exponential backoff with full jitter in [d/2, d].
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max)
      : initial_(initial), max_(max), next_(initial) {}
  absl::Duration Next() {
    absl::Duration d = next_;
    next_ = std::min(next_ * 2, max_);
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return d * jitter(rng_);
  }
  void Reset() { next_ = initial_; }

 private:
  absl::Duration initial_, max_, next_;
  std::mt19937_64 rng_{std::random_device{}()};
};

bool Transient(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::OUT_OF_RANGE:
      return false;
    default:
      return true;
  }
}

// Hashes and appends received chunks to the partial file on its own thread,
// so that receiving the next chunk overlaps hashing and writing this one (the
// two cores do what curl does with one, plus the digest). At most kDepth
// chunks wait, which bounds memory.
class ChunkWriter {
 public:
  ChunkWriter(int fd, std::string path, common::Sha256* hasher, int64_t* hashed)
      : fd_(fd), path_(std::move(path)), hasher_(hasher), hashed_(hashed), thread_([this] {
          Run();
        }) {}
  ~ChunkWriter() { Finish().IgnoreError(); }

  // Queues `data`; blocks while the queue is full. False once a write failed.
  bool Push(std::string data) {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return queue_.size() < kDepth || !error_.ok();
    };
    mu_.Await(absl::Condition(&room));
    if (!error_.ok()) return false;
    queue_.push_back(std::move(data));
    return true;
  }

  // Waits until everything queued is written; the first write error, if any.
  absl::Status Finish() {
    {
      absl::MutexLock lock(&mu_);
      closed_ = true;
    }
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  static constexpr size_t kDepth = 4;

  void Run() {
    while (true) {
      std::string data;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closed_; };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) return;
        data = std::move(queue_.front());
        queue_.pop_front();
      }
      size_t written = 0;
      while (written < data.size()) {
        ssize_t n = ::write(fd_, data.data() + written, data.size() - written);
        if (n < 0) {
          if (errno == EINTR) continue;
          absl::MutexLock lock(&mu_);
          error_ = absl::InternalError(absl::StrCat("write ", path_, ": ", std::strerror(errno)));
          queue_.clear();
          return;
        }
        written += static_cast<size_t>(n);
      }
      hasher_->Update(data.data(), data.size());
      *hashed_ += static_cast<int64_t>(data.size());
    }
  }

  const int fd_;
  const std::string path_;
  common::Sha256* const hasher_;
  int64_t* const hashed_;
  absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class GrpcArtifactClient : public ArtifactClient {
 public:
  GrpcArtifactClient(const ArtifactClientOptions& options, std::shared_ptr<grpc::Channel> channel)
      : options_(options),
        channel_(std::move(channel)),
        stub_(v1::ArtifactService::NewStub(channel_)) {}

  void Watch(const WatchFilter& filter,
             const std::function<void(const WatchEvent&)>& handler) override {
    // Per-source digest last delivered: the de-duplication that makes
    // reconnects and snapshots idempotent for the handler.
    std::map<std::string, ArtifactRef> known;
    std::string epoch;
    uint64_t sequence = 0;
    Backoff backoff(options_.backoff_initial, options_.backoff_max);
    bool first = true;
    while (!stopped()) {
      if (!first) {
        common::Metrics::Global().Add(kReconnectMetric, {});
        absl::Duration wait = backoff.Next();
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&stopped_), wait);
        if (stopped_) break;
      }
      first = false;
      v1::WatchArtifactsRequest req;
      req.set_kind(filter.kind);
      req.set_namespace_(filter.namespace_name);
      req.set_name(filter.name);
      req.set_resume_epoch(epoch);
      req.set_resume_sequence(sequence);
      grpc::ClientContext ctx;
      if (!Register(&ctx)) break;
      auto reader = stub_->WatchArtifacts(&ctx, req);
      std::set<std::string> seen_in_snapshot;
      v1::ArtifactEvent event;
      while (reader->Read(&event)) {
        if (event.type() == v1::ArtifactEvent::SYNCED) {
          if (event.full_snapshot()) {
            // Sources we knew that the snapshot no longer lists were deleted
            // while we were away.
            for (auto it = known.begin(); it != known.end();) {
              if (seen_in_snapshot.count(it->first)) {
                ++it;
                continue;
              }
              WatchEvent gone{WatchEvent::Type::kDeleted, it->second, event.sequence()};
              it = known.erase(it);
              handler(gone);
            }
          }
          seen_in_snapshot.clear();
          epoch = event.epoch();
          sequence = event.sequence();
          backoff.Reset();
          handler(WatchEvent{WatchEvent::Type::kSynced, {}, event.sequence()});
          continue;
        }
        ArtifactRef ref = FromProto(event.artifact());
        std::string id = ref.SourceId();
        if (event.epoch() == epoch) sequence = std::max(sequence, event.sequence());
        if (event.type() == v1::ArtifactEvent::UPDATED) {
          seen_in_snapshot.insert(id);
          auto it = known.find(id);
          if (it != known.end() && it->second.digest == ref.digest) continue;
          known[id] = ref;
          handler(WatchEvent{WatchEvent::Type::kUpdated, ref, event.sequence()});
        } else if (event.type() == v1::ArtifactEvent::DELETED) {
          if (known.erase(id) == 0) continue;
          handler(WatchEvent{WatchEvent::Type::kDeleted, ref, event.sequence()});
        }
      }
      grpc::Status status = reader->Finish();
      Unregister(&ctx);
      if (stopped()) break;
      LogInfo("artifact watch disconnected; reconnecting",
              {{"source_addr", options_.source_address},
               {"code", std::to_string(status.error_code())},
               {"error", status.error_message()}});
    }
  }

  void Stop() override {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    for (grpc::ClientContext* ctx : active_) ctx->TryCancel();
  }

  absl::StatusOr<ArtifactRef> GetArtifact(const std::string& kind,
                                          const std::string& namespace_name,
                                          const std::string& name) override {
    v1::GetArtifactRequest req;
    req.mutable_source()->set_kind(kind);
    req.mutable_source()->set_namespace_(namespace_name);
    req.mutable_source()->set_name(name);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::Artifact resp;
    grpc::Status s = stub_->GetArtifact(&ctx, req, &resp);
    if (!s.ok())
      return FromGrpc(s, absl::StrCat("get artifact of ", kind, " ", namespace_name, "/", name));
    return FromProto(resp);
  }

  absl::Status Fetch(const ArtifactRef& artifact, const std::string& dest_path,
                     absl::Time deadline) override {
    if (!common::IsValidDigest(artifact.digest)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid digest \"", artifact.digest, "\""));
    }
    const std::string part = dest_path + ".part";
    Backoff backoff(options_.backoff_initial, std::min(options_.backoff_max, absl::Seconds(5)));
    absl::Status last = absl::OkStatus();
    // The digest is computed as bytes arrive; a resumed download first hashes
    // the part it already has.
    struct stat existing {};
    if (::stat(part.c_str(), &existing) == 0 && artifact.size > 0 &&
        existing.st_size > artifact.size) {
      ::unlink(part.c_str());  // a stale partial file from another artifact
    }
    common::Sha256 hasher;
    int64_t hashed = 0;
    absl::Status prefix = HashExisting(part, &hasher, &hashed);
    if (!prefix.ok()) return prefix;
    while (true) {
      if (stopped()) return absl::CancelledError("client stopped");
      absl::Status attempt = FetchOnce(artifact, part, &hasher, &hashed);
      if (attempt.ok()) break;
      if (!absl::IsUnavailable(attempt) && !absl::IsAborted(attempt)) {
        if (absl::IsDataLoss(attempt) || absl::IsNotFound(attempt)) ::unlink(part.c_str());
        return attempt;
      }
      last = attempt;
      absl::Duration wait = backoff.Next();
      if (absl::Now() + wait > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("fetch ", artifact.SourceId(), " ", artifact.digest,
                         ": gave up after retries: ", last.message()));
      }
      LogInfo("artifact transfer interrupted; resuming",
              {{"source", artifact.SourceId()}, {"error", attempt.message()}});
      absl::SleepFor(wait);
    }
    // Verify before anything can use it.
    std::string digest = absl::StrCat("sha256:", hasher.HexDigest());
    if (digest != artifact.digest) {
      ::unlink(part.c_str());
      common::Metrics::Global().Add(kMismatchMetric, {{"kind", artifact.kind}});
      LogError("artifact digest mismatch; discarded",
               {{"source", artifact.SourceId()}, {"want", artifact.digest}, {"got", digest}});
      return absl::DataLossError(absl::StrCat("artifact of ", artifact.SourceId(),
                                              " failed verification: digest ", digest,
                                              " does not match ", artifact.digest));
    }
    if (::rename(part.c_str(), dest_path.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("rename ", part, ": ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }

 private:
  // One FetchArtifact call appending to `part` from its current size.
  // Unavailable/Aborted for what a retry may fix.
  // Feeds an existing partial download into the hasher. A partial file
  // longer than any artifact could be is discarded.
  static absl::Status HashExisting(const std::string& part, common::Sha256* hasher,
                                   int64_t* hashed) {
    int fd = ::open(part.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::OkStatus();
    std::vector<char> buf(1 << 20);
    ssize_t n;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
      hasher->Update(buf.data(), static_cast<size_t>(n));
      *hashed += n;
    }
    ::close(fd);
    if (n < 0) return absl::InternalError(absl::StrCat("read ", part, ": ", std::strerror(errno)));
    return absl::OkStatus();
  }

  // One FetchArtifact call appending to `part` from its current size (which
  // `hasher` has already seen). Unavailable/Aborted for what a retry may fix.
  absl::Status FetchOnce(const ArtifactRef& artifact, const std::string& part,
                         common::Sha256* hasher, int64_t* hashed) {
    int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return absl::InternalError(absl::StrCat("open ", part, ": ", std::strerror(errno)));
    struct stat st {};
    ::fstat(fd, &st);
    int64_t offset = st.st_size;
    if (offset != *hashed || (artifact.size > 0 && offset > artifact.size)) {
      ::close(fd);
      return absl::DataLossError(absl::StrCat("partial download ", part, " changed underneath"));
    }
    if (offset > 0) {
      LogInfo("resuming artifact download",
              {{"source", artifact.SourceId()}, {"offset", std::to_string(offset)}});
    }
    v1::FetchArtifactRequest req;
    req.mutable_source()->set_kind(artifact.kind);
    req.mutable_source()->set_namespace_(artifact.namespace_name);
    req.mutable_source()->set_name(artifact.name);
    req.set_digest(artifact.digest);
    req.set_offset(offset);
    req.set_chunk_size(options_.chunk_size);
    grpc::ClientContext ctx;
    if (!Register(&ctx)) {
      ::close(fd);
      return absl::CancelledError("client stopped");
    }
    auto reader = stub_->FetchArtifact(&ctx, req);
    v1::ArtifactChunk chunk;
    int64_t total = -1;
    absl::Status result = absl::OkStatus();
    absl::Time started = absl::Now();
    int64_t received = 0;
    ChunkWriter writer(fd, part, hasher, hashed);
    while (reader->Read(&chunk)) {
      if (chunk.has_artifact() || chunk.total_size() > 0) total = chunk.total_size();
      if (chunk.offset() != offset) {
        result = absl::DataLossError(
            absl::StrCat("chunk at offset ", chunk.offset(), ", expected ", offset));
        ctx.TryCancel();
        break;
      }
      const int64_t size = static_cast<int64_t>(chunk.data().size());
      // Move the bytes out of the message: no copy on the way to the writer.
      if (!writer.Push(std::move(*chunk.mutable_data()))) {
        ctx.TryCancel();
        break;
      }
      offset += size;
      received += size;
      common::Metrics::Global().Add(kFetchedBytesMetric, {}, static_cast<double>(size));
      if (options_.max_bytes_per_second > 0) {
        absl::Time due =
            started + absl::Seconds(static_cast<double>(received) /
                                    static_cast<double>(options_.max_bytes_per_second));
        absl::Time now = absl::Now();
        if (due > now) absl::SleepFor(due - now);
      }
    }
    grpc::Status status = reader->Finish();
    Unregister(&ctx);
    absl::Status written = writer.Finish();
    ::close(fd);
    if (result.ok()) result = written;
    if (!result.ok()) return result;
    if (!status.ok()) {
      absl::Status s =
          FromGrpc(status, absl::StrCat("fetch ", artifact.SourceId(), " ", artifact.digest));
      if (Transient(status.error_code())) return absl::UnavailableError(s.message());
      return s;
    }
    if (total >= 0 && offset != total) {
      return absl::UnavailableError(
          absl::StrCat("transfer ended at ", offset, " of ", total, " bytes"));
    }
    return absl::OkStatus();
  }

  bool stopped() const {
    absl::MutexLock lock(&mu_);
    return stopped_;
  }
  bool Register(grpc::ClientContext* ctx) {
    absl::MutexLock lock(&mu_);
    if (stopped_) return false;
    active_.insert(ctx);
    return true;
  }
  void Unregister(grpc::ClientContext* ctx) {
    absl::MutexLock lock(&mu_);
    active_.erase(ctx);
  }

  const ArtifactClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ArtifactService::Stub> stub_;
  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::set<grpc::ClientContext*> active_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::string ArtifactRef::SourceId() const {
  return absl::StrCat(kind, "/", namespace_name, "/", name);
}

absl::StatusOr<std::unique_ptr<ArtifactClient>> ArtifactClient::Create(
    const ArtifactClientOptions& options) {
  if (options.source_address.empty()) {
    return absl::InvalidArgumentError("the source-controller address (--source-addr) is empty");
  }
  common::Metrics::Global().DefineCounter(
      kMismatchMetric, "Fetched artifacts rejected because their digest did not match.");
  common::Metrics::Global().DefineCounter(kFetchedBytesMetric,
                                          "Artifact bytes received over gRPC.");
  common::Metrics::Global().DefineCounter(kReconnectMetric,
                                          "Reconnects of the artifact watch stream.");
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!options.tls_ca_file.empty() || !options.tls_cert_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      auto ca = ReadFileText(options.tls_ca_file);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!options.tls_cert_file.empty()) {
      auto cert = ReadFileText(options.tls_cert_file);
      auto key = ReadFileText(options.tls_key_file);
      if (!cert.ok()) return cert.status();
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 8 << 20);
  // Bulk transfer on one stream: large HTTP/2 frames and a fixed, deep
  // receive window cut per-frame overhead and round trips. BDP probing is off:
  // on loopback it keeps growing the window, and with it the memory held for
  // received-but-unread data (measured: RSS grew with artifact size).
  args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 1024 << 10);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // Reconnect quickly after a source-controller restart; our own backoff
  // paces the stream re-opening. GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays at
  // gRPC's default: despite its name it is the minimum *connect timeout*,
  // and at 100 ms a loaded node failed TCP + HTTP/2 handshakes to a healthy
  // source-controller ("tcp handshaker shutdown"; found by repeating the
  // e2e tests on a busy 2-core machine).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto channel = grpc::CreateCustomChannel(options.source_address, creds, args);
  return std::unique_ptr<ArtifactClient>(new GrpcArtifactClient(options, std::move(channel)));
}

}  // namespace gitops::kustomize
