// Shared fixture for the source-controller's Kubernetes-mode end-to-end
// tests: the test API server with the chart's CRDs, real kubectl, the real
// source-controller binary, Git repositories built with the git CLI, and
// helpers to wait on GitRepository conditions and Events. Not thread-safe.
#ifndef GITOPS_TEST_SOURCE_CONTROLLER_KUBE_KUBE_FIXTURE_H_
#define GITOPS_TEST_SOURCE_CONTROLLER_KUBE_KUBE_FIXTURE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test/apiserver/test_apiserver.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::testing {

// A bare repository (served by whatever server roots at its parent) and a
// work tree that commits and force-pushes to it.
class TestRepo {
 public:
  // Creates <root>/<name> (bare) and <root>/<name>-work on branch main.
  static absl::StatusOr<std::unique_ptr<TestRepo>> Create(const std::string& root,
                                                          const std::string& name);
  // Writes `files`, commits, pushes all branches and tags; returns the sha.
  absl::StatusOr<std::string> Commit(const std::string& message,
                                     const std::vector<std::pair<std::string, std::string>>& files);
  // Runs git in the work tree (e.g. {"rm", "-q", "big.bin"}).
  absl::StatusOr<std::string> Git(const std::vector<std::string>& args);
  absl::Status Push();
  GitWorkRepo& work() { return *work_; }
  const std::string& bare_path() const { return bare_; }

 private:
  TestRepo() = default;
  std::string bare_;
  std::unique_ptr<GitWorkRepo> work_;
};

// What a failed GitRepository must show.
struct ExpectedFailure {
  std::string condition;                   // the failure condition that is True: FetchFailed, ...
  std::string reason;                      // on it and on Ready=False; empty: not checked here
  std::vector<std::string> message_parts;  // each must appear in Ready's message
  bool stalled = false;                    // Stalled=True expected (else absent)
};

class SourceKubeTest : public ::testing::Test {
 protected:
  using json = nlohmann::json;
  static constexpr char kNamespace[] = "flux-system";

  void SetUp() override;
  void TearDown() override;

  // Starts build/bin/source-controller in Kubernetes mode with storage in
  // `storage` (default dir_/storage) and waits for its start line.
  void StartController(const std::vector<std::string>& extra_args = {},
                       const std::string& storage = "");
  void StopController();  // SIGTERM and a clean exit
  const std::string& storage() const { return storage_; }

  // Mounts a tmpfs of `bytes` at dir_/tmpfs (TearDown unmounts it); a
  // failed mount is a fatal test failure. Storage can then go in it.
  void MountTmpfs(int64_t bytes);
  const std::string& mount() const { return mount_; }
  // `mount -o remount,<mode>` of that tmpfs ("ro", "rw").
  void Remount(const std::string& mode);
  // Every file under storage()/gitrepository is a finished artifact
  // (<64 hex>.tar.gz), no checkout is left in storage()/.work, and no git
  // temp or lock file in storage()/.git-cache.
  void ExpectNothingHalfWritten();

  // Suspends `name` and waits until the controller has seen that, so no
  // reconcile of it is in flight (a key is never reconciled twice at once).
  void SuspendAndSettle(const std::string& name);
  void Resume(const std::string& name);

  // A Secret from literal values (multi-line values are fine).
  void CreateSecret(const std::string& name, const std::map<std::string, std::string>& data);
  static std::string GitRepositoryYaml(const std::string& name, const std::string& url,
                                       const std::string& spec_extra);
  // kubectl apply of one or more YAML documents; kubectl's output or error.
  absl::StatusOr<std::string> TryApply(const std::string& yaml);
  void Apply(const std::string& name, const std::string& url, const std::string& spec_extra);
  absl::StatusOr<std::string> Kubectl(const std::vector<std::string>& args) const {
    return api_->Kubectl(args);
  }
  // `kubectl annotate --overwrite reconcile.fluxcd.io/requestedAt=<value>`.
  void RequestReconcile(const std::string& name, const std::string& value);

  json Get(const std::string& name) const;
  // Polls `name` until `pred` holds; returns the last object seen (a test
  // failure with the object and the controller log on timeout).
  json WaitFor(const std::string& name, const std::function<bool(const json&)>& pred,
               absl::Duration timeout = absl::Seconds(20));
  json WaitForRevision(const std::string& name, const std::string& revision,
                       absl::Duration timeout = absl::Seconds(20));
  // Waits for Ready=False with `want.reason` (any reason when empty) and
  // checks the failure condition, Stalled and the message.
  json ExpectFailure(const std::string& name, const ExpectedFailure& want,
                     absl::Duration timeout = absl::Seconds(20));

  // The condition of `type`, or an empty object when there is none.
  static json Condition(const json& obj, const std::string& type);
  static bool HasCondition(const json& obj, const std::string& type) {
    return !Condition(obj, type).empty();
  }
  static std::string Str(const json& j, std::initializer_list<const char*> path);
  // The integer at `path`, or -1.
  static int64_t Int(const json& j, std::initializer_list<const char*> path);
  static std::string Revision(const json& obj) {
    return Str(obj, {"status", "artifact", "revision"});
  }
  static std::string ReadyMessage(const json& obj) {
    return Condition(obj, "Ready").value("message", "");
  }

  // Events whose involvedObject is GitRepository `name`.
  std::vector<json> EventsFor(const std::string& name) const;
  // Waits until a `type` Event with `reason` about `name` exists; returns it.
  json WaitForEvent(const std::string& name, const std::string& type, const std::string& reason,
                    absl::Duration timeout = absl::Seconds(10));
  // None of `secrets` appears in any GitRepository's status, in any Event,
  // or in any controller log of this test.
  void ExpectNoLeak(const std::vector<std::string>& secrets) const;
  // Every controller log of this test, concatenated.
  std::string ControllerLogs() const;

  // `kustomize-controller fetch` of `name`'s artifact into `out`.
  absl::StatusOr<std::string> Fetch(const std::string& name, const std::string& out) const;

  // The suite's repository, <dir_>/srv/repo.git (repo_).
  void CreateRepo();
  // nginx + git-http-backend serving <dir_>/srv without auth (http_); url_
  // is repo.git's URL on it.
  void StartHttp();

  std::string dir_;
  std::string storage_;
  std::string grpc_port_;
  std::unique_ptr<TestRepo> repo_;
  std::unique_ptr<GitHttpServer> http_;
  std::string url_;
  std::unique_ptr<TestApiServer> api_;
  std::unique_ptr<Subprocess> controller_;

 private:
  std::string mount_;
  int starts_ = 0;
  std::vector<std::string> logs_;
};

}  // namespace gitops::testing

#endif  // GITOPS_TEST_SOURCE_CONTROLLER_KUBE_KUBE_FIXTURE_H_
