// End to end without Kubernetes: a real git repository, the real
// source-controller in cluster-less mode, and the real kustomize-controller's
// watch and fetch commands, all as child processes on loopback.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "gtest/gtest.h"
#include "test/support/process.h"

namespace gitops {
namespace {

using testing::BinaryPath;
using testing::MakeTempDir;
using testing::PickFreePort;
using testing::ReadFile;
using testing::RemoveTree;
using testing::RunCommand;
using testing::Subprocess;
using testing::WriteFile;

int CountOccurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

class ArtifactFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("e2e-flow");
    remote_ = dir_ + "/remote.git";
    work_ = dir_ + "/work";
    ASSERT_TRUE(RunCommand({"git", "init", "-q", "--bare", "-b", "main", remote_}).ok());
    ASSERT_TRUE(RunCommand({"git", "init", "-q", "-b", "main", work_}).ok());
    for (auto kv : {std::pair<const char*, const char*>{"user.email", "e2e@example.com"},
                    {"user.name", "e2e"}}) {
      ASSERT_TRUE(RunCommand({"git", "-C", work_, "config", kv.first, kv.second}).ok());
    }
    ASSERT_TRUE(RunCommand({"git", "-C", work_, "remote", "add", "origin", remote_}).ok());
    grpc_port_ = PickFreePort();
  }
  void TearDown() override {
    for (auto* p : {&watch_, &source_}) p->reset();
    RemoveTree(dir_);
  }

  // Commits `files` (path -> content) and pushes; returns the commit SHA.
  std::string Commit(const std::map<std::string, std::string>& files, const std::string& message) {
    for (const auto& [path, content] : files)
      EXPECT_TRUE(WriteFile(work_ + "/" + path, content).ok());
    EXPECT_TRUE(RunCommand({"git", "-C", work_, "add", "-A"}).ok());
    EXPECT_TRUE(RunCommand({"git", "-C", work_, "commit", "-q", "-m", message}).ok());
    EXPECT_TRUE(RunCommand({"git", "-C", work_, "push", "-q", "origin", "main"}).ok());
    auto sha = RunCommand({"git", "-C", work_, "rev-parse", "HEAD"});
    EXPECT_TRUE(sha.ok());
    return std::string(absl::StripTrailingAsciiWhitespace(*sha));
  }

  void WriteSources(bool with_app) {
    std::string yaml = "# sources for the e2e test\n";
    if (with_app) {
      absl::StrAppend(&yaml,
                      "apiVersion: source.toolkit.fluxcd.io/v1\n"
                      "kind: GitRepository\n"
                      "metadata:\n  name: app\n  namespace: flux-system\n"
                      "spec:\n  interval: 1s\n  url: file://",
                      remote_, "\n  ref:\n    branch: main\n");
    }
    // Write-then-rename so the controller never reads half a file.
    ASSERT_TRUE(WriteFile(dir_ + "/sources.yaml.tmp", yaml).ok());
    std::filesystem::rename(dir_ + "/sources.yaml.tmp", dir_ + "/sources.yaml");
  }

  std::unique_ptr<Subprocess> StartSource() {
    auto proc = Subprocess::Start(
        {BinaryPath("source-controller"), "--sources-file=" + dir_ + "/sources.yaml",
         "--storage-path=" + dir_ + "/storage", absl::StrCat("--grpc-addr=127.0.0.1:", grpc_port_),
         "--storage-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0"},
        {}, dir_ + "/source.log");
    EXPECT_TRUE(proc.ok()) << proc.status();
    return std::move(*proc);
  }

  std::vector<std::string> ClientArgs(const std::string& command) {
    return {BinaryPath("kustomize-controller"), command,
            absl::StrCat("--source-addr=127.0.0.1:", grpc_port_)};
  }

  std::string dir_, remote_, work_;
  int grpc_port_ = 0;
  std::unique_ptr<Subprocess> source_, watch_;
};

TEST_F(ArtifactFlowTest, NewCommitReachesTheSubscriberAndItsBytesVerify) {
  std::string first =
      Commit({{"apps/app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n"},
              {"README.md", "hello\n"},
              {".sourceignore", "*.md\n"}},
             "first");
  WriteSources(true);
  source_ = StartSource();
  ASSERT_TRUE(
      source_->WaitForLog("stored artifact for revision 'main@sha1:" + first, absl::Seconds(60))
          .ok())
      << source_->ReadLog();

  auto watch = Subprocess::Start(ClientArgs("watch"), {}, dir_ + "/watch.log");
  ASSERT_TRUE(watch.ok());
  watch_ = std::move(*watch);
  ASSERT_TRUE(watch_->WaitForLog("\"revision\":\"main@sha1:" + first, absl::Seconds(30)).ok());
  ASSERT_TRUE(watch_->WaitForLog("\"type\":\"SYNCED\"", absl::Seconds(30)).ok());

  // Controller mode keeps a verified, extracted copy of every announced
  // artifact in its cache and reports ready once the stream is synced.
  auto controller = Subprocess::Start(
      {BinaryPath("kustomize-controller"), absl::StrCat("--source-addr=127.0.0.1:", grpc_port_),
       "--artifact-cache-path=" + dir_ + "/cache", "--grpc-addr=127.0.0.1:0",
       "--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0"},
      {}, dir_ + "/controller.log");
  ASSERT_TRUE(controller.ok());
  ASSERT_TRUE((*controller)->WaitForLog("\"msg\":\"artifact ready\"", absl::Seconds(30)).ok())
      << (*controller)->ReadLog();
  auto health_port =
      (*controller)
          ->WaitForLogField("kustomize-controller started", "health_port", absl::Seconds(5));
  ASSERT_TRUE(health_port.ok());
  auto readyz = RunCommand({"curl", "-sf", "http://127.0.0.1:" + *health_port + "/readyz"});
  EXPECT_TRUE(readyz.ok()) << readyz.status();

  // A new commit is noticed on the 1s interval and pushed to the subscriber.
  std::string second = Commit(
      {{"apps/app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app2\n"}}, "second");
  ASSERT_TRUE(watch_->WaitForLog("\"revision\":\"main@sha1:" + second, absl::Seconds(30)).ok())
      << watch_->ReadLog();

  // fetch: download, verify, extract; the tree is the commit minus ignored files.
  std::string out = dir_ + "/fetched";
  auto fetch = RunCommand({BinaryPath("kustomize-controller"), "fetch",
                           absl::StrCat("--source-addr=127.0.0.1:", grpc_port_),
                           "--namespace=flux-system", "--name=app", out});
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  EXPECT_NE(fetch->find("artifact fetched and verified"), std::string::npos);
  auto manifest = ReadFile(out + "/apps/app.yaml");
  ASSERT_TRUE(manifest.ok());
  EXPECT_NE(manifest->find("name: app2"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out + "/README.md"));  // .sourceignore
  EXPECT_FALSE(std::filesystem::exists(out + "/.git"));
  auto digest = common::Sha256File(out + ".tar.gz");
  ASSERT_TRUE(digest.ok());
  EXPECT_NE(watch_->ReadLog().find("\"digest\":\"" + *digest + "\""), std::string::npos);

  ASSERT_TRUE((*controller)->WaitForLog(second, absl::Seconds(30)).ok());
  (*controller)->Signal(SIGTERM);
  auto controller_code = (*controller)->Wait(absl::Seconds(20));
  ASSERT_TRUE(controller_code.ok());
  EXPECT_EQ(*controller_code, 0) << (*controller)->ReadLog();

  // Removing the source from the file deletes it and tells subscribers.
  WriteSources(false);
  ASSERT_TRUE(watch_->WaitForLog("\"type\":\"DELETED\"", absl::Seconds(30)).ok())
      << watch_->ReadLog();

  // SIGTERM: the source-controller ends the open watch stream with
  // UNAVAILABLE ("shutting down", so the client reconnects) and exits 0.
  source_->Signal(SIGTERM);
  auto source_code = source_->Wait(absl::Seconds(20));
  ASSERT_TRUE(source_code.ok());
  EXPECT_EQ(*source_code, 0) << source_->ReadLog();
  ASSERT_TRUE(watch_->WaitForLog("shutting down", absl::Seconds(10)).ok()) << watch_->ReadLog();
  EXPECT_NE(watch_->ReadLog().find("\"code\":\"14\""), std::string::npos) << watch_->ReadLog();
  watch_->Signal(SIGTERM);
  auto watch_code = watch_->Wait(absl::Seconds(20));
  ASSERT_TRUE(watch_code.ok());
  EXPECT_EQ(*watch_code, 0);
  EXPECT_NE(source_->ReadLog().find("\"msg\":\"stopped\""), std::string::npos);
}

TEST_F(ArtifactFlowTest, SourceRestartMidTransferResumesAndLosesNoEvent) {
  // 24 MiB of incompressible data makes a transfer we can interrupt.
  ASSERT_TRUE(RunCommand({"sh", "-c",
                          "mkdir -p " + work_ + "/blob && head -c 25165824 /dev/urandom > " +
                              work_ + "/blob/data.bin"})
                  .ok());
  std::string first = Commit({{"apps/app.yaml", "kind: ConfigMap\n"}}, "big");
  WriteSources(true);
  source_ = StartSource();
  ASSERT_TRUE(
      source_->WaitForLog("stored artifact for revision 'main@sha1:" + first, absl::Seconds(120))
          .ok())
      << source_->ReadLog();

  auto watch = Subprocess::Start(ClientArgs("watch"), {}, dir_ + "/watch.log");
  ASSERT_TRUE(watch.ok());
  watch_ = std::move(*watch);
  ASSERT_TRUE(watch_->WaitForLog("\"type\":\"SYNCED\"", absl::Seconds(30)).ok());

  // A throttled download (about 4 s), interrupted by killing the server.
  std::string out = dir_ + "/fetched";
  std::vector<std::string> args = ClientArgs("fetch");
  args.insert(args.end(), {"--namespace=flux-system", "--name=app",
                           "--max-bytes-per-second=6000000", "--fetch-timeout=2m", out});
  auto fetch = Subprocess::Start(args, {}, dir_ + "/fetch.log");
  ASSERT_TRUE(fetch.ok());
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (FileSize(out + ".tar.gz.part") < (4 << 20) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GE(FileSize(out + ".tar.gz.part"), 4 << 20);
  source_->Signal(SIGKILL);
  ASSERT_TRUE(source_->Wait(absl::Seconds(10)).ok());

  // While the server is down a commit lands: it must not be lost.
  std::string second = Commit({{"apps/app.yaml", "kind: ConfigMap # v2\n"}}, "while down");
  absl::SleepFor(absl::Milliseconds(500));
  source_ = StartSource();

  auto code = (*fetch)->Wait(absl::Seconds(120));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << (*fetch)->ReadLog();
  std::string fetch_log = (*fetch)->ReadLog();
  EXPECT_NE(fetch_log.find("resuming artifact download"), std::string::npos) << fetch_log;
  EXPECT_NE(fetch_log.find("artifact fetched and verified"), std::string::npos) << fetch_log;
  auto expected = common::Sha256File(work_ + "/blob/data.bin");
  auto got = common::Sha256File(out + "/blob/data.bin");
  ASSERT_TRUE(expected.ok() && got.ok());
  EXPECT_EQ(*got, *expected);

  // The watcher reconnects, gets the commit made while the server was down
  // exactly once, and does not see the old artifact again.
  ASSERT_TRUE(watch_->WaitForLog("\"revision\":\"main@sha1:" + second, absl::Seconds(60)).ok())
      << watch_->ReadLog();
  absl::SleepFor(absl::Seconds(2));
  std::string watch_log = watch_->ReadLog();
  EXPECT_EQ(CountOccurrences(watch_log, "\"revision\":\"main@sha1:" + first), 1) << watch_log;
  EXPECT_EQ(CountOccurrences(watch_log, "\"revision\":\"main@sha1:" + second), 1) << watch_log;
  EXPECT_NE(watch_log.find("reconnecting"), std::string::npos) << watch_log;
}

TEST_F(ArtifactFlowTest, OperationalEndpointsAndFlags) {
  WriteSources(false);
  auto proc = Subprocess::Start(
      {BinaryPath("source-controller"), "--sources-file=" + dir_ + "/sources.yaml",
       "--storage-path=" + dir_ + "/storage", "--grpc-addr=127.0.0.1:0",
       "--storage-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0"});
  ASSERT_TRUE(proc.ok());
  auto metrics =
      (*proc)->WaitForLogField("source-controller started", "metrics_port", absl::Seconds(30));
  auto health =
      (*proc)->WaitForLogField("source-controller started", "health_port", absl::Seconds(30));
  ASSERT_TRUE(metrics.ok() && health.ok());
  auto healthz = RunCommand({"curl", "-sf", "http://127.0.0.1:" + *health + "/healthz"});
  auto readyz = RunCommand({"curl", "-sf", "http://127.0.0.1:" + *health + "/readyz"});
  auto prom = RunCommand({"curl", "-sf", "http://127.0.0.1:" + *metrics + "/metrics"});
  ASSERT_TRUE(healthz.ok() && readyz.ok() && prom.ok());
  EXPECT_EQ(*healthz, "ok\n");
  EXPECT_NE(prom->find("# TYPE gotk_reconcile_duration_seconds histogram"), std::string::npos)
      << *prom;

  // Structured JSON logs: every line on stderr is one JSON object.
  for (absl::string_view line : absl::StrSplit((*proc)->ReadLog(), '\n', absl::SkipEmpty())) {
    EXPECT_TRUE(line.front() == '{' && line.back() == '}') << line;
  }
  auto help = RunCommand({BinaryPath("source-controller"), "--help"});
  // absl prints usage and exits 1 for --help; the text is what matters.
  std::string help_text = help.ok() ? *help : std::string(help.status().message());
  EXPECT_NE(help_text.find("--sources-file"), std::string::npos);
  EXPECT_NE(help_text.find("--storage-path"), std::string::npos);

  auto bad = RunCommand(
      {BinaryPath("source-controller"), "--sources-file=" + dir_ + "/missing.yaml",
       "--storage-path=" + dir_ + "/s2", "--grpc-addr=127.0.0.1:0", "--storage-addr=127.0.0.1:0",
       "--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cannot read sources file"), std::string::npos)
      << bad.status();
}

}  // namespace
}  // namespace gitops
