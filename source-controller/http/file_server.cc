#include "source-controller/http/file_server.h"

#include <errno.h>
#include <fcntl.h>
#include <httplib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/http/bounded_server.h"
#include "common/log/log.h"
#include "common/runtime/shutdown.h"

namespace gitops::source {
namespace {

// What Go's http.FileServer sends for a .tar.gz on Flux's image: Alpine has
// no /etc/mime.types, so the type is sniffed from the gzip magic number.
constexpr char kArtifactContentType[] = "application/x-gzip";
constexpr char kArtifactSuffix[] = ".tar.gz";
constexpr size_t kChunkBytes = 256 << 10;
// RFC 9110 IMF-fixdate (Go's http.TimeFormat).
constexpr char kHttpDate[] = "%a, %d %b %Y %H:%M:%S GMT";

bool IsComponentChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

std::string HttpDate(absl::Time t) { return absl::FormatTime(kHttpDate, t, absl::UTCTimeZone()); }

// Go's http.ParseTime: IMF-fixdate, RFC 850 and asctime formats.
bool ParseHttpDate(absl::string_view text, absl::Time* out) {
  for (const char* format : {kHttpDate, "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::string err;
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), out, &err)) return true;
  }
  return false;
}

// Second precision, as HTTP dates have.
int64_t UnixSeconds(absl::Time t) { return absl::ToUnixSeconds(t); }

// Opens root/<parts...> without following a symlink anywhere below root;
// -1 with errno set on failure.
int OpenBeneath(int root_fd, const std::vector<std::string>& parts) {
  int dir = root_fd;
  int owned = -1;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    int next = openat(dir, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int saved = errno;
    if (owned >= 0) close(owned);
    if (next < 0) {
      errno = saved;
      return -1;
    }
    dir = owned = next;
  }
  // O_NONBLOCK: a FIFO named like an artifact must not block the open.
  int fd = openat(dir, parts.back().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int saved = errno;
  if (owned >= 0) close(owned);
  errno = saved;
  return fd;
}

// Plain-text error answer, as Go's http.Error writes it.
void Error(httplib::Response& res, int status, absl::string_view text) {
  res.status = status;
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(absl::StrCat(text, "\n"), "text/plain; charset=utf-8");
}

void NotFound(httplib::Response& res) { Error(res, 404, "404 page not found"); }

// If-Match / If-Unmodified-Since / If-None-Match / If-Modified-Since in Go's
// order (checkPreconditions), for a file without an ETag. Returns 0 to go on,
// or the status to answer (304 or 412).
int CheckPreconditions(const httplib::Request& req, absl::Time mtime) {
  const int64_t modified = UnixSeconds(mtime);
  absl::Time t;
  if (req.has_header("If-Match")) {
    // Only "*" matches a file without an ETag.
    bool any = false;
    for (absl::string_view tag : absl::StrSplit(req.get_header_value("If-Match"), ',')) {
      if (absl::StripAsciiWhitespace(tag) == "*") any = true;
    }
    if (!any) return 412;
  } else if (req.has_header("If-Unmodified-Since") &&
             ParseHttpDate(req.get_header_value("If-Unmodified-Since"), &t) &&
             modified > UnixSeconds(t)) {
    return 412;
  }
  if (req.has_header("If-None-Match")) {
    // Only "*" matches; for GET and HEAD that means "not modified".
    for (absl::string_view tag : absl::StrSplit(req.get_header_value("If-None-Match"), ',')) {
      if (absl::StripAsciiWhitespace(tag) == "*") return 304;
    }
  } else if (req.has_header("If-Modified-Since") &&
             ParseHttpDate(req.get_header_value("If-Modified-Since"), &t) &&
             modified <= UnixSeconds(t)) {
    return 304;
  }
  return 0;
}

// Whether a Range header should be honoured given If-Range (Go's
// checkIfRange): an entity tag never matches (no ETag), a date must equal
// the file's modification time.
bool IfRangeAllows(const httplib::Request& req, absl::Time mtime) {
  if (!req.has_header("If-Range")) return true;
  const std::string value = req.get_header_value("If-Range");
  if (absl::StartsWith(value, "\"") || absl::StartsWith(value, "W/")) return false;
  absl::Time t;
  return ParseHttpDate(value, &t) && UnixSeconds(t) == UnixSeconds(mtime);
}

class HttplibFileServer : public ArtifactFileServer {
 public:
  HttplibFileServer(FileServerOptions options, int root_fd)
      : options_(std::move(options)), root_fd_(root_fd), server_("artifacts", options_.limits) {
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      Handle(req, res);
      return httplib::Server::HandlerResponse::Handled;
    });
    server_.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      common::LogDebug("artifact http request", {{"method", req.method},
                                                 {"path", req.path},
                                                 {"status", std::to_string(res.status)},
                                                 {"remote", req.remote_addr}});
    });
  }

  ~HttplibFileServer() override {
    Shutdown(absl::ZeroDuration());
    close(root_fd_);
  }

  absl::Status Listen(const common::HostPort& hp) {
    auto port = server_.Listen(hp);
    if (!port.ok()) return port.status();
    port_ = *port;
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  void Shutdown(absl::Duration grace) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (draining_) return;  // the first call does the work
    draining_ = true;
    lock.unlock();
    // Idle keep-alive connections go now; later requests get 503.
    server_.CloseIdleConnections();
    lock.lock();
    idle_.wait_for(lock, absl::ToChronoNanoseconds(std::max(grace, absl::ZeroDuration())),
                   [this] { return in_flight_.empty(); });
    lock.unlock();
    // Past the grace: cut the downloads still running, or a client that
    // stopped reading would hold the stop for the whole write timeout.
    server_.Stop();
  }

 private:
  // One GET or HEAD being answered: counted from the draining check until
  // its response (and the open file a download holds) is gone.
  // Created with mu_ held.
  class InFlight {
   public:
    explicit InFlight(HttplibFileServer* server) : server_(server) {
      server_->in_flight_.insert(this);
    }
    ~InFlight() {
      if (fd_ >= 0) close(fd_);
      std::lock_guard<std::mutex> lock(server_->mu_);
      server_->in_flight_.erase(this);
      if (server_->in_flight_.empty()) server_->idle_.notify_all();
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

    int fd_ = -1;
    std::unique_ptr<char[]> buffer_;

   private:
    HttplibFileServer* const server_;
  };

  void Handle(const httplib::Request& req, httplib::Response& res) {
    // Range is evaluated here with Go's rules; cpp-httplib must not slice the
    // body a second time (it would for every response, errors included).
    // `req` is the library's own non-const request object.
    const_cast<httplib::Request&>(req).ranges.clear();
    res.set_header("Date", HttpDate(absl::Now()));
    if (req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", "GET, HEAD");
      // The body of a method we refuse is not read: closing is the only way
      // it cannot be parsed as the next request (request smuggling).
      res.set_header("Connection", "close");
      common::BoundedHttpServer::CloseAfterThisResponse();
      Error(res, 405, "405 method not allowed");
      return;
    }
    std::shared_ptr<InFlight> request;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (draining_) {
        res.set_header("Connection", "close");
        Error(res, 503, "503 shutting down");
        return;
      }
      request = std::make_shared<InFlight>(this);
    }
    if (!IsArtifactRequestPath(req.path)) return NotFound(res);

    std::vector<std::string> parts = absl::StrSplit(absl::string_view(req.path).substr(1), '/');
    request->fd_ = OpenBeneath(root_fd_, parts);
    struct stat st;
    if (request->fd_ < 0) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR || err == ELOOP) return NotFound(res);
      if (err == EACCES) return Error(res, 403, "403 Forbidden");
      common::LogError("cannot open artifact", {{"path", req.path}, {"error", strerror(err)}});
      return Error(res, 500, "500 Internal Server Error");
    }
    if (fstat(request->fd_, &st) != 0 || !S_ISREG(st.st_mode)) return NotFound(res);
    const int64_t size = st.st_size;
    const absl::Time mtime = absl::TimeFromTimespec(st.st_mtim);

    res.set_header("Last-Modified", HttpDate(mtime));
    res.set_header("Accept-Ranges", "bytes");
    if (int status = CheckPreconditions(req, mtime); status != 0) {
      res.status = status;
      // A 304 carries the length a 200 would have; a 412 has an empty body.
      res.set_header("Content-Length", status == 304 ? std::to_string(size) : "0");
      return;
    }

    ByteRange range{0, size};
    res.status = 200;
    if (req.has_header("Range") && IfRangeAllows(req, mtime)) {
      auto ranges = ParseRangeHeader(req.get_header_value("Range"), size);
      if (absl::IsOutOfRange(ranges.status())) {
        res.set_header("Content-Range", absl::StrCat("bytes */", size));
        return Error(res, 416, "invalid range: failed to overlap");
      }
      // (cpp-httplib answers most malformed headers 416 before we see them.)
      if (!ranges.ok()) return Error(res, 416, "invalid range");
      if (ranges->size() == 1) {
        range = ranges->front();
        res.status = 206;
        res.set_header("Content-Range", absl::StrCat("bytes ", range.offset, "-",
                                                     range.offset + range.length - 1, "/", size));
      }
    }

    res.set_header("Content-Type", kArtifactContentType);
    if (req.method == "HEAD" || range.length == 0) {
      res.set_header("Content-Length", std::to_string(range.length));
      return;
    }
    request->buffer_.reset(new char[kChunkBytes]);
    const int64_t start = range.offset;
    res.set_content_provider(
        static_cast<size_t>(range.length), kArtifactContentType,
        [request, start, path = req.path](size_t offset, size_t length, httplib::DataSink& sink) {
          const size_t want = std::min(length, kChunkBytes);
          ssize_t n;
          do {
            n = pread(request->fd_, request->buffer_.get(), want,
                      static_cast<off_t>(start + static_cast<int64_t>(offset)));
          } while (n < 0 && errno == EINTR);
          if (n <= 0) {
            // Shrunk under us or an I/O error: cut the response short, so the
            // client sees fewer bytes than Content-Length, never wrong ones.
            common::LogError("artifact read failed",
                             {{"path", path}, {"error", n < 0 ? strerror(errno) : "short file"}});
            return false;
          }
          return sink.write(request->buffer_.get(), static_cast<size_t>(n));
        });
  }

  const FileServerOptions options_;
  const int root_fd_;
  common::BoundedHttpServer server_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable idle_;
  std::set<const InFlight*> in_flight_;  // guarded by mu_
  bool draining_ = false;                // guarded by mu_
};

}  // namespace

bool IsArtifactRequestPath(absl::string_view path) {
  if (!absl::ConsumePrefix(&path, "/")) return false;
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
  if (parts.size() != 4) return false;
  for (absl::string_view part : parts) {
    if (part.empty() || part.front() == '.') return false;
    if (!std::all_of(part.begin(), part.end(), IsComponentChar)) return false;
  }
  absl::string_view file = parts.back();
  if (!absl::ConsumeSuffix(&file, kArtifactSuffix) || file.size() != 64) return false;
  return std::all_of(file.begin(), file.end(), IsLowerHex);
}

absl::StatusOr<std::vector<ByteRange>> ParseRangeHeader(absl::string_view header, int64_t size) {
  std::vector<ByteRange> out;
  if (header.empty()) return out;
  auto invalid = [] { return absl::InvalidArgumentError("invalid range"); };
  if (!absl::ConsumePrefix(&header, "bytes=")) return invalid();
  bool dropped = false;
  for (absl::string_view spec : absl::StrSplit(header, ',')) {
    spec = absl::StripAsciiWhitespace(spec);
    if (spec.empty()) continue;
    const size_t dash = spec.find('-');
    if (dash == absl::string_view::npos) return invalid();
    const absl::string_view first = absl::StripAsciiWhitespace(spec.substr(0, dash));
    const absl::string_view last = absl::StripAsciiWhitespace(spec.substr(dash + 1));
    // Digits only: SimpleAtoi would also take a sign or "+".
    auto number = [](absl::string_view s, int64_t* v) {
      return !s.empty() && std::all_of(s.begin(), s.end(), absl::ascii_isdigit) &&
             absl::SimpleAtoi(s, v);
    };
    ByteRange r;
    if (first.empty()) {
      // "-N": the last N bytes.
      int64_t n;
      if (!number(last, &n)) return invalid();
      if (n == 0 || size == 0) {
        dropped = true;
        continue;
      }
      n = std::min(n, size);
      r.offset = size - n;
      r.length = n;
    } else {
      int64_t start;
      if (!number(first, &start)) return invalid();
      int64_t end = size - 1;
      if (!last.empty()) {
        if (!number(last, &end) || end < start) return invalid();
        end = std::min(end, size - 1);
      }
      if (start >= size) {
        dropped = true;
        continue;
      }
      r.offset = start;
      r.length = end - start + 1;
    }
    out.push_back(r);
  }
  if (dropped && out.empty()) return absl::OutOfRangeError("no range overlaps the content");
  // Go ignores ranges that add up to more than the whole body (an attack or
  // a confused client); the caller serves the whole file then.
  int64_t total = 0;
  for (const ByteRange& r : out) total += r.length;
  if (total > size) out.clear();
  return out;
}

absl::StatusOr<std::unique_ptr<ArtifactFileServer>> ArtifactFileServer::Start(
    FileServerOptions options) {
  auto hp = common::ParseHostPort(options.listen_address);
  if (!hp.ok()) return hp.status();
  if (options.storage_root.empty()) return absl::InvalidArgumentError("storage root is empty");
  absl::Status valid = common::ValidateHttpServerLimits(options.limits);
  if (!valid.ok()) return valid;
  const int root_fd = open(options.storage_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    std::string msg =
        absl::StrCat("open storage root ", options.storage_root, ": ", strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
  }
  auto server = std::make_unique<HttplibFileServer>(std::move(options), root_fd);
  absl::Status s = server->Listen(*hp);
  if (!s.ok()) return s;
  return std::unique_ptr<ArtifactFileServer>(std::move(server));
}

}  // namespace gitops::source
