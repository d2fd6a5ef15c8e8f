// The source-controller binary in Kubernetes mode, end to end: the test API
// server with the chart's CRDs, real kubectl, nginx + git http-backend with
// basic auth, and the kustomize-controller's gRPC fetch command.
#include <signal.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test/apiserver/test_apiserver.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops {
namespace {

using json = nlohmann::json;
using testing::BinaryPath;
using testing::GitHttpServer;
using testing::GitWorkRepo;
using testing::RunCommand;
using testing::Subprocess;
using testing::TestApiServer;

constexpr char kUser[] = "flux";
constexpr char kPassword[] = "s3cr3t-pass";

class GitRepositoryKubeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("source-kube");
    auto api = TestApiServer::StartWithCrds();
    ASSERT_TRUE(api.ok()) << api.status();
    api_ = std::move(*api);
    ASSERT_TRUE(api_->Kubectl({"create", "namespace", "flux-system"}).ok());
    auto secret = api_->Kubectl({"create", "secret", "generic", "git-auth", "-n", "flux-system",
                                 absl::StrCat("--from-literal=username=", kUser),
                                 absl::StrCat("--from-literal=password=", kPassword)});
    ASSERT_TRUE(secret.ok()) << secret.status();

    // A repository behind basic auth.
    ASSERT_TRUE(testing::InitBareRepo(dir_ + "/srv/repo.git").ok());
    auto work = GitWorkRepo::Create(dir_ + "/work", "main");
    ASSERT_TRUE(work.ok()) << work.status();
    work_ = std::make_unique<GitWorkRepo>(std::move(*work));
    first_ = Commit("first", "app-v1");
    GitHttpServer::Options options;
    options.username = kUser;
    options.password = kPassword;
    auto http = GitHttpServer::Start(dir_ + "/srv", options);
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = std::move(*http);

    StartController();
  }

  void TearDown() override {
    controller_.reset();
    http_.reset();
    api_.reset();
    testing::RemoveTree(dir_);
  }

  void StartController(const std::vector<std::string>& extra_args = {},
                       const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = {BinaryPath("source-controller"),
                                     "--kubeconfig=" + api_->kubeconfig_path(),
                                     "--storage-path=" + dir_ + "/storage",
                                     "--grpc-addr=127.0.0.1:0",
                                     "--storage-addr=127.0.0.1:0",
                                     "--storage-adv-addr=127.0.0.1:1",
                                     "--metrics-addr=127.0.0.1:0",
                                     "--health-addr=127.0.0.1:0",
                                     "--concurrent=4"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto proc =
        Subprocess::Start(args, env, absl::StrCat(dir_, "/source-controller-", ++starts_, ".log"));
    ASSERT_TRUE(proc.ok()) << proc.status();
    controller_ = std::move(*proc);
    auto port =
        controller_->WaitForLogField("source-controller started", "grpc_port", absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status() << controller_->ReadLog();
    grpc_port_ = *port;
  }

  // Commits one manifest with `value` and pushes; returns the sha.
  std::string Commit(const std::string& message, const std::string& value) {
    auto sha = work_->Commit(
        message, {{"apps/cm.yaml", absl::StrCat("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                "  name: app\ndata:\n  v: ",
                                                value, "\n")}});
    EXPECT_TRUE(sha.ok()) << sha.status();
    EXPECT_TRUE(work_->PushAll(dir_ + "/srv/repo.git").ok());
    return sha.ok() ? *sha : "";
  }

  void Apply(const std::string& name, const std::string& spec_extra) {
    std::string yaml = absl::StrCat(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        "metadata:\n  name: ",
        name, "\n  namespace: flux-system\nspec:\n  url: ", http_->Url("repo.git"), "\n",
        spec_extra);
    auto path = api_->WriteManifest(name + ".yaml", yaml);
    ASSERT_TRUE(path.ok());
    auto applied = api_->Kubectl({"apply", "-f", *path});
    ASSERT_TRUE(applied.ok()) << applied.status();
  }

  json Get(const std::string& name) {
    auto out = api_->Kubectl({"get", "gitrepository", name, "-n", "flux-system", "-o", "json"});
    if (!out.ok()) return json();
    return json::parse(*out, nullptr, false);
  }

  static std::string Str(const json& j, std::initializer_list<const char*> path) {
    const json* at = &j;
    for (const char* p : path) {
      if (!at->is_object() || !at->contains(p)) return "";
      at = &(*at)[p];
    }
    return at->is_string() ? at->get<std::string>() : "";
  }
  static json Condition(const json& obj, const std::string& type) {
    if (!obj.contains("status") || !obj["status"].contains("conditions")) return json();
    for (const auto& c : obj["status"]["conditions"]) {
      if (c.value("type", "") == type) return c;
    }
    return json();
  }

  // Polls `name` until `pred` holds; returns the last object seen.
  json WaitFor(const std::string& name, const std::function<bool(const json&)>& pred,
               absl::Duration timeout = absl::Seconds(20)) {
    absl::Time end = absl::Now() + timeout;
    json obj;
    while (absl::Now() < end) {
      obj = Get(name);
      if (pred(obj)) return obj;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << "timed out waiting on gitrepository/" << name << ": " << obj.dump()
                  << "\ncontroller log:\n"
                  << controller_->ReadLog();
    return obj;
  }

  std::string Revision(const json& obj) { return Str(obj, {"status", "artifact", "revision"}); }

  std::string Events() {
    auto out = api_->Kubectl({"get", "events", "-n", "flux-system", "-o", "json"});
    return out.ok() ? *out : "";
  }

  std::vector<std::string> FetchArgs(const std::string& name, const std::string& out) {
    return {BinaryPath("kustomize-controller"),
            "fetch",
            absl::StrCat("--source-addr=127.0.0.1:", grpc_port_),
            "--namespace=flux-system",
            "--name=" + name,
            out};
  }

  std::string dir_, first_, grpc_port_;
  int starts_ = 0;
  std::unique_ptr<TestApiServer> api_;
  std::unique_ptr<GitWorkRepo> work_;
  std::unique_ptr<GitHttpServer> http_;
  std::unique_ptr<Subprocess> controller_;
};

TEST_F(GitRepositoryKubeTest, ReadyArtifactServedOverGrpcFollowsCommitsAndIsDeleted) {
  Apply("app", "  interval: 10m\n  ref:\n    branch: main\n  secretRef:\n    name: git-auth\n");
  auto waited = api_->Kubectl(
      {"wait", "--for=condition=Ready", "gitrepository/app", "-n", "flux-system", "--timeout=30s"});
  ASSERT_TRUE(waited.ok()) << waited.status() << controller_->ReadLog();

  json obj = Get("app");
  EXPECT_EQ(Revision(obj), "main@sha1:" + first_);
  const std::string digest = Str(obj, {"status", "artifact", "digest"});
  EXPECT_EQ(digest.rfind("sha256:", 0), 0u) << obj.dump();
  EXPECT_EQ(obj["metadata"]["finalizers"], json::array({"finalizers.fluxcd.io"}));
  EXPECT_EQ(obj["status"].value("observedGeneration", -1), 1);
  EXPECT_EQ(Condition(obj, "Ready").value("reason", ""), "Succeeded");
  EXPECT_EQ(Condition(obj, "ArtifactInStorage").value("status", ""), "True");
  EXPECT_FALSE(obj["status"].contains("observedSpecHash"));
  EXPECT_EQ(Str(obj, {"status", "artifact", "url"}).rfind("http://127.0.0.1:1/", 0), 0u);

  // The gRPC service serves the artifact the API shows, byte for byte.
  const std::string out = dir_ + "/fetched";
  auto fetched = RunCommand(FetchArgs("app", out));
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  auto fetched_digest = common::Sha256File(out + ".tar.gz");
  ASSERT_TRUE(fetched_digest.ok());
  EXPECT_EQ(*fetched_digest, digest);
  auto manifest = testing::ReadFile(out + "/apps/cm.yaml");
  ASSERT_TRUE(manifest.ok());
  EXPECT_NE(manifest->find("app-v1"), std::string::npos);
  EXPECT_NE(Events().find("\"NewArtifact\""), std::string::npos);

  // A new commit: on the interval for a 1s source, at once on requestedAt
  // for the 10m one.
  Apply("poll", "  interval: 1s\n  ref:\n    branch: main\n  secretRef:\n    name: git-auth\n");
  WaitFor("poll", [&](const json& o) { return Revision(o) == "main@sha1:" + first_; });
  const std::string second = Commit("second", "app-v2");
  WaitFor("poll", [&](const json& o) { return Revision(o) == "main@sha1:" + second; });
  EXPECT_EQ(Revision(Get("app")), "main@sha1:" + first_);
  const std::string requested = "2026-01-01T00:00:00.000Z";
  ASSERT_TRUE(api_->Kubectl({"annotate", "--overwrite", "gitrepository/app", "-n", "flux-system",
                             "reconcile.fluxcd.io/requestedAt=" + requested})
                  .ok());
  obj = WaitFor("app", [&](const json& o) {
    return Str(o, {"status", "lastHandledReconcileAt"}) == requested;
  });
  EXPECT_EQ(Revision(obj), "main@sha1:" + second);
  EXPECT_NE(Str(obj, {"status", "artifact", "digest"}), digest);

  // A restart announces the stored artifacts from status, without a refetch,
  // and its first reconcile leaves the artifact as it was.
  // A GitRepository deleted while no controller runs (its finalizer
  // stripped by hand) has its artifacts collected on start.
  const json artifact_before = obj["status"]["artifact"];
  controller_->Signal(SIGTERM);
  auto code = controller_->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << controller_->ReadLog();
  const std::string poll_dir = dir_ + "/storage/gitrepository/flux-system/poll";
  EXPECT_TRUE(std::filesystem::exists(poll_dir));
  ASSERT_TRUE(
      api_->Kubectl({"delete", "gitrepository", "poll", "-n", "flux-system", "--wait=false"}).ok());
  ASSERT_TRUE(api_->Kubectl({"patch", "gitrepository", "poll", "-n", "flux-system", "--type",
                             "json", "-p", R"([{"op":"remove","path":"/metadata/finalizers"}])"})
                  .ok());
  StartController();
  auto restored = controller_->WaitForLogField("GitRepository cache synced", "restored_artifacts",
                                               absl::Seconds(20));
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored, "1") << controller_->ReadLog();
  EXPECT_FALSE(std::filesystem::exists(poll_dir));
  auto metrics_port =
      controller_->WaitForLogField("source-controller started", "metrics_port", absl::Seconds(5));
  ASSERT_TRUE(metrics_port.ok());
  absl::Time end = absl::Now() + absl::Seconds(20);
  bool reconciled = false;
  while (!reconciled && absl::Now() < end) {
    auto metrics = RunCommand({"curl", "-sf", "http://127.0.0.1:" + *metrics_port + "/metrics"});
    reconciled = metrics.ok() && absl::StrContains(*metrics,
                                                   "gotk_reconcile_duration_seconds_count{"
                                                   "kind=\"GitRepository\",name=\"app\"");
    if (!reconciled) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(reconciled) << controller_->ReadLog();
  EXPECT_EQ(Get("app")["status"]["artifact"], artifact_before);

  // Deletion: the finalizer removes the artifacts, then releases the object.
  const std::string artifact_dir = dir_ + "/storage/gitrepository/flux-system/app";
  EXPECT_TRUE(std::filesystem::exists(artifact_dir));
  auto deleted = api_->Kubectl(
      {"delete", "gitrepository", "app", "-n", "flux-system", "--wait", "--timeout=30s"});
  ASSERT_TRUE(deleted.ok()) << deleted.status() << controller_->ReadLog();
  EXPECT_FALSE(api_->Kubectl({"get", "gitrepository", "app", "-n", "flux-system"}).ok());
  EXPECT_FALSE(std::filesystem::exists(artifact_dir));
  EXPECT_FALSE(RunCommand(FetchArgs("app", dir_ + "/gone")).ok());
  EXPECT_NE(controller_->ReadLog().find("artifacts deleted and finalizer removed"),
            std::string::npos);
}

TEST_F(GitRepositoryKubeTest, FailuresAreReportedWithFluxReasons) {
  // An unknown branch.
  Apply("nobranch",
        "  interval: 10m\n  ref:\n    branch: nope\n  secretRef:\n    name: git-auth\n");
  // A Secret that does not exist.
  Apply("nosecret", "  interval: 10m\n  ref:\n    branch: main\n  secretRef:\n    name: missing\n");
  // Suspended from the start: never reconciled.
  Apply("suspended",
        "  interval: 1s\n  suspend: true\n  ref:\n    branch: main\n"
        "  secretRef:\n    name: git-auth\n");

  // Both fail and are retried with backoff. With no artifact to serve, each
  // try first marks Ready Unknown ("building artifact"), as Flux does, so
  // wait for the failure itself rather than for one moment of Ready=False.
  auto failed_with = [](const std::string& reason) {
    return [reason](const json& o) {
      const json ready = Condition(o, "Ready");
      return ready.value("status", "") == "False" && ready.value("reason", "") == reason;
    };
  };
  json nobranch = WaitFor("nobranch", failed_with("GitOperationFailed"));
  EXPECT_EQ(Condition(nobranch, "FetchFailed").value("status", ""), "True");
  EXPECT_NE(Condition(nobranch, "Ready").value("message", "").find("nope"), std::string::npos);
  EXPECT_FALSE(nobranch["status"].contains("artifact"));

  json nosecret = WaitFor("nosecret", failed_with("AuthenticationFailed"));
  EXPECT_EQ(Condition(nosecret, "Ready").value("message", ""),
            "failed to get secret 'flux-system/missing': secrets \"missing\" not found");

  std::string events = Events();
  EXPECT_NE(events.find("\"GitOperationFailed\""), std::string::npos);
  EXPECT_NE(events.find("\"AuthenticationFailed\""), std::string::npos);
  EXPECT_EQ(events.find(kPassword), std::string::npos);

  // Creating the Secret lets the retry (backoff) succeed.
  ASSERT_TRUE(api_->Kubectl({"create", "secret", "generic", "missing", "-n", "flux-system",
                             absl::StrCat("--from-literal=username=", kUser),
                             absl::StrCat("--from-literal=password=", kPassword)})
                  .ok());
  WaitFor("nosecret", [&](const json& o) { return Revision(o) == "main@sha1:" + first_; });

  // Fixing the branch (a spec change) runs at once.
  ASSERT_TRUE(api_->Kubectl({"patch", "gitrepository", "nobranch", "-n", "flux-system", "--type",
                             "merge", "-p", R"({"spec":{"ref":{"branch":"main"}}})"})
                  .ok());
  json fixed =
      WaitFor("nobranch", [&](const json& o) { return Revision(o) == "main@sha1:" + first_; });
  EXPECT_EQ(fixed["status"].value("observedGeneration", -1), 2);
  EXPECT_TRUE(Condition(fixed, "FetchFailed").is_null()) << fixed.dump();

  // The suspended object got its finalizer but no status from a reconcile.
  json suspended = Get("suspended");
  EXPECT_FALSE(suspended["status"].contains("artifact")) << suspended.dump();
  EXPECT_TRUE(Condition(suspended, "Ready").is_null());
  // Resuming (a spec change) reconciles it.
  ASSERT_TRUE(api_->Kubectl({"patch", "gitrepository", "suspended", "-n", "flux-system", "--type",
                             "merge", "-p", R"({"spec":{"suspend":false}})"})
                  .ok());
  WaitFor("suspended", [&](const json& o) { return !Revision(o).empty(); });
}

TEST_F(GitRepositoryKubeTest, LeaderElectionAndSingleNamespaceWatch) {
  controller_.reset();
  StartController({"--enable-leader-election", "--watch-all-namespaces=false"},
                  {"RUNTIME_NAMESPACE=flux-system"});
  Apply("app", "  interval: 10m\n  ref:\n    branch: main\n  secretRef:\n    name: git-auth\n");
  auto other = api_->WriteManifest(
      "other.yaml", absl::StrCat("apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
                                 "metadata:\n  name: other\n  namespace: default\nspec:\n"
                                 "  interval: 1s\n  url: ",
                                 http_->Url("repo.git"), "\n"));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(api_->Kubectl({"apply", "-f", *other}).ok());

  WaitFor("app", [&](const json& o) { return Revision(o) == "main@sha1:" + first_; });
  auto holder = api_->Kubectl({"get", "lease", "source-controller-leader-election", "-n",
                               "flux-system", "-o", "jsonpath={.spec.holderIdentity}"});
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_FALSE(holder->empty());

  // Outside the watched namespace: never touched (no finalizer, no status).
  absl::SleepFor(absl::Milliseconds(500));
  auto untouched = api_->Kubectl({"get", "gitrepository", "other", "-n", "default", "-o", "json"});
  ASSERT_TRUE(untouched.ok());
  json o = json::parse(*untouched, nullptr, false);
  EXPECT_FALSE(o["metadata"].contains("finalizers")) << o.dump();
  EXPECT_TRUE(Condition(o, "Ready").is_null()) << o.dump();

  // SIGTERM releases the lease and exits cleanly.
  controller_->Signal(SIGTERM);
  auto code = controller_->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << controller_->ReadLog();
}

}  // namespace
}  // namespace gitops
