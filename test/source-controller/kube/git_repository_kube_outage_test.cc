// Outages around the source-controller binary (Kubernetes mode): its
// storage on a small tmpfs that fills up or turns read-only
// (StorageOperationFailed, nothing half-written left, recovery once there is
// room again; needs root to mount, a failed mount fails the test), and git
// servers that refuse connections or never answer (GitOperationFailed
// within spec.timeout while the other GitRepositories go on).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "test/source-controller/kube/kube_fixture.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kMiB = 1024 * 1024;

// `bytes` of incompressible data: git, the checkout and the tarball each
// hold about that much.
std::string RandomBytes(int64_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(static_cast<size_t>(bytes), '\0');
  for (size_t i = 0; i + 8 <= out.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  return out;
}

class GitRepositoryKubeOutageTest : public SourceKubeTest {
 protected:
  void SetUp() override {
    SourceKubeTest::SetUp();
    if (HasFatalFailure()) return;
    CreateRepo();
    StartHttp();
  }

  std::string Commit(const std::string& message,
                     const std::vector<std::pair<std::string, std::string>>& files) {
    auto sha = repo_->Commit(message, files);
    EXPECT_TRUE(sha.ok()) << sha.status();
    return sha.ok() ? *sha : "";
  }
};

// The git cache and the checkout of a 4 MiB incompressible file fit a
// 10 MiB storage, the 4 MiB tarball on top does not: the archive step fails
// with ENOSPC (Flux's condition: StorageOperationFailed).
TEST_F(GitRepositoryKubeOutageTest, DiskFullFailsArchiveLeavesNoPartialFileAndRecovers) {
  MountTmpfs(10 * kMiB);
  const std::string small = Commit("small", {{"apps/cm.yaml", "kind: ConfigMap\n"}});
  StartController({}, mount() + "/storage");
  Apply("small", url_, "  interval: 10m\n  ref:\n    branch: main\n");
  json before = WaitForRevision("small", "main@sha1:" + small);

  const std::string big = Commit("big", {{"data/big.bin", RandomBytes(4 * kMiB, 1)}});
  Apply("big", url_, "  interval: 10m\n  ref:\n    branch: main\n");
  json failed = ExpectFailure("big", {"StorageOperationFailed",
                                      "ArchiveOperationFailed",
                                      {"unable to archive artifact to storage", "No space left"}});
  EXPECT_FALSE(failed["status"].contains("artifact")) << failed.dump();
  EXPECT_FALSE(HasCondition(failed, "FetchFailed")) << failed.dump();
  // Retries run with backoff; between them nothing partial is left.
  SuspendAndSettle("big");
  ExpectNothingHalfWritten();
  // The neighbour on the same storage keeps its artifact, served as before.
  json after = Get("small");
  EXPECT_EQ(after["status"]["artifact"], before["status"]["artifact"]);
  EXPECT_EQ(Condition(after, "Ready").value("status", ""), "True");
  EXPECT_TRUE(Fetch("small", dir_ + "/small-fetched").ok());

  // A smaller commit (the big file removed) fits: Ready again.
  ASSERT_TRUE(repo_->Git({"rm", "-q", "data/big.bin"}).ok());
  const std::string smaller = Commit("drop big", {{"apps/cm.yaml", "kind: ConfigMap # 2\n"}});
  Resume("big");
  json recovered = WaitForRevision("big", "main@sha1:" + smaller, absl::Seconds(30));
  EXPECT_FALSE(HasCondition(recovered, "StorageOperationFailed")) << recovered.dump();
  EXPECT_TRUE(Fetch("big", dir_ + "/big-fetched").ok());
  ExpectNothingHalfWritten();
}

// Read-only storage: a new revision cannot be stored (StorageOperationFailed).
// A new object fails as in Flux, DirectoryCreationFailed. For an object that
// already has an artifact the reason is not asserted: Flux fails there on
// the artifact lock file (reason Failed, no StorageOperationFailed), this
// controller on its work dir under the storage (DirectoryCreationFailed).
TEST_F(GitRepositoryKubeOutageTest, ReadOnlyStorageFailsWithStorageOperationFailedAndRecovers) {
  MountTmpfs(16 * kMiB);
  const std::string c1 = Commit("one", {{"apps/cm.yaml", "kind: ConfigMap # 1\n"}});
  StartController({}, mount() + "/storage");
  Apply("app", url_, "  interval: 10m\n  ref:\n    branch: main\n");
  Apply("steady", url_, "  interval: 10m\n  ref:\n    branch: main\n");
  json app_before = WaitForRevision("app", "main@sha1:" + c1);
  json steady_before = WaitForRevision("steady", "main@sha1:" + c1);

  Remount("ro");
  const std::string c2 = Commit("two", {{"apps/cm.yaml", "kind: ConfigMap # 2\n"}});
  RequestReconcile("app", "while-read-only");
  json failed = ExpectFailure(
      "app", {"StorageOperationFailed", "", {"Read-only file system"}, /*stalled=*/false});
  // The stored artifact stays recorded and served.
  EXPECT_EQ(failed["status"]["artifact"], app_before["status"]["artifact"]);
  EXPECT_TRUE(Fetch("app", dir_ + "/app-fetched").ok());
  // A new object cannot be stored either.
  Apply("fresh", url_, "  interval: 10m\n  ref:\n    branch: main\n");
  ExpectFailure("fresh", {"StorageOperationFailed",
                          "DirectoryCreationFailed",
                          {"Read-only file system"},
                          /*stalled=*/false});
  // An object whose revision did not move needs no write and stays Ready.
  json steady = Get("steady");
  EXPECT_EQ(steady["status"]["artifact"], steady_before["status"]["artifact"]);
  EXPECT_EQ(Condition(steady, "Ready").value("status", ""), "True");

  Remount("rw");
  RequestReconcile("app", "writable-again");
  RequestReconcile("fresh", "writable-again");
  WaitForRevision("app", "main@sha1:" + c2, absl::Seconds(30));
  WaitForRevision("fresh", "main@sha1:" + c2, absl::Seconds(30));
  ExpectNothingHalfWritten();
}

TEST_F(GitRepositoryKubeOutageTest, UnreachableAndSilentServersDoNotBlockOthers) {
  const std::string first = Commit("first", {{"apps/cm.yaml", "kind: ConfigMap\n"}});
  auto silent = SilentTcpListener::Create();
  ASSERT_TRUE(silent.ok()) << silent.status();
  const int closed_port = PickFreePort();
  StartController();
  const std::string silent_url = absl::StrCat("http://127.0.0.1:", (*silent)->port(), "/repo.git");
  const absl::Time start = absl::Now();
  Apply("silent-2s", silent_url, "  interval: 1m\n  timeout: 2s\n");
  // Holds a worker for 20s while the others must go on. The proof is an
  // order of events, not a stopwatch: the others are done while it still
  // hangs (20s leaves room for a loaded CI machine).
  Apply("silent-20s", silent_url, "  interval: 1m\n  timeout: 20s\n");
  Apply("refused", absl::StrCat("http://127.0.0.1:", closed_port, "/repo.git"),
        "  interval: 1m\n  timeout: 5s\n");
  Apply("good", url_, "  interval: 1m\n  ref:\n    branch: main\n");

  WaitForRevision("good", "main@sha1:" + first);
  ExpectFailure("refused", {"FetchFailed",
                            "GitOperationFailed",
                            {absl::StrCat("127.0.0.1:", closed_port), "onnection refused"}});
  const absl::Duration others_done = absl::Now() - start;
  json timed_out =
      ExpectFailure("silent-2s", {"FetchFailed", "GitOperationFailed", {"timed out after 2s"}});
  const absl::Duration two_s_done = absl::Now() - start;
  // Both answered, and the 2s timeout fired, while silent-20s still hangs.
  json hanging = Get("silent-20s");
  EXPECT_FALSE(HasCondition(hanging, "FetchFailed")) << hanging.dump();
  ExpectFailure("silent-20s", {"FetchFailed", "GitOperationFailed", {"timed out after 20s"}},
                absl::Seconds(60));
  const absl::Duration twenty_s_done = absl::Now() - start;
  EXPECT_GE(two_s_done, absl::Seconds(2));
  EXPECT_GE(twenty_s_done, absl::Seconds(20)) << "spec.timeout was cut short";
  std::printf("good+refused answered after %s; silent-2s failed after %s, silent-20s after %s\n",
              absl::FormatDuration(others_done).c_str(), absl::FormatDuration(two_s_done).c_str(),
              absl::FormatDuration(twenty_s_done).c_str());
}

}  // namespace
}  // namespace gitops::testing
