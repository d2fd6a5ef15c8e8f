// Flux's plain HTTP artifact endpoint (--storage-addr): GET and HEAD of
// "/<kind>/<ns>/<name>/<digest hex>.tar.gz" straight from the artifact
// storage, so that consumers which download status.artifact.url (Flux's
// helm-controller and kustomize-controller, curl) work unchanged.
#ifndef GITOPS_SOURCE_CONTROLLER_HTTP_FILE_SERVER_H_
#define GITOPS_SOURCE_CONTROLLER_HTTP_FILE_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http/server_limits.h"

namespace gitops::source {

struct FileServerOptions {
  // Listen address, e.g. ":9080" or "127.0.0.1:0".
  std::string listen_address;
  // The artifact storage root (--storage-path).
  std::string storage_root;
  // Connection limits: by default 64 connections (one thread each), 16 per
  // client address, 10 s to send a request's headers, 60 s write timeout, 2 s
  // keep-alive idle.
  common::HttpServerLimits limits = DefaultFileServerLimits();

  static common::HttpServerLimits DefaultFileServerLimits() {
    common::HttpServerLimits limits;
    limits.max_connections = 64;
    limits.max_connections_per_client = 16;
    limits.idle_timeout = absl::Seconds(2);
    return limits;
  }
};

// Serves stored artifacts and nothing else: a request path must have the
// storage layout (IsArtifactRequestPath) and name a regular file reached
// without following any symlink below the root; everything else (the root,
// directories, ".state/", ".git-cache/", temp files, "..") is 404. Responses
// follow Go's http.FileServer, which Flux uses: Content-Type
// application/x-gzip (what Go sniffs from a gzip file on Flux's image),
// Last-Modified, Accept-Ranges, single byte ranges (206 / 416), If-Range,
// If-Modified-Since (304), If-Unmodified-Since and If-Match (412). A request
// for several ranges gets the whole file (200), which HTTP allows.
//
// A download streams from an open descriptor in fixed 256 KiB chunks (memory
// does not grow with the artifact), so an artifact garbage-collected while
// it is being sent still arrives whole. Slow clients cannot exhaust it (see
// common::BoundedHttpServer and `limits`). Thread-safe.
class ArtifactFileServer {
 public:
  // Opens the storage root and starts listening. InvalidArgument for a bad
  // address or limits, NotFound/Internal when the root cannot be opened, Unavailable
  // when the port cannot be bound (also when another process listens on it:
  // unlike cpp-httplib's default, the socket does not set SO_REUSEPORT).
  static absl::StatusOr<std::unique_ptr<ArtifactFileServer>> Start(FileServerOptions options);
  virtual ~ArtifactFileServer() = default;
  // The bound port.
  virtual int port() const = 0;
  // Answers new requests with 503, waits at most `grace` for downloads in
  // flight, then closes every connection. Idempotent; the destructor calls
  // it with no grace.
  virtual void Shutdown(absl::Duration grace) = 0;
};

// Bytes [offset, offset + length) of a body.
struct ByteRange {
  int64_t offset = 0;
  int64_t length = 0;
};

// The ranges a Range header asks of a `size`-byte body, with Go net/http's
// rules: an empty header gives no ranges; a range is clamped to the body; a
// range starting at or past the end (and a zero suffix, "-0") is dropped.
// InvalidArgument for a malformed header (not "bytes=", a bad number, end
// before start); OutOfRange when no range is left. Both are answered 416.
absl::StatusOr<std::vector<ByteRange>> ParseRangeHeader(absl::string_view header, int64_t size);

// Whether a decoded request path has the artifact layout
// "/<kind>/<namespace>/<name>/<64 lowercase hex>.tar.gz": four non-empty
// components of [A-Za-z0-9._-], none starting with '.'.
bool IsArtifactRequestPath(absl::string_view path);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_HTTP_FILE_SERVER_H_
