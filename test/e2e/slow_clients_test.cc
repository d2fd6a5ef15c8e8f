// Slow clients against the real source-controller binary (issue 17, items 6
// and 7), all on loopback: connections that trickle their request headers
// must not starve the probes, /metrics or artifact downloads, and are cut at
// the header deadline; gRPC streams are bounded, and readers that stop
// reading are ended, with their threads and memory given back.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "gitops/artifact/v1/artifact.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops {
namespace {

namespace v1 = ::gitops::artifact::v1;
using testing::BinaryPath;
using testing::GitWorkRepo;
using testing::InitBareRepo;
using testing::MakeTempDir;
using testing::ReadFile;
using testing::RemoveTree;
using testing::RunCommand;
using testing::Subprocess;
using testing::WriteFile;

// FetchArtifact sends this in several 1 MiB chunks: a client that reads the
// first and stops stalls the server's second Write (a 64 KiB window).
constexpr size_t kFetchBytes = 4 << 20;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;  // ASan's quarantine keeps freed memory
#else
constexpr bool kSanitized = false;
#endif

// A TCP connection to 127.0.0.1:port from `from` (another loopback address,
// so that per-client limits count it apart from the healthy clients).
int ConnectFrom(const char* from, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, from, &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Connections that send a request one byte at a time and never finish it
// (the request line, then an endless header). A background thread sends a
// byte to each open one about every 100 ms and notes when the server closes
// it; it stops by itself after `max_time`, or on destruction.
class SlowClients {
 public:
  explicit SlowClients(absl::Duration max_time) : max_time_(max_time) {}
  ~SlowClients() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
  }

  // Opens `n` connections; call before Start.
  void Open(int n, const char* from, int port) {
    for (int i = 0; i < n; ++i) {
      Conn c;
      // Taken before connecting: the server's deadline starts at its
      // accept, which can come before connect() returns here, so a time
      // taken after it could make a correct close look early.
      c.opened = absl::Now();
      c.fd = ConnectFrom(from, port);
      c.port = port;
      ASSERT_GE(c.fd, 0) << "connect from " << from << " to port " << port;
      conns_.push_back(c);
    }
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  // Connections to `port` the server has closed so far.
  int Closed(int port) const {
    int n = 0;
    for (const Conn& c : conns_) n += c.port == port && c.closed.load() ? 1 : 0;
    return n;
  }
  int Total(int port) const {
    int n = 0;
    for (const Conn& c : conns_) n += c.port == port ? 1 : 0;
    return n;
  }
  // Shortest time from connect to close among the closed connections.
  absl::Duration ShortestLife() const {
    absl::Duration d = absl::InfiniteDuration();
    for (const Conn& c : conns_) {
      if (c.closed.load()) d = std::min(d, c.closed_at - c.opened);
    }
    return d;
  }

  // Waits until the server closed at least `n` connections to `port`.
  bool WaitClosed(int port, int n, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (Closed(port) < n) {
      if (absl::Now() > deadline) return false;
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait_for(lock, std::chrono::milliseconds(100));
    }
    return true;
  }

 private:
  struct Conn {
    int fd = -1;
    int port = 0;
    absl::Time opened;
    absl::Time closed_at;  // written before `closed`
    std::atomic<bool> closed{false};
    size_t sent = 0;
    Conn() = default;
    Conn(const Conn& o)
        : fd(o.fd), port(o.port), opened(o.opened), closed_at(o.closed_at), sent(o.sent) {
      closed = o.closed.load();
    }
  };

  void Run() {
    static const std::string kRequest =
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(1 << 16, 'a');
    const absl::Time end = absl::Now() + max_time_;
    while (!stop_ && absl::Now() < end) {
      std::vector<pollfd> fds;
      std::vector<Conn*> which;
      for (Conn& c : conns_) {
        if (c.closed.load()) continue;
        // One byte each round.
        if (c.sent < kRequest.size()) {
          if (send(c.fd, kRequest.data() + c.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) ++c.sent;
        }
        fds.push_back({c.fd, POLLIN, 0});
        which.push_back(&c);
      }
      if (fds.empty()) break;
      // Waits 100 ms for the server to answer or close any of them.
      const int n = poll(fds.data(), fds.size(), 100);
      for (int i = 0; n > 0 && i < static_cast<int>(fds.size()); ++i) {
        if (fds[i].revents == 0) continue;
        char buf[4096];
        const ssize_t r = recv(fds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          which[i]->closed_at = absl::Now();
          which[i]->closed = true;
        }
      }
      changed_.notify_all();
    }
  }

  const absl::Duration max_time_;
  std::vector<Conn> conns_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable changed_;
};

// /proc/<pid>/status fields, in kB for VmRSS.
struct ProcStatus {
  int64_t rss_kb = 0;
  int64_t threads = 0;
};
ProcStatus ReadProcStatus(pid_t pid) {
  ProcStatus s;
  auto text = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!text.ok()) return s;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() < 2) continue;
    if (f[0] == "VmRSS:") (void)absl::SimpleAtoi(f[1], &s.rss_kb);
    if (f[0] == "Threads:") (void)absl::SimpleAtoi(f[1], &s.threads);
  }
  return s;
}

std::shared_ptr<grpc::Channel> NewChannel(int port) {
  grpc::ChannelArguments args;
  // Its own connection, and a fixed 64 KiB receive window per stream: a
  // stream the test stops reading stalls the server's writes at once.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 8 << 20);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

class SlowClientsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("slow-clients"); }

  // A repository whose artifact holds `blob_bytes` that gzip cannot shrink.
  void MakeRepository(size_t blob_bytes) {
    const std::string remote = dir_ + "/remote.git";
    ASSERT_TRUE(InitBareRepo(remote).ok());
    auto work = GitWorkRepo::Create(dir_ + "/work");
    ASSERT_TRUE(work.ok()) << work.status();
    std::string blob(blob_bytes, '\0');
    std::mt19937_64 rng(17);
    for (size_t i = 0; i + 8 <= blob.size(); i += 8) {
      const uint64_t v = rng();
      memcpy(&blob[i], &v, 8);
    }
    ASSERT_TRUE(work->Commit("first", {{"blob.bin", blob}}).ok());
    ASSERT_TRUE(work->PushAll(remote).ok());
    ASSERT_TRUE(WriteFile(dir_ + "/sources.yaml",
                          absl::StrCat("apiVersion: source.toolkit.fluxcd.io/v1\n"
                                       "kind: GitRepository\n"
                                       "metadata:\n  name: app\n  namespace: flux-system\n"
                                       "spec:\n  interval: 10m\n  url: file://",
                                       remote, "\n  ref:\n    branch: main\n"))
                    .ok());
  }
  void TearDown() override {
    proc_.reset();
    RemoveTree(dir_);
  }

  // Starts the controller with `extra` flags on a repository of
  // `blob_bytes` and waits for its artifact.
  void Start(const std::vector<std::string>& extra, size_t blob_bytes = 4 << 10) {
    ASSERT_NO_FATAL_FAILURE(MakeRepository(blob_bytes));
    std::vector<std::string> args = {
        BinaryPath("source-controller"), "--sources-file=" + dir_ + "/sources.yaml",
        "--storage-path=" + dir_ + "/storage", "--grpc-addr=127.0.0.1:0",
        "--metrics-addr=127.0.0.1:0",
        // Another address than --metrics-addr, or both share one server.
        absl::StrCat("--health-addr=127.0.0.1:", testing::PickFreePort()),
        "--storage-addr=127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto proc = Subprocess::Start(args, {}, dir_ + "/source.log");
    ASSERT_TRUE(proc.ok()) << proc.status();
    proc_ = std::move(*proc);
    for (auto [field, port] : {std::pair{"grpc_port", &grpc_port_},
                               {"http_port", &http_port_},
                               {"metrics_port", &metrics_port_},
                               {"health_port", &health_port_}}) {
      auto value = proc_->WaitForLogField("source-controller started", field, absl::Seconds(30));
      ASSERT_TRUE(value.ok()) << value.status();
      ASSERT_TRUE(absl::SimpleAtoi(*value, port)) << *value;
    }
    const std::string state = dir_ + "/storage/.state/flux-system/app.json";
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      auto text = ReadFile(state);
      if (text.ok()) {
        auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
        if (!j.is_discarded() && j.contains("status") && j["status"].contains("artifact")) {
          url_ = j["status"]["artifact"].value("url", "");
          digest_ = j["status"]["artifact"].value("digest", "");
          if (!url_.empty()) return;
        }
      }
      ASSERT_TRUE(proc_->Running()) << proc_->ReadLog();
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << "no artifact in " << state << "\n" << proc_->ReadLog();
  }

  // curl from 127.0.0.1 with a 10 s limit: "<http code>" and the body file.
  std::string Curl(const std::string& url, const std::string& out = "/dev/null") {
    auto r = RunCommand({"curl", "-sS", "--max-time", "10", "-o", out, "-w", "%{http_code}", url},
                        absl::Seconds(20));
    return r.ok() ? *r : r.status().ToString();
  }

  std::string MetricsText() {
    const std::string out = dir_ + "/metrics.txt";
    if (Curl(absl::StrCat("http://127.0.0.1:", metrics_port_, "/metrics"), out) != "200") return "";
    return ReadFile(out).value_or("");
  }

  std::unique_ptr<grpc::ClientReader<v1::ArtifactChunk>> Fetch(v1::ArtifactService::Stub& stub,
                                                               grpc::ClientContext* ctx) {
    v1::FetchArtifactRequest req;
    req.mutable_source()->set_kind("GitRepository");
    req.mutable_source()->set_namespace_("flux-system");
    req.mutable_source()->set_name("app");
    req.set_digest(digest_);
    req.set_chunk_size(1 << 20);
    return stub.FetchArtifact(ctx, req);
  }

  std::string dir_;
  std::unique_ptr<Subprocess> proc_;
  int grpc_port_ = 0, http_port_ = 0, metrics_port_ = 0, health_port_ = 0;
  std::string url_, digest_;
};

// Issue 17, item 6: 16 trickling connections used to block the artifact
// server and 8 the probes and /metrics, for ever.
TEST_F(SlowClientsTest, ProbesMetricsAndArtifactsAnswerWhileSlowClientsHoldEveryConnection) {
  ASSERT_NO_FATAL_FAILURE(
      Start({"--http-read-header-timeout=60s", "--storage-max-connections=8",
             "--storage-max-connections-per-client=4", "--endpoints-max-connections=4"}));
  SlowClients slow(absl::Seconds(90));
  for (int port : {http_port_, health_port_, metrics_port_}) {
    ASSERT_NO_FATAL_FAILURE(slow.Open(8, "127.0.0.2", port));
    ASSERT_NO_FATAL_FAILURE(slow.Open(8, "127.0.0.3", port));
  }
  slow.Start();
  // Every bound is full of slow clients: the artifact server keeps 4 per
  // address and refuses the rest; each endpoint port keeps 4 (later ones
  // evict earlier ones).
  ASSERT_TRUE(slow.WaitClosed(http_port_, 8, absl::Seconds(30))) << slow.Closed(http_port_);
  ASSERT_TRUE(slow.WaitClosed(health_port_, 12, absl::Seconds(30))) << slow.Closed(health_port_);
  ASSERT_TRUE(slow.WaitClosed(metrics_port_, 12, absl::Seconds(30))) << slow.Closed(metrics_port_);
  EXPECT_EQ(slow.Closed(http_port_), 8);
  EXPECT_EQ(slow.Closed(health_port_), 12);
  EXPECT_EQ(slow.Closed(metrics_port_), 12);

  // A healthy client is served at once (the header deadline is 60 s away).
  EXPECT_EQ(Curl(absl::StrCat("http://127.0.0.1:", health_port_, "/healthz")), "200");
  EXPECT_EQ(Curl(absl::StrCat("http://127.0.0.1:", health_port_, "/readyz")), "200");
  const std::string metrics = MetricsText();
  EXPECT_TRUE(absl::StrContains(metrics, "gitops_http_connections_closed_total")) << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, "reason=\"evicted\"")) << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, "reason=\"per_client_limit\"")) << metrics;
  const std::string out = dir_ + "/artifact.tar.gz";
  ASSERT_NE(url_.find("127.0.0.1"), std::string::npos) << url_;
  EXPECT_EQ(Curl(url_, out), "200");
  EXPECT_EQ(common::Sha256File(out).value_or(""), digest_);
  // The slow clients were still there: no timeout closed them.
  EXPECT_LE(slow.Closed(http_port_), 9);
}

TEST_F(SlowClientsTest, TricklingClientsAreCutAtTheHeaderDeadline) {
  ASSERT_NO_FATAL_FAILURE(Start({"--http-read-header-timeout=1s"}));
  SlowClients slow(absl::Seconds(60));
  for (int port : {http_port_, health_port_, metrics_port_}) {
    ASSERT_NO_FATAL_FAILURE(slow.Open(4, "127.0.0.2", port));
  }
  // One that sends nothing at all.
  const absl::Time silent_opened = absl::Now();  // before connecting, as above
  const int silent = ConnectFrom("127.0.0.4", health_port_);
  ASSERT_GE(silent, 0);
  slow.Start();
  // A byte every 100 ms resets a per-recv timeout, not the deadline.
  for (int port : {http_port_, health_port_, metrics_port_}) {
    EXPECT_TRUE(slow.WaitClosed(port, 4, absl::Seconds(20)))
        << "port " << port << ": " << slow.Closed(port) << " of 4 closed";
  }
  EXPECT_GE(slow.ShortestLife(), absl::Seconds(1));
  pollfd p{silent, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 20000), 1);
  char c;
  EXPECT_LE(recv(silent, &c, 1, 0), 0);  // closed, nothing answered
  EXPECT_GE(absl::Now() - silent_opened, absl::Seconds(1));
  close(silent);
  const std::string metrics = MetricsText();
  EXPECT_TRUE(absl::StrContains(metrics, "reason=\"read_header_timeout\"")) << metrics;
  // And the server still serves.
  EXPECT_EQ(Curl(absl::StrCat("http://127.0.0.1:", health_port_, "/healthz")), "200");
}

// Issue 17, item 7: streams past --grpc-max-streams are refused clearly.
TEST_F(SlowClientsTest, GrpcStreamsPastTheBoundAreRefused) {
  ASSERT_NO_FATAL_FAILURE(Start({"--grpc-max-streams=4"}, kFetchBytes));
  auto channel = NewChannel(grpc_port_);
  auto stub = v1::ArtifactService::NewStub(channel);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::ArtifactChunk>>> held;
  for (int i = 0; i < 4; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    held.push_back(Fetch(*stub, contexts.back().get()));
    v1::ArtifactChunk first;
    ASSERT_TRUE(held.back()->Read(&first)) << "stream " << i;
    EXPECT_GE(first.total_size(), static_cast<int64_t>(kFetchBytes));
  }
  // The fifth stream, a fetch or a watch, is refused.
  {
    grpc::ClientContext ctx;
    auto reader = Fetch(*stub, &ctx);
    v1::ArtifactChunk chunk;
    EXPECT_FALSE(reader->Read(&chunk));
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), "--grpc-max-streams")) << s.error_message();
  }
  {
    grpc::ClientContext ctx;
    v1::WatchArtifactsRequest req;
    auto reader = stub->WatchArtifacts(&ctx, req);
    v1::ArtifactEvent event;
    EXPECT_FALSE(reader->Read(&event));
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  }
  // Short calls still work.
  {
    grpc::ClientContext ctx;
    v1::GetArtifactRequest req;
    req.mutable_source()->set_kind("GitRepository");
    req.mutable_source()->set_namespace_("flux-system");
    req.mutable_source()->set_name("app");
    v1::Artifact artifact;
    grpc::Status s = stub->GetArtifact(&ctx, req, &artifact);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(artifact.digest(), digest_);
  }
  // Once the held streams go, a new one is served whole.
  for (auto& ctx : contexts) ctx->TryCancel();
  for (auto& r : held) (void)r->Finish();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (true) {
    grpc::ClientContext ctx;
    auto reader = Fetch(*stub, &ctx);
    std::string data;
    v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) data += chunk.data();
    grpc::Status s = reader->Finish();
    if (s.ok()) {
      EXPECT_EQ(common::Sha256Digest(data), digest_);
      break;
    }
    ASSERT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    ASSERT_LT(absl::Now(), deadline) << "the cancelled streams were never released";
    absl::SleepFor(absl::Milliseconds(20));  // poll interval
  }
}

// Issue 17, item 7: 800 stalled readers took 1.7 GB and 853 threads, and the
// memory stayed after they left.
TEST_F(SlowClientsTest, StalledReadersStayBoundedAndAreEnded) {
  constexpr int kMaxStreams = 16;
  constexpr int kAttempts = 64;
  ASSERT_NO_FATAL_FAILURE(Start(
      {absl::StrCat("--grpc-max-streams=", kMaxStreams), "--grpc-write-timeout=3s"}, kFetchBytes));
  const ProcStatus before = ReadProcStatus(proc_->pid());
  ASSERT_GT(before.threads, 0);

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::ArtifactService::Stub>> stubs;
  for (int i = 0; i < 4; ++i) {
    channels.push_back(NewChannel(grpc_port_));
    stubs.push_back(v1::ArtifactService::NewStub(channels.back()));
  }
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::ArtifactChunk>>> stalled;
  int refused = 0;
  for (int i = 0; i < kAttempts; ++i) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    auto reader = Fetch(*stubs[i % stubs.size()], ctx.get());
    v1::ArtifactChunk first;
    if (reader->Read(&first)) {
      // Admitted: read one chunk, then stop reading.
      contexts.push_back(std::move(ctx));
      stalled.push_back(std::move(reader));
    } else {
      grpc::Status s = reader->Finish();
      EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
      ++refused;
    }
  }
  EXPECT_EQ(static_cast<int>(stalled.size()), kMaxStreams);
  EXPECT_EQ(refused, kAttempts - kMaxStreams);

  // While they stall: one thread each at most (plus gRPC's pollers), and
  // at most about two 1 MiB chunks each.
  const ProcStatus during = ReadProcStatus(proc_->pid());
  std::printf("%d stalled streams: RSS %lld -> %lld KiB, threads %lld -> %lld\n", kMaxStreams,
              static_cast<long long>(before.rss_kb), static_cast<long long>(during.rss_kb),
              static_cast<long long>(before.threads), static_cast<long long>(during.threads));
  // (Unbounded, each of the 64 attempts held a thread.)
  EXPECT_LE(during.threads, before.threads + kMaxStreams + 16);
  if (!kSanitized) {
    EXPECT_LE(during.rss_kb - before.rss_kb, kMaxStreams * 4 * 1024);
  }

  // Past --grpc-write-timeout the server ends each of them, telling the
  // client where to resume.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    const std::string log = proc_->ReadLog();
    int ended = 0;
    for (size_t at = log.find("ended a stalled stream"); at != std::string::npos;
         at = log.find("ended a stalled stream", at + 1)) {
      ++ended;
    }
    if (ended >= kMaxStreams) break;
    ASSERT_LT(absl::Now(), deadline) << ended << " of " << kMaxStreams << " ended";
    absl::SleepFor(absl::Milliseconds(50));
  }
  for (auto& reader : stalled) {
    v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) {
    }
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), "--grpc-write-timeout")) << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), "offset=")) << s.error_message();
  }

  // Their threads and memory are given back.
  const absl::Time back_deadline = absl::Now() + absl::Seconds(30);
  ProcStatus after = ReadProcStatus(proc_->pid());
  while (after.threads > before.threads + 6 ||
         (!kSanitized && after.rss_kb > before.rss_kb + 16 * 1024)) {
    ASSERT_LT(absl::Now(), back_deadline)
        << "threads " << before.threads << " -> " << after.threads << ", RSS " << before.rss_kb
        << " -> " << after.rss_kb << " KiB";
    absl::SleepFor(absl::Milliseconds(200));
    after = ReadProcStatus(proc_->pid());
  }
  std::printf("after they left: RSS %lld KiB, threads %lld\n", static_cast<long long>(after.rss_kb),
              static_cast<long long>(after.threads));
}

}  // namespace
}  // namespace gitops
