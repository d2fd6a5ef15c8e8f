// The kustomize-controller's side of the artifact contract: one gRPC channel
// to the source-controller, used for the watch stream and every chunk pull.
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_SUBSCRIBER_ARTIFACT_CLIENT_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_SUBSCRIBER_ARTIFACT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace gitops::kustomize {

// An artifact as the source-controller announces it (Flux's status.artifact
// plus the source it belongs to).
struct ArtifactRef {
  std::string kind;
  std::string namespace_name;
  std::string name;
  std::string revision;
  std::string digest;
  int64_t size = 0;
  std::string path;
  std::string url;
  absl::Time last_update;
  // "GitRepository/ns/name".
  std::string SourceId() const;
};

struct WatchEvent {
  enum class Type { kUpdated, kDeleted, kSynced };
  Type type = Type::kUpdated;
  ArtifactRef artifact;  // unset for kSynced
  uint64_t sequence = 0;
};

struct WatchFilter {
  std::string kind;
  std::string namespace_name;
  std::string name;
};

struct ArtifactClientOptions {
  // host:port of the source-controller's gRPC service.
  std::string source_address;
  // Optional TLS: CA to verify the server; client cert and key for mTLS.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Reconnect backoff: exponential from initial to max, with jitter.
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(30);
  // Chunk size to ask for; 0 lets the server choose.
  int chunk_size = 0;
  // Download rate cap in bytes per second; 0 = unlimited.
  int64_t max_bytes_per_second = 0;
};

// Thread-safe: Watch runs on one thread while Fetch/Get run on others.
class ArtifactClient {
 public:
  // InvalidArgument for bad options or unreadable TLS files. Does not
  // connect yet (the channel connects lazily and reconnects by itself).
  static absl::StatusOr<std::unique_ptr<ArtifactClient>> Create(
      const ArtifactClientOptions& options);
  virtual ~ArtifactClient() = default;

  // Subscribes and calls `handler` on the calling thread for every change,
  // until Stop(). Reconnects with capped exponential backoff and jitter,
  // resuming from the last sequence seen. Each (source, digest) reaches the
  // handler once: repeats after a reconnect are dropped, and sources that
  // vanished while disconnected are reported as kDeleted. A kSynced event
  // follows every (re)connect once the client is up to date.
  virtual void Watch(const WatchFilter& filter,
                     const std::function<void(const WatchEvent&)>& handler) = 0;
  // Makes Watch return and cancels in-flight calls. Idempotent.
  virtual void Stop() = 0;

  // The current artifact of a source. NotFound when it has none.
  virtual absl::StatusOr<ArtifactRef> GetArtifact(const std::string& kind,
                                                  const std::string& namespace_name,
                                                  const std::string& name) = 0;

  // Downloads the artifact's tarball to `dest_path`: bytes go to
  // "<dest_path>.part" (an existing partial file is resumed from its size),
  // transient failures are retried with backoff until `deadline`, and the
  // digest is checked before the file is renamed into place. DataLoss on a
  // digest mismatch (the partial file is deleted, nothing is kept); NotFound
  // when the artifact is gone; DeadlineExceeded when retries ran out.
  virtual absl::Status Fetch(const ArtifactRef& artifact, const std::string& dest_path,
                             absl::Time deadline) = 0;
};

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_SUBSCRIBER_ARTIFACT_CLIENT_H_
