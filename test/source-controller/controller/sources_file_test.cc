// SourcesFileRunner (cluster-less mode) against real things: a sources file
// on disk polled every 50ms, git repositories over file:// and behind nginx +
// git http-backend with basic auth, the libgit2 fetcher (wrapped only to
// count calls), storage and persisted state in temp dirs, a real event hub.
#include "source-controller/controller/sources_file.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/source-controller/controller/counting_fetcher.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

namespace fs = std::filesystem;

constexpr char kNamespace[] = "flux-system";

// Waits up to `timeout` for `done`, polling every 10ms.
bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(15)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

v1::SourceReference Ref(const std::string& name) {
  v1::SourceReference ref;
  ref.set_kind(kGitRepositoryKind);
  ref.set_namespace_(kNamespace);
  ref.set_name(name);
  return ref;
}

// One GitRepository document; `extra_spec` lines go under spec (two spaces).
std::string GitRepoDoc(const std::string& name, const std::string& url, const std::string& branch,
                       const std::string& extra_spec = "") {
  return absl::StrCat("apiVersion: source.toolkit.fluxcd.io/v1\n", "kind: GitRepository\n",
                      "metadata:\n", "  name: ", name, "\n", "  namespace: ", kNamespace, "\n",
                      "spec:\n", "  interval: 1h\n", "  timeout: 20s\n", "  url: ", url, "\n",
                      "  ref:\n", "    branch: ", branch, "\n", extra_spec);
}

class SourcesFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = testing::MakeTempDir("sources-file-test");
    auto work = testing::GitWorkRepo::Create(tmp_ + "/work", "main");
    ASSERT_TRUE(work.ok()) << work.status();
    auto main = work->Commit("c1", {{"deploy/app.yaml", "kind: ConfigMap\n"}});
    ASSERT_TRUE(main.ok()) << main.status();
    main_commit_ = *main;
    ASSERT_TRUE(work->CheckoutNewBranch("dev").ok());
    auto dev = work->Commit("dev", {{"deploy/dev.yaml", "kind: Secret\n"}});
    ASSERT_TRUE(dev.ok()) << dev.status();
    dev_commit_ = *dev;
    ASSERT_TRUE(work->Checkout("main").ok());
    for (const char* name : {"a.git", "b.git"}) {
      const std::string bare = absl::StrCat(tmp_, "/srv/", name);
      ASSERT_TRUE(testing::InitBareRepo(bare).ok());
      ASSERT_TRUE(work->PushAll(bare).ok());
    }
    url_a_ = "file://" + tmp_ + "/srv/a.git";
    url_b_ = "file://" + tmp_ + "/srv/b.git";
    storage_root_ = tmp_ + "/storage";
    state_root_ = storage_root_ + "/.state";
    sources_path_ = tmp_ + "/sources.yaml";

    auto storage = ArtifactStorage::Create(storage_root_);
    ASSERT_TRUE(storage.ok()) << storage.status();
    storage_ = *std::move(storage);
    real_git_ = NewLibgit2Fetcher();
    git_ = std::make_unique<CountingFetcher>(real_git_.get());
    hub_ = std::make_unique<ArtifactEventHub>();
    reconciler_ = MakeReconciler(git_.get(), hub_.get());
  }

  void TearDown() override {
    if (!release_.HasBeenNotified()) release_.Notify();
    if (runner_) runner_->Stop();
    runner_.reset();
    testing::RemoveTree(tmp_);
  }

  std::unique_ptr<GitRepositoryReconciler> MakeReconciler(GitFetcher* git, ArtifactEventHub* hub) {
    ReconcilerOptions options;
    options.cache_root = storage_root_ + "/.git-cache";
    options.work_root = tmp_ + "/checkouts";
    options.advertised_address = "127.0.0.1:9090";
    return std::make_unique<GitRepositoryReconciler>(ReconcilerDeps{git, storage_.get(), hub},
                                                     options);
  }

  // Replaces the sources file atomically, so the 50ms poll never reads half
  // a file.
  void WriteSources(const std::string& content) {
    const std::string tmp = sources_path_ + ".writing";
    ASSERT_TRUE(testing::WriteFile(tmp, content).ok());
    fs::rename(tmp, sources_path_);
  }

  std::unique_ptr<SourcesFileRunner> NewRunner(GitRepositoryReconciler* reconciler,
                                               absl::Duration idle_tick = absl::Seconds(1)) {
    SourcesFileOptions options;
    options.idle_tick = idle_tick;
    options.path = sources_path_;
    options.state_root = state_root_;
    options.workers = 2;
    options.poll_interval = absl::Milliseconds(50);
    return std::make_unique<SourcesFileRunner>(options, reconciler);
  }

  void StartRunner(const std::string& content) {
    WriteSources(content);
    runner_ = NewRunner(reconciler_.get());
    absl::Status s = runner_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }

  std::optional<GitRepository> Get(const std::string& name) const {
    GitRepository repo;
    if (runner_ == nullptr || !runner_->Get(kNamespace, name, &repo)) return std::nullopt;
    return repo;
  }
  // The Ready condition of a source, or "" when absent.
  std::string ReadyStatus(const std::string& name) const {
    auto repo = Get(name);
    if (!repo) return "";
    const Condition* ready = FindCondition(repo->status.conditions, kReadyCondition);
    return ready == nullptr ? "" : ready->status;
  }
  // The stored revision once the source is Ready, else "".
  std::string ReadyRevision(const std::string& name) const {
    auto repo = Get(name);
    if (!repo || ReadyStatus(name) != "True" || !repo->status.artifact) return "";
    return repo->status.artifact->revision;
  }
  bool WaitReady(const std::string& name, const std::string& revision) {
    bool ok = WaitFor([&] { return ReadyRevision(name) == revision; });
    if (!ok) {
      auto repo = Get(name);
      const Condition* ready =
          repo ? FindCondition(repo->status.conditions, kReadyCondition) : nullptr;
      ADD_FAILURE() << name << " not Ready at " << revision << "; Ready: "
                    << (ready ? ready->status + " " + ready->reason + " " + ready->message
                              : std::string("none"));
    }
    return ok;
  }
  std::string StatePath(const std::string& name) const {
    return absl::StrCat(state_root_, "/", kNamespace, "/", name, ".json");
  }
  std::string ArtifactDir(const std::string& name) const {
    return absl::StrCat(storage_root_, "/gitrepository/", kNamespace, "/", name);
  }
  std::vector<v1::ArtifactEvent> AllEvents(ArtifactEventHub& hub) {
    uint64_t next = 0;
    auto events = hub.WaitForEvents(EventFilter{}, 0, absl::Now(), &next);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<v1::ArtifactEvent>{};
  }
  int CountEvents(ArtifactEventHub& hub, const std::string& name, v1::ArtifactEvent::Type type) {
    int n = 0;
    for (const auto& e : AllEvents(hub)) {
      if (e.type() == type && e.artifact().source().name() == name) ++n;
    }
    return n;
  }

  std::string tmp_, url_a_, url_b_, storage_root_, state_root_, sources_path_;
  std::string main_commit_, dev_commit_;
  std::unique_ptr<ArtifactStorage> storage_;
  std::unique_ptr<GitFetcher> real_git_;
  std::unique_ptr<CountingFetcher> git_;
  std::unique_ptr<ArtifactEventHub> hub_;
  std::unique_ptr<GitRepositoryReconciler> reconciler_;
  std::unique_ptr<SourcesFileRunner> runner_;
  // Released in TearDown too, so a test holding a reconcile never hangs Stop().
  absl::Notification release_;
};

TEST_F(SourcesFileTest, StartReconcilesEveryGitRepositoryInTheFile) {
  StartRunner(GitRepoDoc("a", url_a_, "main") + "---\n" + GitRepoDoc("b", url_b_, "dev"));
  EXPECT_EQ(runner_->size(), 2u);
  ASSERT_TRUE(WaitReady("a", "main@sha1:" + main_commit_));
  ASSERT_TRUE(WaitReady("b", "dev@sha1:" + dev_commit_));

  for (const char* name : {"a", "b"}) {
    SCOPED_TRACE(name);
    auto current = hub_->Current(Ref(name));
    ASSERT_TRUE(current.has_value());
    EXPECT_EQ(current->digest(), Get(name)->status.artifact->digest);
    EXPECT_TRUE(
        absl::StartsWith(current->url(), "grpc://127.0.0.1:9090/gitrepository/flux-system/"))
        << current->url();
    // Status is persisted beside the storage.
    EXPECT_TRUE(WaitFor([&] { return fs::exists(StatePath(name)); })) << StatePath(name);
  }
  EXPECT_EQ(git_->fetches(url_a_), 1);
  EXPECT_EQ(git_->fetches(url_b_), 1);
}

TEST_F(SourcesFileTest, StartFailsOnMissingOrInvalidFile) {
  SourcesFileOptions options;
  options.path = tmp_ + "/absent.yaml";
  options.state_root = state_root_;
  SourcesFileRunner missing(options, reconciler_.get());
  EXPECT_FALSE(missing.Start().ok());

  WriteSources(GitRepoDoc("a", url_a_, "main") + "  suspend: maybe\n");
  options.path = sources_path_;
  SourcesFileRunner invalid(options, reconciler_.get());
  absl::Status s = invalid.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "spec.suspend")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "GitRepository a")) << s;
}

TEST_F(SourcesFileTest, EditingOneSpecReconcilesItAtOnce) {
  StartRunner(GitRepoDoc("a", url_a_, "main") + "---\n" + GitRepoDoc("b", url_b_, "main"));
  ASSERT_TRUE(WaitReady("a", "main@sha1:" + main_commit_));
  ASSERT_TRUE(WaitReady("b", "main@sha1:" + main_commit_));
  const int64_t generation = Get("a")->generation;
  const int b_resolves = git_->resolves(url_b_);

  absl::Time edited = absl::Now();
  WriteSources(GitRepoDoc("a", url_a_, "dev") + "---\n" + GitRepoDoc("b", url_b_, "main"));
  // The interval is 1h: only the edit can make this happen.
  ASSERT_TRUE(WaitReady("a", "dev@sha1:" + dev_commit_));
  EXPECT_LT(absl::Now() - edited, absl::Seconds(5));
  EXPECT_EQ(Get("a")->generation, generation + 1);
  EXPECT_EQ(Get("a")->status.observed_generation, generation + 1);
  auto current = hub_->Current(Ref("a"));
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->revision(), "dev@sha1:" + dev_commit_);
  // The untouched source was left alone.
  EXPECT_EQ(git_->resolves(url_b_), b_resolves);
  EXPECT_EQ(Get("b")->generation, 1);
}

// An edit runs at once: idle workers are woken when a source becomes due,
// instead of noticing on their next tick. The tick here is an hour, so only
// the wake-up can make the edit happen within the wait.
TEST_F(SourcesFileTest, EditRunsWithoutWaitingForIdleWorkersToWake) {
  WriteSources(GitRepoDoc("a", url_a_, "main"));
  runner_ = NewRunner(reconciler_.get(), /*idle_tick=*/absl::Hours(1));
  ASSERT_TRUE(runner_->Start().ok());
  ASSERT_TRUE(WaitReady("a", "main@sha1:" + main_commit_));

  WriteSources(GitRepoDoc("a", url_a_, "dev"));
  ASSERT_TRUE(WaitReady("a", "dev@sha1:" + dev_commit_));
}

TEST_F(SourcesFileTest, RemovingSourceDeletesItsArtifactsAndPublishesDeleted) {
  StartRunner(GitRepoDoc("a", url_a_, "main") + "---\n" + GitRepoDoc("b", url_b_, "main"));
  ASSERT_TRUE(WaitReady("a", "main@sha1:" + main_commit_));
  ASSERT_TRUE(WaitReady("b", "main@sha1:" + main_commit_));
  ASSERT_TRUE(WaitFor([&] { return fs::exists(StatePath("b")); }));
  const std::string b_digest = Get("b")->status.artifact->digest;

  WriteSources(GitRepoDoc("a", url_a_, "main"));
  ASSERT_TRUE(WaitFor([&] {
    return !hub_->Current(Ref("b")).has_value() && !fs::exists(ArtifactDir("b")) &&
           !fs::exists(StatePath("b"));
  })) << "b still has artifacts, hub entry or state";
  EXPECT_EQ(runner_->size(), 1u);
  EXPECT_FALSE(Get("b").has_value());
  EXPECT_EQ(CountEvents(*hub_, "b", v1::ArtifactEvent::DELETED), 1);
  bool found = false;
  for (const auto& e : AllEvents(*hub_)) {
    if (e.type() == v1::ArtifactEvent::DELETED) {
      found = true;
      EXPECT_EQ(e.artifact().digest(), b_digest);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_FALSE(fs::exists(storage_root_ + "/.git-cache/gitrepository/flux-system/b"));
  // The other one is untouched.
  EXPECT_TRUE(hub_->Current(Ref("a")).has_value());
  EXPECT_EQ(ReadyRevision("a"), "main@sha1:" + main_commit_);
}

TEST_F(SourcesFileTest, InvalidYamlKeepsPreviousSourcesRunning) {
  StartRunner(GitRepoDoc("a", url_a_, "main") + "---\n" + GitRepoDoc("b", url_b_, "main"));
  ASSERT_TRUE(WaitReady("a", "main@sha1:" + main_commit_));
  ASSERT_TRUE(WaitReady("b", "main@sha1:" + main_commit_));
  const uint64_t seq = hub_->TakeSnapshot(EventFilter{}).sequence;

  WriteSources("apiVersion: source.toolkit.fluxcd.io/v1\nkind: [GitRepository\n");
  absl::SleepFor(absl::Milliseconds(400));  // 8 poll intervals
  EXPECT_EQ(runner_->size(), 2u);
  EXPECT_EQ(ReadyRevision("a"), "main@sha1:" + main_commit_);
  EXPECT_EQ(ReadyRevision("b"), "main@sha1:" + main_commit_);
  EXPECT_TRUE(hub_->Current(Ref("a")).has_value());
  EXPECT_TRUE(hub_->Current(Ref("b")).has_value());
  EXPECT_EQ(hub_->TakeSnapshot(EventFilter{}).sequence, seq) << "nothing deleted or rebuilt";
  EXPECT_TRUE(fs::exists(ArtifactDir("a")));
  EXPECT_TRUE(fs::exists(ArtifactDir("b")));

  // The watcher is still alive: a good file is picked up again.
  WriteSources(GitRepoDoc("a", url_a_, "dev") + "---\n" + GitRepoDoc("b", url_b_, "main"));
  ASSERT_TRUE(WaitReady("a", "dev@sha1:" + dev_commit_));
}

// An edit that makes one GitRepository invalid rejects the whole file: the
// last good set keeps running (skipping the document would read as a deletion).
TEST_F(SourcesFileTest, InvalidGitRepositoryOnReloadKeepsPreviousOne) {
  StartRunner(GitRepoDoc("a", url_a_, "main") + "---\n" + GitRepoDoc("b", url_b_, "main"));
  ASSERT_TRUE(WaitReady("a", "main@sha1:" + main_commit_));
  ASSERT_TRUE(WaitReady("b", "main@sha1:" + main_commit_));

  // b loses its interval: valid YAML, invalid GitRepository.
  WriteSources(GitRepoDoc("a", url_a_, "main") + "---\n" +
               absl::StrCat("apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n",
                            "metadata: {name: b, namespace: flux-system}\n", "spec: {url: '",
                            url_b_, "'}\n"));
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_EQ(runner_->size(), 2u);
  EXPECT_EQ(ReadyRevision("b"), "main@sha1:" + main_commit_);
  EXPECT_TRUE(hub_->Current(Ref("b")).has_value());
  EXPECT_EQ(CountEvents(*hub_, "b", v1::ArtifactEvent::DELETED), 0);
  EXPECT_TRUE(fs::exists(ArtifactDir("b")));
}

// A non-string metadata.name is rejected with a message, never a crash.
TEST_F(SourcesFileTest, NonStringNameIsRejectedNotACrash) {
  WriteSources(absl::StrCat("apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n",
                            "metadata: {name: 2024, namespace: flux-system}\n",
                            "spec: {interval: 1h, url: '", url_a_, "'}\n"));
  auto runner = NewRunner(reconciler_.get());
  absl::Status s = runner->Start();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "metadata.name")) << s;
}

TEST_F(SourcesFileTest, SecretRefInSameFileAuthenticatesOverHttp) {
  testing::GitHttpServer::Options options;
  options.username = "flux";
  options.password = "s3cr3t-pass";
  auto server = testing::GitHttpServer::Start(tmp_ + "/srv", options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string url = (*server)->Url("a.git");

  // username through base64 data, password through stringData: both are merged.
  StartRunner(GitRepoDoc("a", url, "main", "  secretRef:\n    name: git-auth\n") +
              "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: git-auth\n  namespace: " +
              kNamespace + "\ndata:\n  username: " + absl::Base64Escape("flux") +
              "\nstringData:\n  password: s3cr3t-pass\n");
  ASSERT_TRUE(WaitReady("a", "main@sha1:" + main_commit_));
  EXPECT_EQ(git_->fetches(url), 1);
  EXPECT_TRUE(hub_->Current(Ref("a")).has_value());
}

TEST_F(SourcesFileTest, MissingSecretIsNotReadyWithClearMessageUntilItAppears) {
  testing::GitHttpServer::Options options;
  options.username = "flux";
  options.password = "s3cr3t-pass";
  auto server = testing::GitHttpServer::Start(tmp_ + "/srv", options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string url = (*server)->Url("a.git");
  const std::string repo_doc = GitRepoDoc("a", url, "main", "  secretRef:\n    name: git-auth\n");

  StartRunner(repo_doc);
  ASSERT_TRUE(WaitFor([&] { return ReadyStatus("a") == "False"; }));
  auto repo = Get("a");
  const Condition* ready = FindCondition(repo->status.conditions, kReadyCondition);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->reason, kAuthenticationFailedReason);
  EXPECT_EQ(ready->message, "failed to get secret 'flux-system/git-auth': not found");
  const Condition* failed = FindCondition(repo->status.conditions, kFetchFailedCondition);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status, "True");
  EXPECT_EQ(git_->resolves(url), 0) << "no anonymous attempt without the secret";
  EXPECT_FALSE(hub_->Current(Ref("a")).has_value());

  // Adding the secret to the file retries at once (the interval is 1h).
  WriteSources(repo_doc +
               "---\napiVersion: v1\nkind: Secret\nmetadata: {name: git-auth, namespace: " +
               kNamespace + "}\nstringData: {username: flux, password: s3cr3t-pass}\n");
  ASSERT_TRUE(WaitReady("a", "main@sha1:" + main_commit_));
  EXPECT_EQ(FindCondition(Get("a")->status.conditions, kFetchFailedCondition), nullptr);
}

TEST_F(SourcesFileTest, RestartRestoresArtifactIntoFreshHubBeforeAnyReconcile) {
  const std::string content = GitRepoDoc("a", url_a_, "main");
  StartRunner(content);
  ASSERT_TRUE(WaitReady("a", "main@sha1:" + main_commit_));
  ASSERT_TRUE(WaitFor([&] { return fs::exists(StatePath("a")); }));
  const ArtifactStatus stored = *Get("a")->status.artifact;
  runner_->Stop();
  runner_.reset();

  // A new process: new hub, new fetcher, same storage and state dirs.
  ArtifactEventHub hub2;
  CountingFetcher git2(real_git_.get());
  bool announced_before_first_check = false;
  git2.set_before_remote([&](const GitFetchOptions&) {
    announced_before_first_check = hub2.Current(Ref("a")).has_value();
  });
  auto reconciler2 = MakeReconciler(&git2, &hub2);
  // The runner must stop before the objects above go away, whatever fails.
  absl::Cleanup stop = [this] { runner_.reset(); };
  runner_ = NewRunner(reconciler2.get());
  ASSERT_TRUE(runner_->Start().ok());

  // Immediately after Start(), before any reconcile could have stored anything.
  auto current = hub2.Current(Ref("a"));
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->digest(), stored.digest);
  EXPECT_EQ(current->revision(), stored.revision);
  EXPECT_EQ(current->path(), stored.path);
  EXPECT_EQ(current->url(), stored.url);

  // The first reconcile after the restart checks the remote once and does
  // not refetch or republish.
  ASSERT_TRUE(WaitFor([&] { return git2.resolves() >= 1; }));
  ASSERT_TRUE(WaitFor([&] {
    auto repo = Get("a");
    return repo && ReadyStatus("a") == "True" && repo->status.artifact &&
           repo->status.artifact->digest == stored.digest;
  }));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE(announced_before_first_check);
  EXPECT_EQ(git2.fetches(), 0);
  EXPECT_EQ(hub2.TakeSnapshot(EventFilter{}).sequence, 1u) << "only the restore event";
  EXPECT_EQ(Get("a")->generation, 1) << "same spec: same generation";
}

TEST_F(SourcesFileTest, RestartWithChangedSpecBumpsGenerationAndRebuilds) {
  StartRunner(GitRepoDoc("a", url_a_, "main"));
  ASSERT_TRUE(WaitReady("a", "main@sha1:" + main_commit_));
  ASSERT_TRUE(WaitFor([&] { return fs::exists(StatePath("a")); }));
  runner_->Stop();
  runner_.reset();

  // Edited while the controller was down.
  WriteSources(GitRepoDoc("a", url_a_, "dev"));
  ArtifactEventHub hub2;
  auto reconciler2 = MakeReconciler(git_.get(), &hub2);
  absl::Cleanup stop = [this] { runner_.reset(); };
  runner_ = NewRunner(reconciler2.get());
  ASSERT_TRUE(runner_->Start().ok());
  ASSERT_TRUE(WaitReady("a", "dev@sha1:" + dev_commit_));
  EXPECT_EQ(Get("a")->generation, 2);
  auto current = hub2.Current(Ref("a"));
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->revision(), "dev@sha1:" + dev_commit_);
}

// A source removed while a worker reconciles it leaves no state file behind
// (the worker's persist must not resurrect it).
TEST_F(SourcesFileTest, SourceRemovedMidReconcileLeavesNoStateBehind) {
  absl::Notification entered;
  git_->set_before_remote([&](const GitFetchOptions& o) {
    if (o.url != url_b_ || entered.HasBeenNotified()) return;
    entered.Notify();
    release_.WaitForNotification();
  });
  StartRunner(GitRepoDoc("a", url_a_, "main") + "---\n" + GitRepoDoc("b", url_b_, "main"));
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(15)));

  WriteSources(GitRepoDoc("a", url_a_, "main"));
  ASSERT_TRUE(WaitFor([&] { return runner_->size() == 1; }));
  absl::SleepFor(absl::Milliseconds(200));  // let Load finish its deletions
  release_.Notify();

  // The worker publishes its artifact, then undoes it.
  ASSERT_TRUE(WaitFor([&] { return CountEvents(*hub_, "b", v1::ArtifactEvent::DELETED) == 1; }));
  ASSERT_TRUE(WaitFor([&] { return !fs::exists(ArtifactDir("b")); }));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(hub_->Current(Ref("b")).has_value());
  EXPECT_FALSE(fs::exists(StatePath("b"))) << "stale state file of a removed source";
}

}  // namespace
}  // namespace gitops::source
