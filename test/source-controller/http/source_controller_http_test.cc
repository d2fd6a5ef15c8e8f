// The real source-controller binary (cluster-less mode) serving its artifacts
// over plain HTTP: the URL it records in status downloads with curl, and the
// --storage-addr / --storage-adv-addr / --artifact-max-size /
// --interval-jitter-percentage flags behave as documented.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "common/yaml/yaml.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test/support/process.h"

namespace gitops {
namespace {

using testing::BinaryPath;
using testing::MakeTempDir;
using testing::ReadFile;
using testing::RemoveTree;
using testing::RunCommand;
using testing::Subprocess;
using testing::WriteFile;

class SourceControllerHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("sc-http");
    const std::string remote = dir_ + "/remote.git", work = dir_ + "/work";
    ASSERT_TRUE(RunCommand({"git", "init", "-q", "--bare", "-b", "main", remote}).ok());
    ASSERT_TRUE(RunCommand({"git", "init", "-q", "-b", "main", work}).ok());
    ASSERT_TRUE(WriteFile(work + "/apps/app.yaml",
                          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n")
                    .ok());
    ASSERT_TRUE(RunCommand({"git", "-C", work, "add", "-A"}).ok());
    ASSERT_TRUE(RunCommand({"git", "-C", work, "-c", "user.email=t@example.com", "-c",
                            "user.name=t", "commit", "-q", "-m", "first"})
                    .ok());
    ASSERT_TRUE(RunCommand({"git", "-C", work, "push", "-q", remote, "main"}).ok());
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

  std::vector<std::string> Args(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {
        BinaryPath("source-controller"),       "--sources-file=" + dir_ + "/sources.yaml",
        "--storage-path=" + dir_ + "/storage", "--grpc-addr=127.0.0.1:0",
        "--metrics-addr=127.0.0.1:0",          "--health-addr=127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // Starts the controller; returns the "source-controller started" line's
  // `field`.
  std::string Start(const std::vector<std::string>& extra, absl::string_view field) {
    auto proc = Subprocess::Start(Args(extra), {}, dir_ + "/source.log");
    EXPECT_TRUE(proc.ok()) << proc.status();
    if (!proc.ok()) return "";
    proc_ = std::move(*proc);
    auto value = proc_->WaitForLogField("source-controller started", field, absl::Seconds(20));
    EXPECT_TRUE(value.ok()) << value.status() << proc_->ReadLog();
    return value.value_or("");
  }

  // status.artifact of the persisted state, once the artifact is stored.
  nlohmann::json WaitForArtifact() {
    const std::string state = dir_ + "/storage/.state/flux-system/app.json";
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      auto text = ReadFile(state);
      if (text.ok()) {
        auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
        if (!j.is_discarded() && !common::StringAt(j, {"status", "artifact", "url"}).empty()) {
          return j["status"]["artifact"];
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "no artifact in " << state << "\n" << proc_->ReadLog();
    return nlohmann::json::object();
  }

  std::string dir_;
  std::unique_ptr<Subprocess> proc_;
};

TEST_F(SourceControllerHttpTest, ArtifactUrlDownloadsWithCurl) {
  const std::string port = Start(
      {"--storage-addr=127.0.0.1:0", "--artifact-max-size=64Mi", "--interval-jitter-percentage=10"},
      "http_port");
  ASSERT_FALSE(port.empty());
  EXPECT_TRUE(
      absl::StrContains(proc_->ReadLog(), "\"storage_adv_addr\":\"127.0.0.1:" + port + "\""))
      << proc_->ReadLog();
  EXPECT_TRUE(absl::StrContains(proc_->ReadLog(), "\"artifact_max_size\":\"64Mi\""));

  nlohmann::json artifact = WaitForArtifact();
  const std::string url = common::StringField(artifact, "url");
  const std::string path = common::StringField(artifact, "path");
  const std::string digest = common::StringField(artifact, "digest");
  EXPECT_EQ(url, absl::StrCat("http://127.0.0.1:", port, "/", path));
  EXPECT_TRUE(absl::StartsWith(path, "gitrepository/flux-system/app/")) << path;

  const std::string out = dir_ + "/artifact.tar.gz";
  auto headers = RunCommand({"curl", "-sS", "--fail", "-D", "-", "-o", out, url});
  ASSERT_TRUE(headers.ok()) << headers.status();
  EXPECT_TRUE(absl::StrContains(*headers, "Content-Type: application/x-gzip")) << *headers;
  EXPECT_EQ(common::Sha256File(out).value_or(""), digest);
  auto listing = RunCommand({"tar", "-tzf", out});
  ASSERT_TRUE(listing.ok()) << listing.status();
  EXPECT_TRUE(absl::StrContains(*listing, "apps/app.yaml")) << *listing;

  // Storage internals stay private.
  auto state =
      RunCommand({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                  absl::StrCat("http://127.0.0.1:", port, "/.state/flux-system/app.json")});
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, "404");

  // SIGTERM stops both servers and exits 0.
  proc_->Signal(SIGTERM);
  auto code = proc_->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << proc_->ReadLog();
  EXPECT_FALSE(RunCommand({"curl", "-sS", "--max-time", "5", url}).ok());
}

TEST_F(SourceControllerHttpTest, AdvertisedAddressFollowsFlux) {
  // An empty listen host is advertised as localhost, with the bound port.
  const std::string port = Start({"--storage-addr=:0"}, "http_port");
  ASSERT_FALSE(port.empty());
  nlohmann::json artifact = WaitForArtifact();
  const std::string url = common::StringField(artifact, "url");
  EXPECT_TRUE(absl::StartsWith(url, absl::StrCat("http://localhost:", port, "/gitrepository/")))
      << url;
  auto code = RunCommand({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url});
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, "200");
  proc_.reset();

  // An explicit --storage-adv-addr is used as given: a Service name, no port.
  RemoveTree(dir_ + "/storage");
  Start({"--storage-addr=127.0.0.1:0",
         "--storage-adv-addr=source-controller.flux-system.svc.cluster.local."},
        "http_port");
  artifact = WaitForArtifact();
  EXPECT_EQ(common::StringField(artifact, "url"),
            "http://source-controller.flux-system.svc.cluster.local./" +
                common::StringField(artifact, "path"));
}

TEST_F(SourceControllerHttpTest, EmptyStorageAddrKeepsGrpcUrls) {
  const std::string http_port = Start({"--storage-addr="}, "http_port");
  EXPECT_EQ(http_port, "");
  auto grpc_port =
      proc_->WaitForLogField("source-controller started", "grpc_port", absl::Seconds(1));
  ASSERT_TRUE(grpc_port.ok());
  nlohmann::json artifact = WaitForArtifact();
  EXPECT_EQ(
      common::StringField(artifact, "url"),
      absl::StrCat("grpc://127.0.0.1:", *grpc_port, "/", common::StringField(artifact, "path")));
}

TEST_F(SourceControllerHttpTest, BadFlagValuesExitWithAClearError) {
  struct Case {
    std::string flag;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"--artifact-max-size=-1", "invalid --artifact-max-size"},
      {"--artifact-max-size=10MB", "invalid size \\\"10MB\\\""},
      {"--interval-jitter-percentage=100", "must be a non-negative value and less than 100"},
      {"--interval-jitter-percentage=-1", "invalid --interval-jitter-percentage"},
      {"--storage-addr=9080", "invalid --storage-addr"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.flag);
    auto proc = Subprocess::Start(Args({c.flag}), {}, dir_ + "/bad.log");
    ASSERT_TRUE(proc.ok());
    auto code = (*proc)->Wait(absl::Seconds(20));
    ASSERT_TRUE(code.ok());
    EXPECT_NE(*code, 0);
    EXPECT_TRUE(absl::StrContains((*proc)->ReadLog(), c.message)) << (*proc)->ReadLog();
  }

  // Both servers on one port: the HTTP server cannot bind it.
  const int port = testing::PickFreePort();
  auto proc = Subprocess::Start(Args({absl::StrCat("--grpc-addr=127.0.0.1:", port),
                                      absl::StrCat("--storage-addr=127.0.0.1:", port)}),
                                {}, dir_ + "/clash.log");
  ASSERT_TRUE(proc.ok());
  auto code = (*proc)->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 1);
  EXPECT_TRUE(absl::StrContains((*proc)->ReadLog(), "cannot start HTTP artifact server"))
      << (*proc)->ReadLog();
}

}  // namespace
}  // namespace gitops
