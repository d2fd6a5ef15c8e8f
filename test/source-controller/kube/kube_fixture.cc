#include "test/source-controller/kube/kube_fixture.h"

#include <signal.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;

// True when the binary has --storage-addr (an HTTP artifact server that
// would otherwise bind a fixed port and clash between parallel tests).
bool HasStorageAddrFlag() {
  static const bool has = [] {
    auto out = RunCommand({BinaryPath("source-controller"), "--help"}, absl::Seconds(20));
    std::string text = out.ok() ? *out : std::string(out.status().message());
    return absl::StrContains(text, "--storage-addr ") ||
           absl::StrContains(text, "--storage-addr\n");
  }();
  return has;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestRepo>> TestRepo::Create(const std::string& root,
                                                           const std::string& name) {
  std::unique_ptr<TestRepo> repo(new TestRepo());
  repo->bare_ = absl::StrCat(root, "/", name);
  if (absl::Status s = InitBareRepo(repo->bare_); !s.ok()) return s;
  auto work = GitWorkRepo::Create(absl::StrCat(root, "/", name, "-work"), "main");
  if (!work.ok()) return work.status();
  repo->work_ = std::make_unique<GitWorkRepo>(std::move(*work));
  return repo;
}

absl::StatusOr<std::string> TestRepo::Commit(
    const std::string& message, const std::vector<std::pair<std::string, std::string>>& files) {
  auto sha = work_->Commit(message, files);
  if (!sha.ok()) return sha.status();
  if (absl::Status s = Push(); !s.ok()) return s;
  return sha;
}

absl::StatusOr<std::string> TestRepo::Git(const std::vector<std::string>& args) {
  return testing::Git(work_->dir(), args);
}

absl::Status TestRepo::Push() { return work_->PushAll(bare_); }

void SourceKubeTest::SetUp() {
  dir_ = MakeTempDir("source-kube");
  storage_ = dir_ + "/storage";
  auto api = TestApiServer::StartWithCrds();
  ASSERT_TRUE(api.ok()) << api.status();
  api_ = std::move(*api);
  auto ns = api_->Kubectl({"create", "namespace", kNamespace});
  ASSERT_TRUE(ns.ok()) << ns.status();
}

void SourceKubeTest::CreateRepo() {
  auto repo = TestRepo::Create(dir_ + "/srv", "repo.git");
  ASSERT_TRUE(repo.ok()) << repo.status();
  repo_ = std::move(*repo);
}

void SourceKubeTest::StartHttp() {
  auto http = GitHttpServer::Start(dir_ + "/srv", GitHttpServer::Options{});
  ASSERT_TRUE(http.ok()) << http.status();
  http_ = std::move(*http);
  url_ = http_->Url("repo.git");
}

void SourceKubeTest::TearDown() {
  controller_.reset();  // SIGKILL: nothing holds the mount any more
  http_.reset();
  if (!mount_.empty()) {
    auto out = RunCommand({"umount", mount_});
    if (!out.ok()) out = RunCommand({"umount", "-l", mount_});
    EXPECT_TRUE(out.ok()) << "cannot unmount " << mount_ << ": " << out.status();
  }
  api_.reset();
  RemoveTree(dir_);
}

void SourceKubeTest::MountTmpfs(int64_t bytes) {
  const std::string path = dir_ + "/tmpfs";
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  auto out =
      RunCommand({"mount", "-t", "tmpfs", "-o", absl::StrCat("size=", bytes), "tmpfs", path});
  ASSERT_TRUE(out.ok()) << "this test must mount a tmpfs (root with CAP_SYS_ADMIN): "
                        << out.status();
  mount_ = path;
}

void SourceKubeTest::Remount(const std::string& mode) {
  ASSERT_FALSE(mount_.empty());
  auto out = RunCommand({"mount", "-o", "remount," + mode, mount_});
  ASSERT_TRUE(out.ok()) << "remount " << mode << ": " << out.status();
}

void SourceKubeTest::ExpectNothingHalfWritten() {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> bad;
  const fs::path root = fs::path(storage_) / "gitrepository";
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string name = it->path().filename().string();
    const bool artifact = name.size() == 64 + 7 && absl::EndsWith(name, ".tar.gz") &&
                          name.find_first_not_of("0123456789abcdef") == 64;
    if (!artifact) bad.push_back(it->path().string());
  }
  std::error_code work_ec;
  for (fs::directory_iterator it(fs::path(storage_) / ".work", work_ec), end; !work_ec && it != end;
       it.increment(work_ec)) {
    bad.push_back(it->path().string());
  }
  std::error_code cache_ec;
  for (fs::recursive_directory_iterator it(fs::path(storage_) / ".git-cache", cache_ec), end;
       !cache_ec && it != end; it.increment(cache_ec)) {
    const std::string name = it->path().filename().string();
    if (absl::StartsWith(name, "tmp_") || absl::StartsWith(name, "pack_git2_") ||
        absl::EndsWith(name, ".lock")) {
      bad.push_back(it->path().string());
    }
  }
  EXPECT_TRUE(bad.empty()) << "left behind: " << absl::StrJoin(bad, ", ");
}

void SourceKubeTest::SuspendAndSettle(const std::string& name) {
  ASSERT_NE(controller_, nullptr);
  auto count = [&]() {
    size_t n = 0;
    for (absl::string_view line : absl::StrSplit(controller_->ReadLog(), '\n')) {
      if (absl::StrContains(line, "reconciliation is suspended") &&
          absl::StrContains(line, absl::StrCat("\"name\":\"", name, "\""))) {
        ++n;
      }
    }
    return n;
  };
  const size_t before = count();
  auto out = Kubectl({"patch", "gitrepository", name, "-n", kNamespace, "--type", "merge", "-p",
                      R"({"spec":{"suspend":true}})"});
  ASSERT_TRUE(out.ok()) << out.status();
  const absl::Time end = absl::Now() + absl::Seconds(20);
  while (count() == before && absl::Now() < end) absl::SleepFor(absl::Milliseconds(50));
  ASSERT_GT(count(), before) << controller_->ReadLog();
}

void SourceKubeTest::Resume(const std::string& name) {
  auto out = Kubectl({"patch", "gitrepository", name, "-n", kNamespace, "--type", "merge", "-p",
                      R"({"spec":{"suspend":false}})"});
  ASSERT_TRUE(out.ok()) << out.status();
}

void SourceKubeTest::StartController(const std::vector<std::string>& extra_args,
                                     const std::string& storage) {
  if (!storage.empty()) storage_ = storage;
  std::vector<std::string> args = {
      BinaryPath("source-controller"),  "--kubeconfig=" + api_->kubeconfig_path(),
      "--storage-path=" + storage_,     "--grpc-addr=127.0.0.1:0",
      "--storage-adv-addr=127.0.0.1:1", "--metrics-addr=127.0.0.1:0",
      "--health-addr=127.0.0.1:0",      "--concurrent=4"};
  if (HasStorageAddrFlag()) args.push_back("--storage-addr=127.0.0.1:0");
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::string log = absl::StrCat(dir_, "/source-controller-", ++starts_, ".log");
  logs_.push_back(log);
  auto proc = Subprocess::Start(args, {}, log);
  ASSERT_TRUE(proc.ok()) << proc.status();
  controller_ = std::move(*proc);
  auto port =
      controller_->WaitForLogField("source-controller started", "grpc_port", absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status() << controller_->ReadLog();
  grpc_port_ = *port;
}

void SourceKubeTest::StopController() {
  if (controller_ == nullptr) return;
  controller_->Signal(SIGTERM);
  auto code = controller_->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << controller_->ReadLog();
  controller_.reset();
}

void SourceKubeTest::CreateSecret(const std::string& name,
                                  const std::map<std::string, std::string>& data) {
  std::vector<std::string> args = {"create", "secret", "generic", name, "-n", kNamespace};
  for (const auto& [key, value] : data) {
    std::string path = absl::StrCat(dir_, "/secrets/", name, "/", key);
    ASSERT_TRUE(WriteFile(path, value).ok());
    args.push_back(absl::StrCat("--from-file=", key, "=", path));
  }
  auto out = api_->Kubectl(args);
  ASSERT_TRUE(out.ok()) << out.status();
}

std::string SourceKubeTest::GitRepositoryYaml(const std::string& name, const std::string& url,
                                              const std::string& spec_extra) {
  // A JSON string is a YAML double-quoted scalar: any URL survives as is.
  return absl::StrCat(
      "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: ", name,
      "\n  namespace: ", kNamespace, "\nspec:\n  url: ", json(url).dump(), "\n", spec_extra);
}

absl::StatusOr<std::string> SourceKubeTest::TryApply(const std::string& yaml) {
  static int n = 0;
  auto path = api_->WriteManifest(absl::StrCat("manifest-", ++n, ".yaml"), yaml);
  if (!path.ok()) return path.status();
  return api_->Kubectl({"apply", "-f", *path});
}

void SourceKubeTest::Apply(const std::string& name, const std::string& url,
                           const std::string& spec_extra) {
  auto applied = TryApply(GitRepositoryYaml(name, url, spec_extra));
  ASSERT_TRUE(applied.ok()) << applied.status();
}

void SourceKubeTest::RequestReconcile(const std::string& name, const std::string& value) {
  auto out = api_->Kubectl({"annotate", "--overwrite", "gitrepository/" + name, "-n", kNamespace,
                            "reconcile.fluxcd.io/requestedAt=" + value});
  ASSERT_TRUE(out.ok()) << out.status();
}

nlohmann::json SourceKubeTest::Get(const std::string& name) const {
  auto out = api_->Kubectl({"get", "gitrepository", name, "-n", kNamespace, "-o", "json"});
  if (!out.ok()) return json();
  return json::parse(*out, nullptr, false);
}

std::string SourceKubeTest::Str(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* p : path) {
    if (!at->is_object() || !at->contains(p)) return "";
    at = &(*at)[p];
  }
  return at->is_string() ? at->get<std::string>() : "";
}

int64_t SourceKubeTest::Int(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* p : path) {
    if (!at->is_object() || !at->contains(p)) return -1;
    at = &(*at)[p];
  }
  return at->is_number_integer() ? at->get<int64_t>() : -1;
}

nlohmann::json SourceKubeTest::Condition(const json& obj, const std::string& type) {
  if (!obj.is_object() || !obj.contains("status") || !obj["status"].is_object() ||
      !obj["status"].contains("conditions") || !obj["status"]["conditions"].is_array()) {
    return json::object();
  }
  for (const auto& c : obj["status"]["conditions"]) {
    if (c.is_object() && c.value("type", "") == type) return c;
  }
  return json::object();
}

std::string SourceKubeTest::ControllerLogs() const {
  std::string all;
  for (const std::string& path : logs_) {
    auto text = ReadFile(path);
    if (text.ok()) absl::StrAppend(&all, *text);
  }
  return all;
}

nlohmann::json SourceKubeTest::WaitFor(const std::string& name,
                                       const std::function<bool(const json&)>& pred,
                                       absl::Duration timeout) {
  absl::Time end = absl::Now() + timeout;
  json obj;
  while (absl::Now() < end) {
    obj = Get(name);
    if (pred(obj)) return obj;
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::string log = controller_ != nullptr ? controller_->ReadLog() : ControllerLogs();
  if (log.size() > 20000) log = "..." + log.substr(log.size() - 20000);
  ADD_FAILURE() << "timed out after " << absl::FormatDuration(timeout)
                << " waiting on gitrepository/" << name << ": " << obj.dump()
                << "\ncontroller log (tail):\n"
                << log;
  return obj;
}

nlohmann::json SourceKubeTest::WaitForRevision(const std::string& name, const std::string& revision,
                                               absl::Duration timeout) {
  json obj = WaitFor(
      name,
      [&](const json& o) {
        return Revision(o) == revision && Condition(o, "Ready").value("status", "") == "True";
      },
      timeout);
  EXPECT_EQ(Condition(obj, "Ready").value("reason", ""), "Succeeded") << obj.dump();
  return obj;
}

nlohmann::json SourceKubeTest::ExpectFailure(const std::string& name, const ExpectedFailure& want,
                                             absl::Duration timeout) {
  SCOPED_TRACE("gitrepository/" + name);
  json obj = WaitFor(
      name,
      [&](const json& o) {
        json ready = Condition(o, "Ready");
        return ready.value("status", "") == "False" &&
               (want.reason.empty() || ready.value("reason", "") == want.reason) &&
               Condition(o, want.condition).value("status", "") == "True";
      },
      timeout);
  json ready = Condition(obj, "Ready");
  json failed = Condition(obj, want.condition);
  EXPECT_EQ(failed.value("status", ""), "True") << obj.dump();
  // The failure condition and Ready carry the same reason and message.
  EXPECT_EQ(failed.value("reason", ""), ready.value("reason", "")) << obj.dump();
  EXPECT_EQ(failed.value("message", ""), ready.value("message", "")) << obj.dump();
  if (!want.reason.empty()) {
    EXPECT_EQ(ready.value("reason", ""), want.reason) << obj.dump();
  }
  const std::string message = ready.value("message", "");
  std::printf("gitrepository/%s: Ready=False %s: %s\n", name.c_str(),
              ready.value("reason", "").c_str(), message.c_str());
  for (const std::string& part : want.message_parts) {
    EXPECT_TRUE(absl::StrContains(message, part))
        << "Ready message \"" << message << "\" lacks \"" << part << "\"";
  }
  // Flux's runtime: a stalling error marks Stalled and records the
  // generation as observed; any other error keeps Reconciling (with
  // ProgressingWithRetry) and retries with backoff.
  if (want.stalled) {
    json stalled = Condition(obj, "Stalled");
    EXPECT_EQ(stalled.value("status", ""), "True") << obj.dump();
    EXPECT_EQ(stalled.value("reason", ""), ready.value("reason", "")) << obj.dump();
    EXPECT_FALSE(HasCondition(obj, "Reconciling")) << obj.dump();
    EXPECT_EQ(Int(obj, {"status", "observedGeneration"}), Int(obj, {"metadata", "generation"}))
        << obj.dump();
  } else {
    EXPECT_FALSE(HasCondition(obj, "Stalled")) << obj.dump();
    json reconciling = Condition(obj, "Reconciling");
    EXPECT_EQ(reconciling.value("status", ""), "True") << obj.dump();
    EXPECT_EQ(reconciling.value("reason", ""), "ProgressingWithRetry") << obj.dump();
  }
  // The Warning Event carries the same reason.
  if (!ready.value("reason", "").empty()) {
    json event = WaitForEvent(name, "Warning", ready.value("reason", ""));
    if (!event.is_null()) {
      EXPECT_FALSE(event.value("message", "").empty()) << event.dump();
      EXPECT_EQ(Str(event, {"source", "component"}), "source-controller") << event.dump();
    }
  }
  return obj;
}

std::vector<nlohmann::json> SourceKubeTest::EventsFor(const std::string& name) const {
  std::vector<json> out;
  auto text = api_->Kubectl({"get", "events", "-n", kNamespace, "-o", "json"});
  if (!text.ok()) return out;
  json list = json::parse(*text, nullptr, false);
  if (!list.is_object() || !list.contains("items")) return out;
  for (const json& e : list["items"]) {
    if (Str(e, {"involvedObject", "kind"}) == "GitRepository" &&
        Str(e, {"involvedObject", "name"}) == name) {
      out.push_back(e);
    }
  }
  return out;
}

nlohmann::json SourceKubeTest::WaitForEvent(const std::string& name, const std::string& type,
                                            const std::string& reason, absl::Duration timeout) {
  absl::Time end = absl::Now() + timeout;
  std::vector<json> events;
  while (absl::Now() < end) {
    events = EventsFor(name);
    for (const json& e : events) {
      if (e.value("type", "") == type && e.value("reason", "") == reason) return e;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::string seen;
  for (const json& e : events) absl::StrAppend(&seen, e.dump(), "\n");
  ADD_FAILURE() << "no " << type << " Event with reason " << reason << " for gitrepository/" << name
                << "; events:\n"
                << seen;
  return json();
}

void SourceKubeTest::ExpectNoLeak(const std::vector<std::string>& secrets) const {
  auto repos = api_->Kubectl({"get", "gitrepositories", "-A", "-o", "json"});
  ASSERT_TRUE(repos.ok()) << repos.status();
  std::string statuses;
  json list = json::parse(*repos, nullptr, false);
  for (const json& item : list["items"]) {
    if (item.contains("status")) absl::StrAppend(&statuses, item["status"].dump(), "\n");
  }
  auto events = api_->Kubectl({"get", "events", "-A", "-o", "json"});
  ASSERT_TRUE(events.ok()) << events.status();
  const std::string logs = ControllerLogs();
  for (const std::string& secret : secrets) {
    ASSERT_GE(secret.size(), 6u) << "too short to search for: " << secret;
    EXPECT_FALSE(absl::StrContains(statuses, secret)) << "status leaks " << secret;
    EXPECT_FALSE(absl::StrContains(*events, secret)) << "an Event leaks " << secret;
    EXPECT_FALSE(absl::StrContains(logs, secret)) << "the controller log leaks " << secret;
  }
}

absl::StatusOr<std::string> SourceKubeTest::Fetch(const std::string& name,
                                                  const std::string& out) const {
  return RunCommand({BinaryPath("kustomize-controller"), "fetch",
                     absl::StrCat("--source-addr=127.0.0.1:", grpc_port_),
                     absl::StrCat("--namespace=", kNamespace), "--name=" + name, out},
                    absl::Seconds(60));
}

}  // namespace gitops::testing
