// The HTTP artifact endpoint over a real storage directory on loopback,
// exercised with real curl.
#include "source-controller/http/file_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "gtest/gtest.h"
#include "source-controller/artifact/storage.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

using gitops::testing::MakeTempDir;
using gitops::testing::ReadFile;
using gitops::testing::RemoveTree;
using gitops::testing::RunCommand;
using gitops::testing::Subprocess;
using gitops::testing::WriteFile;

const SourceKey kKey{"GitRepository", "flux-system", "app"};

// Resident memory of this process, in KiB.
int64_t VmRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      int64_t kib = 0;
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() >= 2 && absl::SimpleAtoi(f[1], &kib)) return kib;
    }
  }
  return -1;
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// Deterministic bytes that do not compress (so sizes mean what they say).
std::string PseudoRandom(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

// A GET whose body the test reads at its own pace: a small receive buffer
// keeps the server from handing the whole file to the kernel at once, so
// the download is really in flight while the test acts.
class SlowGet {
 public:
  // `raw`, when given, is sent instead of the GET of `path`.
  SlowGet(int port, const std::string& path, const std::string& raw = "") {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int rcvbuf = 16 << 10;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    const std::string request =
        !raw.empty()
            ? raw
            : absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    connected_ =
        send(fd_, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size());
  }
  ~SlowGet() { close(fd_); }

  bool connected() const { return connected_; }
  // Reads until at least `n` body bytes arrived, or EOF when n is -1.
  // Returns false on EOF before that (or an error).
  bool Read(int64_t n) {
    char buf[64 << 10];
    while (n < 0 || BodySize() < n) {
      ssize_t got = recv(fd_, buf, sizeof buf, 0);
      // A server that closes with request bytes unread makes the kernel
      // reset the connection: that is a close too.
      if (got < 0 && errno == ECONNRESET) return n < 0;
      if (got <= 0) return n < 0 && got == 0;
      raw_.append(buf, static_cast<size_t>(got));
    }
    return true;
  }
  int64_t BodySize() const {
    size_t end = raw_.find("\r\n\r\n");
    return end == std::string::npos ? 0 : static_cast<int64_t>(raw_.size() - end - 4);
  }
  std::string Headers() const { return raw_.substr(0, raw_.find("\r\n\r\n")); }
  std::string Body() const {
    size_t end = raw_.find("\r\n\r\n");
    return end == std::string::npos ? "" : raw_.substr(end + 4);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string raw_;
};

struct Reply {
  int code = 0;
  std::string headers;  // raw, as curl -D writes them
  std::string body;
  // The value of header `name` (case-insensitive), "" when absent.
  std::string Header(absl::string_view name) const {
    for (absl::string_view line : absl::StrSplit(headers, "\r\n")) {
      size_t colon = line.find(':');
      if (colon != absl::string_view::npos && absl::EqualsIgnoreCase(line.substr(0, colon), name)) {
        return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
    }
    return "";
  }
};

class FileServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("http-file-server");
    auto storage = ArtifactStorage::Create(dir_ + "/storage");
    ASSERT_TRUE(storage.ok()) << storage.status();
    storage_ = std::move(*storage);
    StartServer();
  }
  void TearDown() override {
    server_.reset();
    storage_.reset();
    RemoveTree(dir_);
  }

  void StartServer() {
    FileServerOptions o;
    o.listen_address = "127.0.0.1:0";
    o.storage_root = storage_->root();
    auto server = ArtifactFileServer::Start(o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  StoredArtifact Store(const std::string& content, const SourceKey& key = kKey) {
    auto temp = storage_->NewTempPath(key);
    EXPECT_TRUE(temp.ok()) << temp.status();
    EXPECT_TRUE(WriteFile(*temp, content).ok());
    auto stored = storage_->Commit(key, *temp, common::Sha256Digest(content));
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() ? *stored : StoredArtifact{};
  }

  std::string Url(absl::string_view path) {
    return absl::StrCat("http://127.0.0.1:", server_->port(), path);
  }

  // One request with curl (paths sent as written: --path-as-is).
  Reply Curl(absl::string_view path, std::vector<std::string> extra = {}) {
    const std::string body = dir_ + "/body", headers = dir_ + "/headers";
    unlink(body.c_str());
    unlink(headers.c_str());
    std::vector<std::string> argv = {"curl",  "-sS", "--path-as-is", "--max-time",
                                     "20",    "-o",  body,           "-D",
                                     headers, "-w",  "%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(Url(path));
    Reply r;
    auto out = RunCommand(argv, absl::Seconds(30));
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return r;
    EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(*out), &r.code)) << *out;
    r.headers = ReadFile(headers).value_or("");
    r.body = ReadFile(body).value_or("");
    return r;
  }

  std::string dir_;
  std::unique_ptr<ArtifactStorage> storage_;
  std::unique_ptr<ArtifactFileServer> server_;
};

TEST_F(FileServerTest, GetServesTheStoredBytesWithFluxHeaders) {
  const std::string content = PseudoRandom(3 * 256 * 1024 + 17, 1);  // several chunks
  StoredArtifact a = Store(content);
  Reply r = Curl("/" + a.path);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body.size(), content.size());
  EXPECT_TRUE(r.body == content);
  EXPECT_EQ(common::Sha256Digest(r.body), a.digest);
  EXPECT_EQ(r.Header("Content-Type"), "application/x-gzip");
  EXPECT_EQ(r.Header("Content-Length"), std::to_string(content.size()));
  EXPECT_EQ(r.Header("Accept-Ranges"), "bytes");
  EXPECT_EQ(r.Header("Last-Modified"),
            absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", a.last_update, absl::UTCTimeZone()));
  EXPECT_FALSE(r.Header("Date").empty());
}

TEST_F(FileServerTest, HeadSendsHeadersOnly) {
  const std::string content = PseudoRandom(100000, 2);
  StoredArtifact a = Store(content);
  Reply r = Curl("/" + a.path, {"--head"});
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.Header("Content-Length"), "100000");
  EXPECT_EQ(r.Header("Content-Type"), "application/x-gzip");
  EXPECT_EQ(r.Header("Accept-Ranges"), "bytes");
}

TEST_F(FileServerTest, RangesFollowGoFileServer) {
  const std::string content = PseudoRandom(1000, 3);
  StoredArtifact a = Store(content);
  const std::string path = "/" + a.path;
  struct Case {
    const char* name;
    std::string range;
    int code;
    std::string content_range;
    std::string body;
  };
  const std::vector<Case> cases = {
      {"closed", "bytes=10-19", 206, "bytes 10-19/1000", content.substr(10, 10)},
      {"open ended", "bytes=990-", 206, "bytes 990-999/1000", content.substr(990)},
      {"suffix", "bytes=-5", 206, "bytes 995-999/1000", content.substr(995)},
      {"suffix longer than the file", "bytes=-5000", 206, "bytes 0-999/1000", content},
      {"end clamped", "bytes=500-99999", 206, "bytes 500-999/1000", content.substr(500)},
      {"starts past the end", "bytes=1000-", 416, "bytes */1000", ""},
      {"zero suffix", "bytes=-0", 416, "bytes */1000", ""},
      // Malformed: 416 without Content-Range, as Go.
      {"end before start", "bytes=20-10", 416, "", ""},
      {"not bytes", "items=0-1", 416, "", ""},
      {"no number", "bytes=a-", 416, "", ""},
      {"several ranges: whole file", "bytes=0-1,5-6", 200, "", content},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Reply r = Curl(path, {"-H", "Range: " + c.range});
    EXPECT_EQ(r.code, c.code);
    EXPECT_EQ(r.Header("Content-Range"), c.content_range);
    if (c.code != 416) {
      EXPECT_TRUE(r.body == c.body) << r.body.size();
      EXPECT_EQ(r.Header("Content-Length"), std::to_string(c.body.size()));
    }
  }
  // HEAD with a range reports the part's length.
  Reply head = Curl(path, {"--head", "-H", "Range: bytes=100-199"});
  EXPECT_EQ(head.code, 206);
  EXPECT_EQ(head.Header("Content-Length"), "100");
  EXPECT_EQ(head.Header("Content-Range"), "bytes 100-199/1000");
  // curl's own resume (-C) continues from what it has.
  ASSERT_TRUE(WriteFile(dir_ + "/partial", content.substr(0, 400)).ok());
  auto resumed = RunCommand({"curl", "-sS", "-C", "-", "-o", dir_ + "/partial", Url(path)});
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(ReadFile(dir_ + "/partial").value_or("") == content);
}

TEST_F(FileServerTest, ConditionalRequests) {
  StoredArtifact a = Store(PseudoRandom(500, 4));
  const std::string path = "/" + a.path;
  auto date = [](absl::Time t) {
    return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", t, absl::UTCTimeZone());
  };
  const std::string modified = date(a.last_update);
  const std::string before = date(a.last_update - absl::Hours(1));

  Reply r = Curl(path, {"-H", "If-Modified-Since: " + modified});
  EXPECT_EQ(r.code, 304);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(Curl(path, {"-H", "If-Modified-Since: " + before}).code, 200);
  // RFC 850 and asctime dates too, as Go parses them.
  EXPECT_EQ(Curl(path, {"-H", "If-Modified-Since: " + absl::FormatTime("%A, %d-%b-%y %H:%M:%S GMT",
                                                                       a.last_update,
                                                                       absl::UTCTimeZone())})
                .code,
            304);
  EXPECT_EQ(Curl(path, {"-H", "If-Modified-Since: " + absl::FormatTime("%a %b %e %H:%M:%S %Y",
                                                                       a.last_update,
                                                                       absl::UTCTimeZone())})
                .code,
            304);
  EXPECT_EQ(Curl(path, {"-H", "If-Modified-Since: garbage"}).code, 200);
  EXPECT_EQ(Curl(path, {"-H", "If-None-Match: *"}).code, 304);
  EXPECT_EQ(Curl(path, {"-H", "If-Unmodified-Since: " + before}).code, 412);
  EXPECT_EQ(Curl(path, {"-H", "If-Unmodified-Since: " + modified}).code, 200);
  EXPECT_EQ(Curl(path, {"-H", "If-Match: \"abc\""}).code, 412);
  EXPECT_EQ(Curl(path, {"-H", "If-Match: *"}).code, 200);
  // If-Range: the range only when the date matches.
  EXPECT_EQ(Curl(path, {"-H", "Range: bytes=0-9", "-H", "If-Range: " + modified}).code, 206);
  Reply stale = Curl(path, {"-H", "Range: bytes=0-9", "-H", "If-Range: " + before});
  EXPECT_EQ(stale.code, 200);
  EXPECT_EQ(stale.body.size(), 500u);
  EXPECT_EQ(Curl(path, {"-H", "Range: bytes=0-9", "-H", "If-Range: \"etag\""}).code, 200);
}

TEST_F(FileServerTest, ServesNothingButStoredArtifacts) {
  StoredArtifact a = Store(PseudoRandom(100, 5));
  const std::string root = storage_->root();
  const std::string missing = std::string(64, 'e') + ".tar.gz";  // never stored
  const std::string other = std::string(64, 'b') + ".tar.gz";

  // A file outside the storage, named like an artifact, reachable from the
  // root through "..": the traversals below must not find it.
  ASSERT_TRUE(WriteFile(dir_ + "/outside/a/" + other, "secret").ok());
  // Under dot directories, named like artifacts.
  ASSERT_TRUE(WriteFile(root + "/.state/flux-system/app/" + other, "state").ok());
  ASSERT_TRUE(WriteFile(root + "/gitrepository/flux-system/.hidden/" + other, "hidden").ok());
  // A temp file of a pack in progress.
  auto temp = storage_->NewTempPath(kKey);
  ASSERT_TRUE(temp.ok());
  ASSERT_TRUE(WriteFile(*temp, "partial").ok());
  const std::string temp_name = temp->substr(temp->find_last_of('/') + 1);
  // Symlinks out of the storage: a directory and a file.
  ASSERT_EQ(symlink((dir_ + "/outside").c_str(), (root + "/gitrepository/evil").c_str()), 0);
  ASSERT_EQ(symlink((dir_ + "/outside/a/" + other).c_str(),
                    (root + "/gitrepository/flux-system/app/" + other).c_str()),
            0);
  // A directory and a FIFO named like artifacts.
  const std::string dir_artifact = std::string(64, 'c') + ".tar.gz";
  const std::string fifo_artifact = std::string(64, 'd') + ".tar.gz";
  ASSERT_EQ(mkdir((root + "/gitrepository/flux-system/app/" + dir_artifact).c_str(), 0755), 0);
  ASSERT_EQ(mkfifo((root + "/gitrepository/flux-system/app/" + fifo_artifact).c_str(), 0644), 0);

  const std::vector<std::string> paths = {
      "/",
      "/gitrepository",
      "/gitrepository/",
      "/gitrepository/flux-system/app",
      "/gitrepository/flux-system/app/",
      "/.state/flux-system/app/" + other,
      "/%2estate/flux-system/app/" + other,
      "/gitrepository/flux-system/.hidden/" + other,
      "/gitrepository/flux-system/app/" + temp_name,
      "/../outside/a/" + other,
      "/%2e%2e/outside/a/" + other,
      "/%2E%2E/outside/a/" + other,
      "/.%2e/outside/a/" + other,
      "/%252e%252e/outside/a/" + other,
      "/..%2foutside%2fa/" + other,
      "/gitrepository/../../outside/a/" + other,
      "/gitrepository/evil/a/" + other,
      "/gitrepository/flux-system/app/" + other,
      "/gitrepository/flux-system/app/" + dir_artifact,
      "/gitrepository/flux-system/app/" + fifo_artifact,
      "/" + absl::AsciiStrToUpper(a.path),
      "/" + a.path + "/",
      "/" + a.path + ".partial",
      "//" + a.path,
      "/gitrepository/flux-system/app/" + missing,
      "/gitrepository/flux-system/app/%00" + other,
  };
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    Reply r = Curl(path);
    EXPECT_EQ(r.code, 404);
    EXPECT_FALSE(absl::StrContains(r.body, "secret"));
  }
  // The stored artifact itself is served; other methods are refused.
  EXPECT_EQ(Curl("/" + a.path).code, 200);
  EXPECT_EQ(Curl("/" + a.path, {"-X", "POST", "-d", "x"}).code, 405);
  EXPECT_EQ(Curl("/" + a.path, {"-X", "DELETE"}).code, 405);
  EXPECT_EQ(FileSize(root + "/" + a.path), 100);
}

// A refused method's body is never read as the next request: the 405
// closes the connection (else a POST body could smuggle a second request).
TEST_F(FileServerTest, RefusedMethodWithABodyClosesTheConnection) {
  StoredArtifact a = Store(PseudoRandom(100, 9));
  const std::string smuggled = "GET /" + a.path + " HTTP/1.1\r\nHost: test\r\n\r\n";
  const std::string post =
      absl::StrCat("POST /", a.path, " HTTP/1.1\r\nHost: test\r\nContent-Length: ", smuggled.size(),
                   "\r\n\r\n", smuggled);
  SlowGet conn(server_->port(), "", post);
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.Read(-1)) << "the server kept the connection open: " << conn.Headers();
  EXPECT_TRUE(absl::StartsWith(conn.Headers(), "HTTP/1.1 405")) << conn.Headers();
  EXPECT_FALSE(absl::StrContains(conn.Body(), "HTTP/1.1 ")) << "a second response: " << conn.Body();
}

TEST_F(FileServerTest, AbsurdRangeHeaderDoesNotHurtTheServer) {
  StoredArtifact a = Store(PseudoRandom(1000, 6));
  std::string range = "bytes=0-1";
  while (range.size() < 7000) range += ",0-1";
  Reply r = Curl("/" + a.path, {"-H", "Range: " + range});
  EXPECT_TRUE(r.code == 200 || r.code == 416) << r.code;
  EXPECT_EQ(Curl("/" + a.path).code, 200);
}

TEST_F(FileServerTest, DownloadCompletesWhileGarbageCollectionRemovesTheFile) {
  const std::string content = PseudoRandom(24 << 20, 7);
  StoredArtifact old = Store(content);
  SlowGet download(server_->port(), "/" + old.path);
  ASSERT_TRUE(download.connected());
  ASSERT_TRUE(download.Read(1 << 20));

  // A new revision arrives and GC removes the one being downloaded.
  StoredArtifact current = Store(PseudoRandom(1000, 8));
  auto removed = storage_->GarbageCollect(kKey, current.digest, 1, absl::ZeroDuration(),
                                          absl::Now() + absl::Hours(1));
  ASSERT_TRUE(removed.ok()) << removed.status();
  ASSERT_EQ(*removed, std::vector<std::string>{old.path});
  ASSERT_EQ(FileSize(storage_->root() + "/" + old.path), -1);
  // Gone for new requests...
  EXPECT_EQ(Curl("/" + old.path).code, 404);

  // ...while the download in flight still gets every byte.
  ASSERT_TRUE(download.Read(-1));
  EXPECT_TRUE(absl::StartsWith(download.Headers(), "HTTP/1.1 200")) << download.Headers();
  EXPECT_EQ(download.BodySize(), static_cast<int64_t>(content.size()));
  EXPECT_EQ(common::Sha256Digest(download.Body()), old.digest);
}

TEST_F(FileServerTest, LargeArtifactStreamsInBoundedMemory) {
  constexpr int64_t kSize = 200ll << 20;
  auto temp = storage_->NewTempPath(kKey);
  ASSERT_TRUE(temp.ok());
  {
    std::ofstream f(*temp, std::ios::binary);
    const std::string block = PseudoRandom(1 << 20, 9);
    for (int64_t i = 0; i < kSize >> 20; ++i) {
      f.write(reinterpret_cast<const char*>(&i), sizeof i);
      f.write(block.data() + sizeof i, block.size() - sizeof i);
    }
    ASSERT_TRUE(f.good());
  }
  auto digest = common::Sha256File(*temp);
  ASSERT_TRUE(digest.ok());
  auto stored = storage_->Commit(kKey, *temp, *digest);
  ASSERT_TRUE(stored.ok()) << stored.status();

  const int64_t rss_before = VmRssKiB();
  const absl::Time start = absl::Now();
  auto out =
      RunCommand({"sh", "-c", absl::StrCat("curl -sS ", Url("/" + stored->path), " | sha256sum")},
                 absl::Seconds(120));
  const absl::Duration took = absl::Now() - start;
  const int64_t rss_after = VmRssKiB();
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(absl::StrCat("sha256:", out->substr(0, 64)), stored->digest);
  // The server reads into one 256 KiB buffer per download.
  EXPECT_LT(rss_after - rss_before, 16 * 1024) << rss_before << " -> " << rss_after << " KiB";
  std::printf("200 MiB via curl | sha256sum: %.2f s, server RSS %lld -> %lld KiB\n",
              absl::ToDoubleSeconds(took), static_cast<long long>(rss_before),
              static_cast<long long>(rss_after));
}

TEST_F(FileServerTest, ParallelDownloadsAllVerify) {
  const std::string content = PseudoRandom(4 << 20, 10);
  StoredArtifact a = Store(content);
  std::vector<std::unique_ptr<Subprocess>> curls;
  for (int i = 0; i < 6; ++i) {
    auto c =
        Subprocess::Start({"curl", "-sS", "-o", absl::StrCat(dir_, "/par-", i), Url("/" + a.path)},
                          {}, absl::StrCat(dir_, "/par-", i, ".log"));
    ASSERT_TRUE(c.ok());
    curls.push_back(std::move(*c));
  }
  for (int i = 0; i < 6; ++i) {
    auto code = curls[i]->Wait(absl::Seconds(60));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 0) << curls[i]->ReadLog();
    EXPECT_EQ(common::Sha256File(absl::StrCat(dir_, "/par-", i)).value_or(""), a.digest);
  }
}

TEST_F(FileServerTest, ShutdownLetsDownloadsFinishAndRefusesNewOnes) {
  const std::string content = PseudoRandom(24 << 20, 11);
  StoredArtifact a = Store(content);
  SlowGet download(server_->port(), "/" + a.path);
  ASSERT_TRUE(download.connected());
  ASSERT_TRUE(download.Read(1 << 20));

  const std::string url = Url("/" + a.path);
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    server_->Shutdown(absl::Seconds(30));
    stopped = true;
  });
  absl::SleepFor(absl::Milliseconds(200));
  // Draining: a new request is answered 503; Shutdown waits for the download.
  Reply refused = Curl("/" + a.path);
  EXPECT_EQ(refused.code, 503);
  EXPECT_FALSE(stopped.load());
  ASSERT_TRUE(download.Read(-1));
  stopper.join();
  EXPECT_EQ(download.BodySize(), static_cast<int64_t>(content.size()));
  EXPECT_EQ(common::Sha256Digest(download.Body()), a.digest);
  // Stopped: nothing listens any more.
  EXPECT_FALSE(RunCommand({"curl", "-sS", "--max-time", "5", url}).ok());
}

TEST_F(FileServerTest, ShutdownGraceIsBounded) {
  StoredArtifact a = Store(PseudoRandom(24 << 20, 12));
  SlowGet stuck(server_->port(), "/" + a.path);
  ASSERT_TRUE(stuck.connected());
  ASSERT_TRUE(stuck.Read(1 << 20));
  // A client that stops reading cannot hold the shutdown past the grace.
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Milliseconds(300));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(3)) << "the stuck download held the stop";
  EXPECT_FALSE(stuck.Read(-1) && stuck.BodySize() == 24 << 20);
}

TEST_F(FileServerTest, ClientHangingUpMidDownloadIsHarmless) {
  StoredArtifact a = Store(PseudoRandom(24 << 20, 13));
  for (int i = 0; i < 3; ++i) {
    SlowGet gone(server_->port(), "/" + a.path);
    ASSERT_TRUE(gone.connected());
    ASSERT_TRUE(gone.Read(1 << 20));
  }  // closed with most of the body unsent
  Reply r = Curl("/" + a.path);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(common::Sha256Digest(r.body), a.digest);
}

TEST_F(FileServerTest, SecondServerOnTheSamePortFails) {
  FileServerOptions o;
  o.listen_address = absl::StrCat("127.0.0.1:", server_->port());
  o.storage_root = storage_->root();
  auto second = ArtifactFileServer::Start(o);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsUnavailable(second.status())) << second.status();
  EXPECT_TRUE(absl::StrContains(second.status().message(), "port in use")) << second.status();
}

TEST_F(FileServerTest, BadOptionsAreRefused) {
  FileServerOptions o;
  o.listen_address = "nonsense";
  o.storage_root = storage_->root();
  EXPECT_TRUE(absl::IsInvalidArgument(ArtifactFileServer::Start(o).status()));
  o.listen_address = "127.0.0.1:0";
  o.storage_root = dir_ + "/missing";
  EXPECT_TRUE(absl::IsNotFound(ArtifactFileServer::Start(o).status()));
}

TEST(ParseRangeHeaderTest, GoRules) {
  struct Case {
    const char* header;
    int64_t size;
    absl::StatusCode code;
    std::vector<std::pair<int64_t, int64_t>> ranges;  // offset, length
  };
  const std::vector<Case> cases = {
      {"", 100, absl::StatusCode::kOk, {}},
      {"bytes=0-0", 100, absl::StatusCode::kOk, {{0, 1}}},
      {"bytes= 1 - 2 ", 100, absl::StatusCode::kOk, {{1, 2}}},
      {"bytes=0-", 100, absl::StatusCode::kOk, {{0, 100}}},
      {"bytes=-1", 100, absl::StatusCode::kOk, {{99, 1}}},
      {"bytes=50-60,70-", 100, absl::StatusCode::kOk, {{50, 11}, {70, 30}}},
      {"bytes=0-99,0-99", 100, absl::StatusCode::kOk, {}},  // more than the body: ignored
      {"bytes=200-300,0-1", 100, absl::StatusCode::kOk, {{0, 2}}},
      {"bytes=,", 100, absl::StatusCode::kOk, {}},
      {"bytes=100-", 100, absl::StatusCode::kOutOfRange, {}},
      {"bytes=-0", 100, absl::StatusCode::kOutOfRange, {}},
      {"bytes=-5", 0, absl::StatusCode::kOutOfRange, {}},
      {"bytes=0-", 0, absl::StatusCode::kOutOfRange, {}},
      {"bytes=5", 100, absl::StatusCode::kInvalidArgument, {}},
      {"bytes=-", 100, absl::StatusCode::kInvalidArgument, {}},
      {"bytes=+1-2", 100, absl::StatusCode::kInvalidArgument, {}},
      {"bytes=1--2", 100, absl::StatusCode::kInvalidArgument, {}},
      {"bytes=3-2", 100, absl::StatusCode::kInvalidArgument, {}},
      {"bytes=99999999999999999999-", 100, absl::StatusCode::kInvalidArgument, {}},
      {"items=0-1", 100, absl::StatusCode::kInvalidArgument, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header);
    auto got = ParseRangeHeader(c.header, c.size);
    EXPECT_EQ(got.status().code(), c.code) << got.status();
    if (!got.ok()) continue;
    std::vector<std::pair<int64_t, int64_t>> pairs;
    for (const ByteRange& r : *got) pairs.emplace_back(r.offset, r.length);
    EXPECT_EQ(pairs, c.ranges);
  }
}

TEST(IsArtifactRequestPathTest, OnlyTheStorageLayout) {
  const std::string hex(64, 'a');
  EXPECT_TRUE(IsArtifactRequestPath("/gitrepository/flux-system/app/" + hex + ".tar.gz"));
  EXPECT_TRUE(IsArtifactRequestPath("/ocirepository/ns_1/a.b-c/" + hex + ".tar.gz"));
  for (const std::string& p : std::vector<std::string>{
           "", "/", "gitrepository/ns/app/" + hex + ".tar.gz", "/ns/app/" + hex + ".tar.gz",
           "/x/gitrepository/ns/app/" + hex + ".tar.gz", "/gitrepository/ns/app/" + hex + ".tgz",
           "/gitrepository/ns/app/" + hex.substr(1) + ".tar.gz",
           "/gitrepository/ns/app/" + std::string(64, 'A') + ".tar.gz",
           "/gitrepository/../app/" + hex + ".tar.gz", "/gitrepository/./app/" + hex + ".tar.gz",
           "/.state/ns/app/" + hex + ".tar.gz", "/gitrepository//app/" + hex + ".tar.gz",
           "/gitrepository/n s/app/" + hex + ".tar.gz",
           "/gitrepository/ns/a\\pp/" + hex + ".tar.gz",
           std::string("/gitrepository/ns/a\0p/", 22) + hex + ".tar.gz",
           "/gitrepository/ns/app/." + hex + ".tar.gz"}) {
    EXPECT_FALSE(IsArtifactRequestPath(p)) << p;
  }
}

}  // namespace
}  // namespace gitops::source
