// GitRepositoryReconciler against real things: git repositories on disk
// (file://) and behind nginx + git http-backend with basic auth, the libgit2
// fetcher (wrapped only to count calls), storage in a temp dir and a real
// event hub.
#include "source-controller/controller/reconciler.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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
constexpr char kName[] = "app";
constexpr char kAdvertised[] = "source-controller.test:9090";

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = testing::MakeTempDir("reconciler-test");
    auto work = testing::GitWorkRepo::Create(tmp_ + "/work", "main");
    ASSERT_TRUE(work.ok()) << work.status();
    work_ = std::make_unique<testing::GitWorkRepo>(*work);
    auto c1 = work_->Commit("c1", {{"deploy/app.yaml", "kind: ConfigMap\n"},
                                   {"docs/notes.txt", "notes\n"},
                                   {"README.md", "hello\n"}});
    ASSERT_TRUE(c1.ok()) << c1.status();
    c1_ = *c1;
    bare_ = tmp_ + "/srv/repo.git";
    ASSERT_TRUE(testing::InitBareRepo(bare_).ok());
    ASSERT_TRUE(work_->PushAll(bare_).ok());

    auto storage = ArtifactStorage::Create(tmp_ + "/storage");
    ASSERT_TRUE(storage.ok()) << storage.status();
    storage_ = *std::move(storage);
    real_git_ = NewLibgit2Fetcher();
    git_ = std::make_unique<CountingFetcher>(real_git_.get());
    reconciler_ = MakeReconciler(storage_.get());

    repo_.namespace_name = kNamespace;
    repo_.name = kName;
    repo_.spec.url = "file://" + bare_;
    repo_.spec.ref.branch = "main";
    repo_.spec.interval = absl::Minutes(1);
    repo_.spec.timeout = absl::Seconds(20);
  }
  void TearDown() override { testing::RemoveTree(tmp_); }

  std::unique_ptr<GitRepositoryReconciler> MakeReconciler(ArtifactStorage* storage) {
    ReconcilerOptions options;
    options.cache_root = tmp_ + "/cache";
    options.work_root = tmp_ + "/tmp";
    options.advertised_address = kAdvertised;
    return std::make_unique<GitRepositoryReconciler>(ReconcilerDeps{git_.get(), storage, &hub_},
                                                     options);
  }

  // Commits on main in the work repo and pushes it to the bare repo.
  std::string PushCommit(const std::string& file, const std::string& content) {
    auto c = work_->Commit("change " + file, {{file, content}});
    EXPECT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(work_->PushAll(bare_).ok());
    return c.ok() ? *c : "";
  }

  uint64_t HubSequence() const { return hub_.TakeSnapshot(EventFilter{}).sequence; }
  std::vector<v1::ArtifactEvent> EventsAfter(uint64_t after) {
    uint64_t next = 0;
    auto events = hub_.WaitForEvents(EventFilter{}, after, absl::Now(), &next);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<v1::ArtifactEvent>{};
  }
  std::optional<v1::Artifact> HubCurrent() const {
    v1::SourceReference ref;
    ref.set_kind(kGitRepositoryKind);
    ref.set_namespace_(kNamespace);
    ref.set_name(kName);
    return hub_.Current(ref);
  }
  const Condition* Cond(absl::string_view type) const {
    return FindCondition(repo_.status.conditions, type);
  }
  // Entry names in the artifact tarball, via the tar CLI.
  std::vector<std::string> TarEntries(const std::string& rel_path) {
    auto out = testing::RunCommand({"tar", "-tzf", storage_->root() + "/" + rel_path});
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    return absl::StrSplit(*out, '\n', absl::SkipEmpty());
  }
  static bool Contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }

  std::string tmp_;
  std::string bare_;
  std::string c1_;
  std::unique_ptr<testing::GitWorkRepo> work_;
  std::unique_ptr<ArtifactStorage> storage_;
  std::unique_ptr<GitFetcher> real_git_;
  std::unique_ptr<CountingFetcher> git_;
  ArtifactEventHub hub_;
  std::unique_ptr<GitRepositoryReconciler> reconciler_;
  GitRepository repo_;
  // The reconcile clock. Storage stamps artifacts with the real clock and GC
  // compares against this one, so it must be close to real time.
  const absl::Time t0_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
};

TEST_F(ReconcilerTest, FirstReconcileStoresArtifactAndAnnouncesIt) {
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());

  ASSERT_TRUE(repo_.status.artifact.has_value());
  const ArtifactStatus& a = *repo_.status.artifact;
  const std::string revision = "main@sha1:" + c1_;
  EXPECT_EQ(a.revision, revision);
  ASSERT_TRUE(absl::StartsWith(a.digest, "sha256:")) << a.digest;
  const std::string hex = a.digest.substr(7);
  EXPECT_EQ(hex.size(), 64u);
  EXPECT_EQ(a.path, absl::StrCat("gitrepository/flux-system/app/", hex, ".tar.gz"));
  EXPECT_EQ(a.url, absl::StrCat("grpc://", kAdvertised, "/", a.path));
  EXPECT_EQ(a.last_update_time, t0_);
  const std::string file = storage_->root() + "/" + a.path;
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(a.size, static_cast<int64_t>(fs::file_size(file)));
  EXPECT_GT(a.size, 0);
  std::vector<std::string> entries = TarEntries(a.path);
  EXPECT_TRUE(Contains(entries, "deploy/app.yaml")) << absl::StrJoin(entries, ",");
  EXPECT_TRUE(Contains(entries, "README.md"));

  const std::string msg = absl::StrCat("stored artifact for revision '", revision, "'");
  const Condition* ready = Cond(kReadyCondition);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "True");
  EXPECT_EQ(ready->reason, kSucceededReason);
  EXPECT_EQ(ready->message, msg);
  EXPECT_EQ(ready->last_transition_time, t0_);
  const Condition* stored = Cond(kArtifactInStorageCondition);
  ASSERT_NE(stored, nullptr);
  EXPECT_EQ(stored->status, "True");
  EXPECT_EQ(stored->reason, kSucceededReason);
  EXPECT_EQ(Cond(kFetchFailedCondition), nullptr);
  EXPECT_EQ(Cond(kStalledCondition), nullptr);
  EXPECT_EQ(repo_.status.observed_generation, repo_.generation);
  EXPECT_FALSE(repo_.status.observed_ignore.has_value());

  auto current = HubCurrent();
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->revision(), revision);
  EXPECT_EQ(current->digest(), a.digest);
  EXPECT_EQ(current->path(), a.path);
  EXPECT_EQ(current->url(), a.url);
  EXPECT_EQ(current->size(), a.size);
  EXPECT_EQ(current->last_update_time().seconds(), absl::ToUnixSeconds(t0_));
  std::vector<v1::ArtifactEvent> events = EventsAfter(0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type(), v1::ArtifactEvent::UPDATED);

  EXPECT_EQ(git_->resolves(), 0) << "no artifact yet: straight to the fetch";
  EXPECT_EQ(git_->fetches(), 1);
  // The checkout is temporary.
  EXPECT_TRUE(fs::is_empty(tmp_ + "/tmp"));
}

TEST_F(ReconcilerTest, UnchangedRevisionMakesOneRemoteCheckAndNoFetch) {
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  const ArtifactStatus first = *repo_.status.artifact;
  const uint64_t seq = HubSequence();
  ASSERT_EQ(git_->resolves(), 0);
  ASSERT_EQ(git_->fetches(), 1);

  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_ + absl::Seconds(1)).ok());
  EXPECT_EQ(git_->resolves(), 1) << "exactly one remote check per reconcile";
  EXPECT_EQ(git_->fetches(), 1) << "nothing moved: no fetch";
  ASSERT_TRUE(repo_.status.artifact.has_value());
  EXPECT_EQ(repo_.status.artifact->digest, first.digest);
  EXPECT_EQ(repo_.status.artifact->revision, first.revision);
  EXPECT_EQ(repo_.status.artifact->path, first.path);
  EXPECT_EQ(repo_.status.artifact->last_update_time, first.last_update_time);
  EXPECT_EQ(HubSequence(), seq) << "no new event";
  const Condition* ready = Cond(kReadyCondition);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "True");
  EXPECT_EQ(ready->last_transition_time, t0_) << "Ready did not flip";
  auto list = storage_->List(KeyOf(repo_));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
}

TEST_F(ReconcilerTest, NewCommitStoresNewArtifactAndPublishesEvent) {
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  const ArtifactStatus first = *repo_.status.artifact;
  const uint64_t seq = HubSequence();

  const std::string c2 = PushCommit("deploy/app.yaml", "kind: Secret\n");
  const absl::Time t1 = t0_ + absl::Seconds(1);
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t1).ok());

  ASSERT_TRUE(repo_.status.artifact.has_value());
  const ArtifactStatus& second = *repo_.status.artifact;
  EXPECT_EQ(second.revision, "main@sha1:" + c2);
  EXPECT_NE(second.digest, first.digest);
  EXPECT_NE(second.path, first.path);
  EXPECT_EQ(second.last_update_time, t1);
  EXPECT_EQ(Cond(kReadyCondition)->message,
            absl::StrCat("stored artifact for revision 'main@sha1:", c2, "'"));
  EXPECT_EQ(git_->fetches(), 2);

  std::vector<v1::ArtifactEvent> events = EventsAfter(seq);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type(), v1::ArtifactEvent::UPDATED);
  EXPECT_EQ(events[0].artifact().digest(), second.digest);
  EXPECT_EQ(events[0].artifact().revision(), second.revision);
  // Retention keeps the previous artifact (2 records, 60s TTL).
  auto list = storage_->List(KeyOf(repo_));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
}

TEST_F(ReconcilerTest, IgnoreChangeAtSameCommitRebuildsWithDifferentDigest) {
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  const ArtifactStatus first = *repo_.status.artifact;
  EXPECT_TRUE(Contains(TarEntries(first.path), "docs/notes.txt"));
  const uint64_t seq = HubSequence();

  repo_.spec.ignore = "docs/\n";
  repo_.generation = 2;
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_ + absl::Seconds(1)).ok());

  const ArtifactStatus& second = *repo_.status.artifact;
  EXPECT_EQ(second.revision, first.revision) << "same commit";
  EXPECT_NE(second.digest, first.digest);
  EXPECT_EQ(git_->fetches(), 2) << "a spec change forces a rebuild";
  std::vector<std::string> entries = TarEntries(second.path);
  EXPECT_FALSE(Contains(entries, "docs/notes.txt")) << absl::StrJoin(entries, ",");
  EXPECT_TRUE(Contains(entries, "deploy/app.yaml"));
  ASSERT_TRUE(repo_.status.observed_ignore.has_value());
  EXPECT_EQ(*repo_.status.observed_ignore, "docs/\n");
  EXPECT_EQ(repo_.status.observed_generation, 2);
  EXPECT_EQ(Cond(kReadyCondition)->observed_generation, 2);
  std::vector<v1::ArtifactEvent> events = EventsAfter(seq);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].artifact().digest(), second.digest);

  // Unchanged again: no more fetches.
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_ + absl::Seconds(2)).ok());
  EXPECT_EQ(git_->fetches(), 2);
}

TEST_F(ReconcilerTest, CommitTouchingOnlyIgnoredFilesKeepsDigestButAnnouncesRevision) {
  repo_.spec.ignore = "docs/\n";
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  const ArtifactStatus first = *repo_.status.artifact;
  const uint64_t seq = HubSequence();

  const std::string c2 = PushCommit("docs/notes.txt", "more notes\n");
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_ + absl::Seconds(1)).ok());
  const ArtifactStatus& second = *repo_.status.artifact;
  EXPECT_EQ(second.revision, "main@sha1:" + c2);
  EXPECT_EQ(second.digest, first.digest) << "same content, same tarball";
  EXPECT_EQ(second.path, first.path);
  std::vector<v1::ArtifactEvent> events = EventsAfter(seq);
  ASSERT_EQ(events.size(), 1u) << "consumers learn the new revision";
  EXPECT_EQ(events[0].artifact().revision(), second.revision);
  auto list = storage_->List(KeyOf(repo_));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
  EXPECT_TRUE(storage_->Open(KeyOf(repo_), second.digest).ok());
}

TEST_F(ReconcilerTest, ArtifactMissingFromStorageIsRebuilt) {
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  const ArtifactStatus first = *repo_.status.artifact;
  ASSERT_TRUE(fs::remove(storage_->root() + "/" + first.path));

  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_ + absl::Seconds(1)).ok());
  EXPECT_EQ(git_->fetches(), 2);
  EXPECT_EQ(repo_.status.artifact->digest, first.digest) << "packing is deterministic";
  EXPECT_TRUE(fs::exists(storage_->root() + "/" + first.path));
  EXPECT_EQ(Cond(kReadyCondition)->status, "True");
}

TEST_F(ReconcilerTest, MissingBranchIsGitOperationFailedAndKeepsPreviousArtifact) {
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  const ArtifactStatus first = *repo_.status.artifact;
  const uint64_t seq = HubSequence();

  repo_.spec.ref.branch = "no-such-branch";
  repo_.generation = 2;
  const absl::Time t1 = t0_ + absl::Seconds(1);
  absl::Status s = reconciler_->Reconcile(repo_, GitCredentials{}, t1);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsNotFound(s)) << s;

  const Condition* ready = Cond(kReadyCondition);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, kGitOperationFailedReason);
  EXPECT_TRUE(absl::StrContains(ready->message, "no-such-branch")) << ready->message;
  EXPECT_EQ(ready->last_transition_time, t1);
  EXPECT_EQ(ready->observed_generation, 2);
  const Condition* failed = Cond(kFetchFailedCondition);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status, "True");
  EXPECT_EQ(failed->reason, kGitOperationFailedReason);
  EXPECT_EQ(failed->message, ready->message);
  EXPECT_EQ(Cond(kStalledCondition), nullptr) << "a missing branch may appear later";

  // The previous artifact stays: status, storage and hub.
  ASSERT_TRUE(repo_.status.artifact.has_value());
  EXPECT_EQ(repo_.status.artifact->digest, first.digest);
  EXPECT_TRUE(storage_->Open(KeyOf(repo_), first.digest).ok());
  auto current = HubCurrent();
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->digest(), first.digest);
  EXPECT_EQ(HubSequence(), seq);
  EXPECT_EQ(git_->fetches(), 1);

  // Fixing the spec recovers and clears the failure.
  repo_.spec.ref.branch = "main";
  repo_.generation = 3;
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_ + absl::Seconds(2)).ok());
  EXPECT_EQ(Cond(kReadyCondition)->status, "True");
  EXPECT_EQ(Cond(kFetchFailedCondition), nullptr);
}

// Flux reports a refused clone as GitOperationFailed (AuthenticationFailed is
// for a Secret it cannot read or use).
TEST_F(ReconcilerTest, WrongCredentialsOverHttpAreGitOperationFailed) {
  testing::GitHttpServer::Options options;
  options.username = "flux";
  options.password = "right-pass";
  auto server = testing::GitHttpServer::Start(tmp_ + "/srv", options);
  ASSERT_TRUE(server.ok()) << server.status();
  repo_.spec.url = (*server)->Url("repo.git");

  GitCredentials wrong;
  wrong.username = "flux";
  wrong.password = "wrong-pass-123";
  absl::Status s = reconciler_->Reconcile(repo_, wrong, t0_);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsUnauthenticated(s)) << s;
  const Condition* ready = Cond(kReadyCondition);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, kGitOperationFailedReason);
  EXPECT_FALSE(absl::StrContains(ready->message, "wrong-pass-123")) << ready->message;
  const Condition* failed = Cond(kFetchFailedCondition);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->reason, kGitOperationFailedReason);
  EXPECT_EQ(Cond(kStalledCondition), nullptr);
  EXPECT_FALSE(repo_.status.artifact.has_value());
  EXPECT_FALSE(HubCurrent().has_value());

  // Anonymous is refused the same way.
  s = reconciler_->Reconcile(repo_, GitCredentials{}, t0_);
  EXPECT_EQ(Cond(kReadyCondition)->reason, kGitOperationFailedReason) << s;

  GitCredentials right;
  right.username = "flux";
  right.password = "right-pass";
  ASSERT_TRUE(reconciler_->Reconcile(repo_, right, t0_ + absl::Seconds(1)).ok());
  EXPECT_EQ(repo_.status.artifact->revision, "main@sha1:" + c1_);
  EXPECT_EQ(Cond(kReadyCondition)->status, "True");
  EXPECT_EQ(Cond(kFetchFailedCondition), nullptr);
}

// Flux validates the Secret against the transport before any connection.
TEST_F(ReconcilerTest, IncompleteCredentialsForTheTransportAreAuthenticationFailed) {
  repo_.spec.url = "ssh://git@127.0.0.1:1/repo.git";
  GitCredentials no_known_hosts;
  no_known_hosts.ssh_identity = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  ReconcileInputs in;
  in.credentials = no_known_hosts;
  ReconcileOutcome o = reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(o.kind, ReconcileKind::kFailed);
  EXPECT_EQ(o.reason, kAuthenticationFailedReason);
  EXPECT_EQ(Cond(kFetchFailedCondition)->message,
            "failed to configure authentication options: invalid 'ssh' auth option: "
            "'known_hosts' is required");
  in.credentials = GitCredentials{};
  reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(Cond(kReadyCondition)->message,
            "failed to configure authentication options: invalid 'ssh' auth option: 'identity' "
            "is required");

  repo_.spec.url = "https://127.0.0.1:1/repo.git";
  GitCredentials password_only;
  password_only.password = "p4ss";
  in.credentials = password_only;
  reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(Cond(kReadyCondition)->message,
            "failed to configure authentication options: invalid 'https' auth option: 'password' "
            "requires 'username' to be set");
  EXPECT_EQ(git_->resolves() + git_->fetches(), 0) << "no connection attempted";
}

// fluxcd/pkg git NewAuthOptions and gogit validateUrlAndAuthOptions: the
// url's userinfo counts as credentials, checked before any connection.
TEST_F(ReconcilerTest, UrlUserinfoCountsAsCredentialsInTheChecks) {
  ReconcileInputs in;
  repo_.spec.url = "https://:p4ss-in-url@127.0.0.1:1/repo.git";
  in.credentials = GitCredentials{};
  ReconcileOutcome o = reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(o.reason, kAuthenticationFailedReason);
  EXPECT_EQ(Cond(kReadyCondition)->message,
            "failed to configure authentication options: invalid 'https' auth option: 'password' "
            "requires 'username' to be set");

  repo_.spec.url = "https://tok-in-url-0042@127.0.0.1:1/repo.git";
  GitCredentials bearer;
  bearer.bearer_token = "tok-bearer-0042";
  in.credentials = bearer;
  o = reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(o.reason, kAuthenticationFailedReason);
  EXPECT_EQ(Cond(kReadyCondition)->message,
            "failed to configure authentication options: basic auth and bearer token cannot be "
            "set at the same time");
  EXPECT_EQ(git_->resolves() + git_->fetches(), 0) << "no connection attempted";
}

TEST_F(ReconcilerTest, UnsupportedUrlSchemeIsStalled) {
  repo_.spec.url = "ftp://example.com/repo.git";
  absl::Status s = reconciler_->Reconcile(repo_, GitCredentials{}, t0_);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  const Condition* stalled = Cond(kStalledCondition);
  ASSERT_NE(stalled, nullptr);
  EXPECT_EQ(stalled->status, "True");
  EXPECT_EQ(stalled->reason, kURLInvalidReason);
  const Condition* ready = Cond(kReadyCondition);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, kURLInvalidReason);
  EXPECT_TRUE(absl::StrContains(ready->message, "ftp")) << ready->message;
  EXPECT_EQ(git_->fetches(), 0);

  // A fixed URL clears Stalled.
  repo_.spec.url = "file://" + bare_;
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  EXPECT_EQ(Cond(kStalledCondition), nullptr);
}

TEST_F(ReconcilerTest, UnwritableStorageIsStorageOperationFailed) {
  // Tests run as root, so permissions do not stop writes: put a regular file
  // where the storage needs the "gitrepository" directory.
  ASSERT_TRUE(testing::WriteFile(storage_->root() + "/gitrepository", "not a dir").ok());
  absl::Status s = reconciler_->Reconcile(repo_, GitCredentials{}, t0_);
  ASSERT_FALSE(s.ok());
  const Condition* ready = Cond(kReadyCondition);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, kDirCreationFailedReason);
  EXPECT_TRUE(absl::StrContains(ready->message, "gitrepository")) << ready->message;
  const Condition* storage_failed = Cond(kStorageOperationFailedCondition);
  ASSERT_NE(storage_failed, nullptr);
  EXPECT_EQ(storage_failed->status, "True");
  EXPECT_EQ(storage_failed->reason, kDirCreationFailedReason);
  EXPECT_EQ(Cond(kStalledCondition), nullptr);
  EXPECT_EQ(Cond(kFetchFailedCondition), nullptr);
  EXPECT_FALSE(repo_.status.artifact.has_value());
  EXPECT_FALSE(HubCurrent().has_value());
  EXPECT_TRUE(fs::is_empty(tmp_ + "/tmp")) << "the checkout is cleaned up on failure";

  // Once storage works again the next run succeeds and clears the condition.
  ASSERT_TRUE(fs::remove(storage_->root() + "/gitrepository"));
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  EXPECT_EQ(Cond(kStorageOperationFailedCondition), nullptr);
  EXPECT_TRUE(HubCurrent().has_value());
}

// spec.include: another GitRepository's artifact (a sub-path of it) is
// copied into this one's, recorded in includedArtifacts/observedInclude, and
// a new artifact of the included one rebuilds the including one.
TEST_F(ReconcilerTest, IncludeCopiesAnotherArtifactAndFollowsIt) {
  // The included source: its own repository and object.
  auto lib_work = testing::GitWorkRepo::Create(tmp_ + "/lib-work", "main");
  ASSERT_TRUE(lib_work.ok());
  ASSERT_TRUE(lib_work->Commit("lib", {{"deploy/lib.yaml", "kind: Lib\n"}, {"x.txt", "x\n"}}).ok());
  const std::string lib_bare = tmp_ + "/srv/lib.git";
  ASSERT_TRUE(testing::InitBareRepo(lib_bare).ok());
  ASSERT_TRUE(lib_work->PushAll(lib_bare).ok());
  GitRepository lib = repo_;
  lib.name = "lib";
  lib.spec.url = "file://" + lib_bare;
  ASSERT_TRUE(reconciler_->Reconcile(lib, GitCredentials{}, t0_).ok());
  ASSERT_TRUE(lib.status.artifact.has_value());

  repo_.spec.include.push_back(GitRepositoryInclude{"lib", "deploy", "vendor/lib"});
  ReconcileInputs in;
  in.includes.push_back(*lib.status.artifact);
  ReconcileOutcome o = reconciler_->Reconcile(repo_, in, t0_);
  ASSERT_TRUE(o.ok()) << o.error;
  std::vector<std::string> entries = TarEntries(repo_.status.artifact->path);
  EXPECT_TRUE(Contains(entries, "vendor/lib/lib.yaml")) << absl::StrJoin(entries, ",");
  EXPECT_FALSE(Contains(entries, "vendor/lib/x.txt")) << "only fromPath is copied";
  EXPECT_TRUE(Contains(entries, "deploy/app.yaml"));
  ASSERT_EQ(repo_.status.included_artifacts.size(), 1u);
  EXPECT_EQ(repo_.status.included_artifacts[0].digest, lib.status.artifact->digest);
  ASSERT_EQ(repo_.status.observed_include.size(), 1u);
  EXPECT_EQ(repo_.status.observed_include[0].to_path, "vendor/lib");
  const nlohmann::json j = StatusToJson(repo_.status);
  EXPECT_EQ(j["observedInclude"][0]["repository"]["name"], "lib");
  EXPECT_EQ(j["includedArtifacts"][0]["revision"], lib.status.artifact->revision);
  const std::string first_digest = repo_.status.artifact->digest;

  // Same commit, same include: nothing to do.
  const int fetches = git_->fetches();
  ASSERT_TRUE(reconciler_->Reconcile(repo_, in, t0_ + absl::Seconds(1)).ok());
  EXPECT_EQ(git_->fetches(), fetches);

  // A new commit in the included repository: a new include artifact, so a
  // rebuild, announced in progress as ArtifactOutdated/IncludeChange.
  ASSERT_TRUE(lib_work->Commit("lib2", {{"deploy/lib.yaml", "kind: Lib2\n"}}).ok());
  ASSERT_TRUE(lib_work->PushAll(lib_bare).ok());
  ASSERT_TRUE(reconciler_->Reconcile(lib, GitCredentials{}, t0_ + absl::Seconds(2)).ok());
  in.includes[0] = *lib.status.artifact;
  std::vector<std::string> progress;
  in.progress = [&](const GitRepository& r) {
    const Condition* outdated = FindCondition(r.status.conditions, kArtifactOutdatedCondition);
    const Condition* rec = FindCondition(r.status.conditions, kReconcilingCondition);
    progress.push_back(
        absl::StrCat(outdated ? outdated->reason : "-", "|", rec ? rec->message : "-"));
    return absl::OkStatus();
  };
  ASSERT_TRUE(reconciler_->Reconcile(repo_, in, t0_ + absl::Seconds(3)).ok());
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress[0],
            "IncludeChange|building artifact: included artifacts differ from last observed "
            "includes");
  EXPECT_NE(repo_.status.artifact->digest, first_digest);
  EXPECT_EQ(repo_.status.included_artifacts[0].digest, lib.status.artifact->digest);
  EXPECT_EQ(Cond(kArtifactOutdatedCondition), nullptr);
  EXPECT_EQ(Cond(kReconcilingCondition), nullptr);
}

TEST_F(ReconcilerTest, MissingIncludeWaitsWithIncludeUnavailable) {
  repo_.spec.include.push_back(GitRepositoryInclude{"lib", "", ""});
  ReconcileInputs in;
  in.includes.push_back(absl::NotFoundError("gitrepositories \"lib\" not found"));
  ReconcileOutcome o = reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(o.kind, ReconcileKind::kWaiting);
  EXPECT_EQ(o.requeue_after, absl::Seconds(30)) << "--requeue-dependency";
  EXPECT_EQ(o.reason, "NotFound");
  const Condition* unavailable = Cond(kIncludeUnavailableCondition);
  ASSERT_NE(unavailable, nullptr);
  EXPECT_EQ(unavailable->status, "True");
  EXPECT_EQ(unavailable->message,
            "could not get resource for include 'lib': gitrepositories \"lib\" not found");
  const Condition* ready = Cond(kReadyCondition);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, "NotFound");
  const Condition* rec = Cond(kReconcilingCondition);
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->reason, kProgressingWithRetryReason);
  EXPECT_EQ(git_->fetches(), 0);

  in.includes[0] = absl::FailedPreconditionError("no artifact");
  o = reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(o.reason, "NoArtifact");
  EXPECT_EQ(Cond(kIncludeUnavailableCondition)->message, "no artifact available for include 'lib'");

  // The included artifact must really be in storage to be copied.
  ArtifactStatus ghost;
  ghost.revision = "main@sha1:0000000000000000000000000000000000000000";
  ghost.digest = "sha256:" + std::string(64, 'a');
  in.includes[0] = ghost;
  o = reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(o.kind, ReconcileKind::kFailed);
  EXPECT_EQ(o.reason, "CopyFailure");
  EXPECT_TRUE(absl::StartsWith(Cond(kStorageOperationFailedCondition)->message,
                               "failed to copy 'lib' include from  to lib: "))
      << Cond(kStorageOperationFailedCondition)->message;
  EXPECT_EQ(Cond(kIncludeUnavailableCondition), nullptr);
  EXPECT_FALSE(repo_.status.artifact.has_value());
}

// Flux's progress reporting: Reconciling=True/Progressing and Ready=Unknown
// are written before the fetch of a new revision; a failure leaves
// Reconciling with ProgressingWithRetry and status.observedGeneration where
// it was.
TEST_F(ReconcilerTest, ProgressIsWrittenAndFailuresKeepReconcilingWithRetry) {
  std::vector<GitRepository> written;
  ReconcileInputs in;
  in.progress = [&](const GitRepository& r) {
    written.push_back(r);
    return absl::OkStatus();
  };
  ASSERT_TRUE(reconciler_->Reconcile(repo_, in, t0_).ok());
  ASSERT_FALSE(written.empty());
  const Condition* rec = FindCondition(written[0].status.conditions, kReconcilingCondition);
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->reason, kProgressingReason);
  // A new object: generation 0 -> 1 and no artifact yet, written once
  // before the fetch with the latest message.
  EXPECT_EQ(rec->message, "building artifact");
  EXPECT_EQ(FindCondition(written[0].status.conditions, kReadyCondition)->status, "Unknown");
  EXPECT_EQ(FindCondition(written.back().status.conditions, kReconcilingCondition)->message,
            absl::StrCat("building artifact: new upstream revision 'main@sha1:", c1_, "'"));
  EXPECT_EQ(written.size(), 2u) << "one write before the fetch, one before the pack";

  // Nothing changed: no progress write at all.
  written.clear();
  ASSERT_TRUE(reconciler_->Reconcile(repo_, in, t0_ + absl::Seconds(1)).ok());
  EXPECT_TRUE(written.empty());

  // A new commit: ArtifactOutdated/NewRevision while building.
  const std::string c2 = PushCommit("deploy/app.yaml", "kind: Secret\n");
  ASSERT_TRUE(reconciler_->Reconcile(repo_, in, t0_ + absl::Seconds(2)).ok());
  ASSERT_EQ(written.size(), 1u);
  const Condition* outdated =
      FindCondition(written[0].status.conditions, kArtifactOutdatedCondition);
  ASSERT_NE(outdated, nullptr);
  EXPECT_EQ(outdated->reason, kNewRevisionReason);
  EXPECT_EQ(outdated->message, absl::StrCat("new upstream revision 'main@sha1:", c2, "'"));
  EXPECT_EQ(Cond(kArtifactOutdatedCondition), nullptr) << "gone once the artifact is stored";

  // A failing new generation: Reconciling stays (ProgressingWithRetry) and
  // observedGeneration is not advanced; the Ready summary names the failure.
  repo_.spec.ref.branch = "missing";
  repo_.generation = 2;
  ReconcileOutcome o = reconciler_->Reconcile(repo_, in, t0_ + absl::Seconds(3));
  EXPECT_EQ(o.kind, ReconcileKind::kFailed);
  EXPECT_EQ(o.reason, kGitOperationFailedReason);
  rec = Cond(kReconcilingCondition);
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->reason, kProgressingWithRetryReason);
  EXPECT_EQ(rec->message, "processing object: new generation 1 -> 2");
  EXPECT_EQ(repo_.status.observed_generation, 1);
  EXPECT_TRUE(absl::StartsWith(Cond(kReadyCondition)->message,
                               "failed to checkout and determine revision: "))
      << Cond(kReadyCondition)->message;

  // A failed progress write fails the run before any fetch.
  const int fetches = git_->fetches();
  repo_.spec.ref.branch = "main";
  repo_.generation = 3;
  in.progress = [](const GitRepository&) { return absl::UnavailableError("api down"); };
  o = reconciler_->Reconcile(repo_, in, t0_ + absl::Seconds(4));
  EXPECT_EQ(o.reason, "PatchOperationFailed");
  EXPECT_EQ(git_->fetches(), fetches);
}

// Flux's ProgressiveStatus: the in-progress write turns Ready Unknown only
// for drift (no artifact yet, a new revision); a retry of a failure keeps
// Ready=False, so `kubectl wait --for=condition=Ready=false` and
// `kubectl get` do not flicker, and a routine re-check keeps Ready=True.
TEST_F(ReconcilerTest, InProgressStatusChangesReadyOnlyOnDrift) {
  std::vector<GitRepository> written;
  ReconcileInputs in;
  in.progress = [&](const GitRepository& r) {
    written.push_back(r);
    return absl::OkStatus();
  };
  auto ready_in = [](const GitRepository& r) {
    const Condition* c = FindCondition(r.status.conditions, kReadyCondition);
    return c == nullptr ? std::string("<none>") : c->status + "/" + c->reason;
  };
  ASSERT_TRUE(reconciler_->Reconcile(repo_, in, t0_).ok());
  ASSERT_EQ(Cond(kReadyCondition)->status, "True");

  // A new generation of a ready object: Ready stays True while in progress.
  written.clear();
  repo_.spec.ref.branch = "missing";
  repo_.generation = 2;
  ReconcileOutcome o = reconciler_->Reconcile(repo_, in, t0_ + absl::Seconds(1));
  ASSERT_EQ(o.kind, ReconcileKind::kFailed);
  ASSERT_FALSE(written.empty());
  for (const GitRepository& w : written) {
    EXPECT_EQ(ready_in(w), "True/Succeeded");
    EXPECT_EQ(FindCondition(w.status.conditions, kReconcilingCondition)->message,
              "processing object: new generation 1 -> 2");
  }
  ASSERT_EQ(ready_in(repo_), "False/GitOperationFailed");

  // Its retry (here asked for with requestedAt): Ready stays False.
  written.clear();
  in.requested_at = "retry-1";
  o = reconciler_->Reconcile(repo_, in, t0_ + absl::Seconds(2));
  ASSERT_EQ(o.kind, ReconcileKind::kFailed);
  ASSERT_FALSE(written.empty());
  for (const GitRepository& w : written) EXPECT_EQ(ready_in(w), "False/GitOperationFailed");
  EXPECT_EQ(ready_in(repo_), "False/GitOperationFailed");

  // With no artifact to serve, Flux marks the drift ("building artifact")
  // on every try: Ready goes Unknown in progress, False again at the end.
  GitRepository fresh = repo_;
  fresh.name = "fresh";
  fresh.status = GitRepositoryStatus{};
  fresh.generation = 1;
  ASSERT_EQ(reconciler_->Reconcile(fresh, in, t0_ + absl::Seconds(3)).kind, ReconcileKind::kFailed);
  written.clear();
  in.requested_at = "retry-2";
  ASSERT_EQ(reconciler_->Reconcile(fresh, in, t0_ + absl::Seconds(4)).kind, ReconcileKind::kFailed);
  ASSERT_FALSE(written.empty());
  EXPECT_EQ(ready_in(written[0]), "Unknown/Progressing");
  EXPECT_EQ(FindCondition(fresh.status.conditions, kReadyCondition)->status, "False");
}

TEST_F(ReconcilerTest, ArtifactOverTheSizeLimitIsRefused) {
  ReconcilerOptions options;
  options.cache_root = tmp_ + "/cache";
  options.work_root = tmp_ + "/tmp";
  options.advertised_address = kAdvertised;
  options.max_artifact_size = 1000;
  GitRepositoryReconciler limited(ReconcilerDeps{git_.get(), storage_.get(), &hub_}, options);
  PushCommit("big.bin", std::string(4000, 'x'));
  ReconcileOutcome o = limited.Reconcile(repo_, ReconcileInputs{}, t0_);
  EXPECT_EQ(o.kind, ReconcileKind::kFailed);
  EXPECT_EQ(o.reason, kArchiveOperationFailedReason);
  const Condition* failed = Cond(kStorageOperationFailedCondition);
  ASSERT_NE(failed, nullptr);
  EXPECT_TRUE(absl::StrContains(failed->message, "more than 1000 bytes")) << failed->message;
  EXPECT_TRUE(absl::StrContains(failed->message, "--artifact-max-size")) << failed->message;
  EXPECT_FALSE(repo_.status.artifact.has_value());
  EXPECT_TRUE(storage_->List(KeyOf(repo_))->empty()) << "nothing half-written";
  EXPECT_FALSE(HubCurrent().has_value());
}

// Issue 17: a refused revision's git cache is removed, and retries of the
// same upstream revision fail with the same message after one remote check
// (no fetch, no checkout) until upstream or the spec moves.
TEST_F(ReconcilerTest, RevisionRefusedForSizeIsNotFetchedAgain) {
  ReconcilerOptions options;
  options.cache_root = tmp_ + "/cache";
  options.work_root = tmp_ + "/tmp";
  options.advertised_address = kAdvertised;
  options.max_artifact_size = 4000;
  GitRepositoryReconciler limited(ReconcilerDeps{git_.get(), storage_.get(), &hub_}, options);
  const std::string big = PushCommit("big.bin", std::string(8000, 'x'));
  const std::string cache = tmp_ + "/cache/gitrepository/" + kNamespace + "/" + kName;

  ReconcileOutcome first = limited.Reconcile(repo_, ReconcileInputs{}, t0_);
  EXPECT_EQ(first.kind, ReconcileKind::kFailed);
  EXPECT_EQ(first.error.code(), absl::StatusCode::kResourceExhausted) << first.error;
  const std::string message(first.error.message());
  EXPECT_TRUE(absl::StrContains(message, "revision 'main@sha1:" + big + "'")) << message;
  EXPECT_TRUE(absl::StrContains(message, "checkout stopped at 'big.bin'")) << message;
  EXPECT_FALSE(std::filesystem::exists(cache)) << "the refused revision's cache is left";
  EXPECT_EQ(git_->fetches(), 1);

  ReconcileOutcome again = limited.Reconcile(repo_, ReconcileInputs{}, t0_ + absl::Seconds(1));
  EXPECT_EQ(again.kind, ReconcileKind::kFailed);
  EXPECT_EQ(again.error.message(), message);
  EXPECT_EQ(Cond(kStorageOperationFailedCondition)->message, message);
  EXPECT_EQ(git_->fetches(), 1) << "the same revision was fetched again";
  EXPECT_EQ(git_->resolves(), 1);

  // A spec change tries again (and fails again: same content).
  repo_.generation = 2;
  limited.Reconcile(repo_, ReconcileInputs{}, t0_ + absl::Seconds(2));
  EXPECT_EQ(git_->fetches(), 2);

  // Upstream moves to a commit that fits: stored.
  ASSERT_TRUE(testing::Git(work_->dir(), {"rm", "-q", "big.bin"}).ok());
  const std::string fits = PushCommit("small.txt", "small\n");
  ReconcileOutcome fixed = limited.Reconcile(repo_, ReconcileInputs{}, t0_ + absl::Seconds(3));
  ASSERT_TRUE(fixed.ok()) << fixed.error;
  EXPECT_EQ(repo_.status.artifact->revision, "main@sha1:" + fits);
  EXPECT_EQ(git_->fetches(), 3);
}

TEST_F(ReconcilerTest, SparseCheckoutOfAMissingDirectoryFails) {
  repo_.spec.sparse_checkout = std::vector<std::string>{"./deploy", "nope"};
  ReconcileOutcome o = reconciler_->Reconcile(repo_, ReconcileInputs{}, t0_);
  EXPECT_EQ(o.kind, ReconcileKind::kFailed);
  EXPECT_EQ(Cond(kFetchFailedCondition)->reason, kGitOperationFailedReason);
  EXPECT_TRUE(absl::StrContains(Cond(kFetchFailedCondition)->message,
                                "sparse checkout dir 'nope' does not exist in repository"))
      << Cond(kFetchFailedCondition)->message;

  repo_.spec.sparse_checkout = std::vector<std::string>{"./deploy"};
  ASSERT_TRUE(reconciler_->Reconcile(repo_, ReconcileInputs{}, t0_).ok());
  std::vector<std::string> entries = TarEntries(repo_.status.artifact->path);
  EXPECT_TRUE(Contains(entries, "deploy/app.yaml")) << absl::StrJoin(entries, ",");
  EXPECT_FALSE(Contains(entries, "README.md")) << absl::StrJoin(entries, ",");
  ASSERT_TRUE(repo_.status.observed_sparse_checkout.has_value());
  EXPECT_EQ(*repo_.status.observed_sparse_checkout, std::vector<std::string>{"./deploy"});
}

TEST_F(ReconcilerTest, VerificationOfAnUnsignedCommitFails) {
  repo_.spec.verify = GitRepositoryVerification{"HEAD", "keys"};
  ReconcileInputs in;
  in.verify_keys = absl::NotFoundError("failed to get secret 'flux-system/keys': not found");
  ReconcileOutcome o = reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(o.reason, "VerificationError");
  EXPECT_EQ(Cond(kSourceVerifiedCondition)->status, "False");
  EXPECT_EQ(Cond(kReadyCondition)->message,
            "public keys secret error: failed to get secret 'flux-system/keys': not found");

  in.verify_keys = std::map<std::string, std::string>{{"author.asc", "not a key"}};
  o = reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(o.kind, ReconcileKind::kFailed);
  EXPECT_EQ(o.reason, "InvalidCommitSignature");
  const Condition* verified = Cond(kSourceVerifiedCondition);
  ASSERT_NE(verified, nullptr);
  EXPECT_EQ(verified->status, "False");
  EXPECT_TRUE(absl::StartsWith(verified->message,
                               absl::StrCat("signature verification of commit '", c1_, "' failed")))
      << verified->message;
  EXPECT_EQ(Cond(kReadyCondition)->reason, "InvalidCommitSignature");
  EXPECT_FALSE(repo_.status.artifact.has_value()) << "an unverified commit is never stored";

  // Tag mode on a branch ref cannot work until the spec changes: Stalled.
  repo_.spec.verify->mode = "Tag";
  o = reconciler_->Reconcile(repo_, in, t0_);
  EXPECT_EQ(o.kind, ReconcileKind::kStalled);
  EXPECT_EQ(o.reason, "InvalidVerificationMode");
  EXPECT_EQ(Cond(kStalledCondition)->status, "True");
}

TEST_F(ReconcilerTest, DeleteRemovesArtifactsAndCacheAndPublishesDeleted) {
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  PushCommit("deploy/app.yaml", "kind: Secret\n");
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_ + absl::Seconds(1)).ok());
  const ArtifactStatus last = *repo_.status.artifact;
  ASSERT_EQ(storage_->List(KeyOf(repo_))->size(), 2u);
  const std::string cache = tmp_ + "/cache/gitrepository/flux-system/app";
  ASSERT_TRUE(fs::exists(cache));
  const uint64_t seq = HubSequence();

  ASSERT_TRUE(reconciler_->Delete(repo_).ok());
  EXPECT_TRUE(storage_->List(KeyOf(repo_))->empty());
  EXPECT_FALSE(fs::exists(storage_->root() + "/gitrepository/flux-system/app"));
  EXPECT_FALSE(fs::exists(cache));
  EXPECT_FALSE(HubCurrent().has_value());
  std::vector<v1::ArtifactEvent> events = EventsAfter(seq);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type(), v1::ArtifactEvent::DELETED);
  EXPECT_EQ(events[0].artifact().digest(), last.digest);
  EXPECT_EQ(events[0].artifact().source().name(), kName);

  // Deleting again is harmless and silent.
  EXPECT_TRUE(reconciler_->Delete(repo_).ok());
  EXPECT_EQ(HubSequence(), seq + 1);
}

TEST_F(ReconcilerTest, SuspendedSourceIsNotReconciled) {
  repo_.spec.suspend = true;
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  EXPECT_EQ(git_->resolves(), 0);
  EXPECT_FALSE(repo_.status.artifact.has_value());
  EXPECT_EQ(HubSequence(), 0u);
}

TEST_F(ReconcilerTest, RestoreAnnouncesOnlyArtifactsStillStored) {
  ASSERT_TRUE(reconciler_->Reconcile(repo_, GitCredentials{}, t0_).ok());
  const GitRepository saved = repo_;

  // A fresh hub, as after a restart.
  ArtifactEventHub hub2;
  ReconcilerOptions options;
  options.cache_root = tmp_ + "/cache";
  options.work_root = tmp_ + "/tmp";
  options.advertised_address = kAdvertised;
  GitRepositoryReconciler restarted(ReconcilerDeps{git_.get(), storage_.get(), &hub2}, options);
  EXPECT_TRUE(restarted.Restore(saved));
  v1::SourceReference ref;
  ref.set_kind(kGitRepositoryKind);
  ref.set_namespace_(kNamespace);
  ref.set_name(kName);
  auto current = hub2.Current(ref);
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->digest(), saved.status.artifact->digest);
  EXPECT_EQ(git_->resolves(), 0) << "restoring does not touch the remote";

  ArtifactEventHub hub3;
  GitRepositoryReconciler again(ReconcilerDeps{git_.get(), storage_.get(), &hub3}, options);
  ASSERT_TRUE(storage_->RemoveAll(KeyOf(repo_)).ok());
  EXPECT_FALSE(again.Restore(saved));
  EXPECT_FALSE(hub3.Current(ref).has_value());
  GitRepository no_artifact = saved;
  no_artifact.status.artifact.reset();
  EXPECT_FALSE(again.Restore(no_artifact));
}

}  // namespace
}  // namespace gitops::source
