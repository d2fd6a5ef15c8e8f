// The gRPC ArtifactService of the source-controller (DESIGN.md §3), with the
// standard health service and server reflection.
#ifndef GITOPS_SOURCE_CONTROLLER_GRPC_ARTIFACT_SERVER_H_
#define GITOPS_SOURCE_CONTROLLER_GRPC_ARTIFACT_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "source-controller/artifact/storage.h"
#include "source-controller/grpc/event_hub.h"

namespace gitops::source {

struct ArtifactServerOptions {
  // Listen address, e.g. ":9090" or "127.0.0.1:0".
  std::string listen_address = ":9090";
  // Bounds of the chunk size clients may ask for.
  int min_chunk_bytes = 64 << 10;
  int max_chunk_bytes = 1 << 20;
  // Chunk size when the client leaves it to the server.
  int default_chunk_bytes = 1 << 20;
  // Optional TLS: PEM files. With client_ca_file set, clients must present a
  // certificate signed by it (mTLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // WatchArtifacts and FetchArtifact streams open at once; one more is
  // refused with RESOURCE_EXHAUSTED (--grpc-max-streams). Each costs a thread
  // and at most about two chunks of memory while its client does not read.
  int max_streams = 64;
  // A stream whose Write has not completed for this long (the client stopped
  // reading and the HTTP/2 window is full) is ended with UNAVAILABLE, freeing
  // its thread and buffer; the client resumes (sequence or offset).
  absl::Duration write_timeout = absl::Seconds(60);
  // A connection with no call for this long is closed (GOAWAY).
  absl::Duration max_connection_idle = absl::Minutes(5);
  // HTTP/2 keepalive pings on idle connections, and how long an unanswered
  // ping waits before the connection is closed.
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // A connection must complete its handshake (TLS, HTTP/2 settings) within this.
  absl::Duration handshake_timeout = absl::Seconds(10);
};

// Serves ArtifactService over `hub` and `storage` (both must outlive it).
// Thread-safe.
class ArtifactServer {
 public:
  // Binds and starts serving. InvalidArgument for bad options (chunk bounds,
  // max_streams < 1, non-positive durations) or unreadable TLS files, Unavailable when the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<ArtifactServer>> Start(const ArtifactServerOptions& options,
                                                               ArtifactEventHub* hub,
                                                               ArtifactStorage* storage);
  virtual ~ArtifactServer() = default;
  // The bound port.
  virtual int port() const = 0;
  // Ends every open stream with UNAVAILABLE ("shutting down") and stops,
  // waiting at most `grace` for in-flight calls. Idempotent.
  virtual void Shutdown(absl::Duration grace) = 0;
};

// Reads a whole small file (TLS material). NotFound / Internal.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GRPC_ARTIFACT_SERVER_H_
