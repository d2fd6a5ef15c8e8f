// Commit-to-stream latency of the source-controller in Kubernetes mode.
//
// A small repository (--files YAML files) is served by nginx + git
// http-backend on loopback; the real source-controller binary runs against
// test-apiserver with one GitRepository (interval 10m, so only the trigger starts a
// reconcile); this benchmark subscribes to WatchArtifacts over gRPC. Each
// run pushes a commit, then sets the reconcile.fluxcd.io/requestedAt
// annotation with a JSON merge PATCH straight to the API server (what Flux's
// notification-controller Receiver does on a push webhook) and measures
// PATCH sent -> ArtifactEvent with the new revision received on the stream.
//
// The peer does the same work with shell tools, timed from start to end:
// `git fetch` into a bare cache, `git archive | gzip -n`, `sha256sum`.
//
// Split, per run: PATCH -> API watch event (this benchmark's own watch on
// the object, next to the controller's); reconcile start and duration (from
// the controller's gotk_reconcile_duration_seconds_sum and the ms timestamp
// of its "stored artifact" log line); the in-progress status (Ready=Unknown
// on the watch); the ref check and the fetch as the git server logged them
// (nginx access log, ms); artifact stored (log line) -> ArtifactEvent, which
// the controller publishes after the final status patch; -> the status with
// the new revision on the watch.
//
//   bench_source_latency [--runs 20] [--files 20] [--flat-history] [--quick] [--verbose]
//
// With --runs 100 or more, the RSS row compares fetch 50 with the last one
// (e.g. --runs 500: is the controller flat from fetch 50 to 500?).
//
// Prints markdown rows: | benchmark | ours | peer | ours/peer | target |
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/source/kube_bench.h"
#include "bench/support/peer.h"
#include "bench/support/repo_content.h"
#include "common/kube/config.h"
#include "common/kube/http_kube_client.h"
#include "common/yaml/yaml.h"
#include "gitops/artifact/v1/artifact.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "test/apiserver/test_apiserver.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::bench {
namespace {

namespace t = gitops::testing;
namespace v1 = ::gitops::artifact::v1;
using json = nlohmann::json;

constexpr const char* kNamespace = kBenchNamespace;
constexpr char kName[] = "latency";
constexpr char kRequestedAt[] = "reconcile.fluxcd.io/requestedAt";

constexpr char kBench[] = "bench_source_latency";
[[noreturn]] void Die(const std::string& what) { gitops::bench::Die(kBench, what); }

// First time each value was seen; waiters block until a value shows up.
class Seen {
 public:
  void Record(const std::string& value, absl::Time at) {
    if (value.empty()) return;
    absl::MutexLock lock(&mu_);
    times_.emplace(value, at);
  }
  // The time `value` was first seen; nullopt after `timeout`.
  std::optional<absl::Time> Wait(const std::string& value, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto has = [&]() { return times_.count(value) > 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&has), timeout)) return std::nullopt;
    return times_.at(value);
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, absl::Time> times_;
};

// The status of the Ready condition, or "".
std::string ReadyStatus(const json& obj) {
  if (!obj.is_object() || !obj.contains("status") || !obj["status"].is_object()) return "";
  auto it = obj["status"].find("conditions");
  if (it == obj["status"].end() || !it->is_array()) return "";
  for (const json& c : *it) {
    if (common::StringAt(c, {"type"}) == "Ready") return common::StringAt(c, {"status"});
  }
  return "";
}

// The ms timestamp of the controller's "stored artifact for revision 'REV'"
// log line, or nullopt.
std::optional<absl::Time> StoredLogTime(const std::string& log, const std::string& revision) {
  std::string needle = absl::StrCat("stored artifact for revision '", revision, "'");
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, needle)) continue;
    size_t at = line.find("\"ts\":\"");
    if (at == absl::string_view::npos) return std::nullopt;
    at += 6;
    std::string ts(line.substr(at, line.find('"', at) - at));
    absl::Time parsed;
    std::string err;
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", ts, absl::UTCTimeZone(), &parsed, &err)) {
      return std::nullopt;
    }
    return parsed;
  }
  return std::nullopt;
}

struct Flags {
  int runs = 20;
  int files = 20;
  bool verbose = false;  // per-run git requests and timestamps on stderr
  // Each new commit replaces the previous one (force push), so the history
  // stays two commits long: memory that grows with the number of fetches is
  // told apart from memory that grows with the repository's history.
  bool flat_history = false;
};

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      flags.runs = std::atoi(argv[++i]);
    } else if (a == "--files" && i + 1 < argc) {
      flags.files = std::atoi(argv[++i]);
    } else if (a == "--quick") {
      flags.runs = 5;
    } else if (a == "--flat-history") {
      flags.flat_history = true;
    } else if (a == "--verbose") {
      flags.verbose = true;
    } else {
      Die("unknown flag " + a);
    }
  }
  UseFastTmpdir();
  const std::string root = t::MakeTempDir("bench-source-latency");

  auto api = StartApiServer();
  if (!api.ok()) Die(api.status().ToString());

  // The repository and its server.
  const std::string bare = root + "/srv/repo.git";
  auto work = t::GitWorkRepo::Create(root + "/work");
  if (!work.ok()) Die(work.status().ToString());
  std::vector<std::pair<std::string, std::string>> files;
  for (int f = 0; f < flags.files; ++f) {
    files.emplace_back(absl::StrFormat("apps/cm-%02d.yaml", f), ConfigMapFile(f, 0));
  }
  if (auto c = work->Commit("initial", files); !c.ok()) Die(c.status().ToString());
  if (auto s = t::InitBareRepo(bare); !s.ok()) Die(s.ToString());
  if (auto s = work->PushAll(bare); !s.ok()) Die(s.ToString());
  // Plain http (the CRD admits http, https and ssh URLs only).
  auto git_http = StartGitHttp(root + "/srv", root + "/git-http", 4);
  if (!git_http.ok()) Die(git_http.status().ToString());
  const std::string url = (*git_http)->Url("repo.git");

  // The controller and one GitRepository.
  auto controller = StartController((*api)->kubeconfig_path(), root + "/storage",
                                    root + "/source-controller.log", {"--log-level=info"});
  if (!controller.ok()) Die(controller.status().ToString());
  auto manifest = (*api)->WriteManifest(
      "latency.yaml",
      absl::StrCat("apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n"
                   "  name: ",
                   kName, "\n  namespace: ", kNamespace,
                   "\nspec:\n  interval: 10m\n  ref:\n    branch: main\n  url: ", url, "\n"));
  if (!manifest.ok()) Die(manifest.status().ToString());
  if (auto s = (*api)->Kubectl({"apply", "-f", *manifest}); !s.ok()) Die(s.status().ToString());
  if (auto s =
          (*api)->Kubectl({"wait", "--for=condition=Ready", absl::StrCat("gitrepository/", kName),
                           "-n", kNamespace, "--timeout=60s"});
      !s.ok()) {
    Die(absl::StrCat(s.status().ToString(), "\n", controller->proc->ReadLog()));
  }

  // Our own API client: the PATCH and a watch on the object.
  auto config = common::LoadKubeConfigFile((*api)->kubeconfig_path());
  if (!config.ok()) Die(config.status().ToString());
  config->qps = 1000;
  config->burst = 1000;
  auto kube = common::HttpKubeClient::Create(*config);
  if (!kube.ok()) Die(kube.status().ToString());
  if (auto g = (*kube)->Get(kGitRepositoryGvk, kNamespace, kName); !g.ok()) {
    Die(g.status().ToString());  // also warms discovery and the connection
  }
  std::atomic<bool> stop{false};
  // What the watch saw: "ann:<requestedAt>", "rev:<status.artifact.revision>"
  // (first time each appeared), and when Ready was Unknown (in progress).
  Seen annotation_seen, revision_seen, event_seen;
  absl::Mutex progress_mu;
  std::vector<absl::Time> progress_seen;
  std::thread watcher([&]() {
    // A separate client: the watch holds its connection.
    auto client = common::HttpKubeClient::Create(*config);
    if (!client.ok()) return;
    while (!stop.load()) {
      common::WatchOptions options;
      options.field_selector = absl::StrCat("metadata.name=", kName);
      options.cancel = &stop;
      (*client)
          ->Watch(kGitRepositoryGvk, kNamespace, options,
                  [&](const common::WatchEvent& e) {
                    absl::Time now = absl::Now();
                    annotation_seen.Record(
                        common::StringAt(e.object, {"metadata", "annotations", kRequestedAt}), now);
                    revision_seen.Record(
                        common::StringAt(e.object, {"status", "artifact", "revision"}), now);
                    if (ReadyStatus(e.object) == "Unknown") {
                      absl::MutexLock lock(&progress_mu);
                      progress_seen.push_back(now);
                    }
                    return !stop.load();
                  })
          .IgnoreError();
    }
  });

  // The subscriber.
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", controller->grpc_port),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::ArtifactService::NewStub(channel);
  grpc::ClientContext stream_context;
  v1::WatchArtifactsRequest request;
  request.set_kind("GitRepository");
  request.set_namespace_(kNamespace);
  request.set_name(kName);
  std::unique_ptr<grpc::ClientReader<v1::ArtifactEvent>> reader =
      stub->WatchArtifacts(&stream_context, request);
  std::thread subscriber([&]() {
    v1::ArtifactEvent event;
    while (reader->Read(&event)) {
      if (event.type() == v1::ArtifactEvent::UPDATED) {
        event_seen.Record(event.artifact().revision(), absl::Now());
      }
    }
  });
  auto first = work->RevParse("HEAD");
  if (!first.ok() || !event_seen.Wait("main@sha1:" + *first, absl::Seconds(10))) {
    Die("no ArtifactEvent for the initial revision on the stream");
  }

  // The peer's bare cache, filled with the same first commit.
  const std::string peer = root + "/peer.git";
  if (auto s = t::InitBareRepo(peer); !s.ok()) Die(s.ToString());
  const std::string peer_cmd = absl::StrCat("git -C '", peer, "' fetch -q '", url,
                                            "' +refs/heads/main:refs/heads/main && git -C '", peer,
                                            "' archive --format=tar main | gzip -n > '", root,
                                            "/peer.tar.gz' && sha256sum '", root, "/peer.tar.gz'");
  RunPeerShell(kBench, peer_cmd);

  // RSS is compared from fetch rss_from on: the first tens of fetches warm
  // the allocator, libgit2 and the gRPC/HTTP connections.
  const int rss_from = flags.runs >= 100 ? 50 : 0;
  absl::StatusOr<ProcSample> rss_before;
  std::vector<double> total, to_watch, to_start, to_progress, ls_remote, fetch, pack, publish,
      to_status, reconcile, peer_ms;
  for (int i = 0; i <= flags.runs; ++i) {  // run 0 warms up and is not counted
    int f = i % flags.files;
    if (flags.flat_history && i > 0) {
      if (auto r = t::Git(work->dir(), {"reset", "-q", "--soft", "HEAD~1"}); !r.ok()) {
        Die(r.status().ToString());
      }
    }
    auto sha = work->Commit(absl::StrCat("change ", i),
                            {{absl::StrFormat("apps/cm-%02d.yaml", f), ConfigMapFile(f, i + 1)}});
    if (!sha.ok()) Die(sha.status().ToString());
    if (auto s = work->Push(bare, "main", "refs/heads/main"); !s.ok()) Die(s.ToString());
    const std::string revision = "main@sha1:" + *sha;
    auto before = ScrapeMetrics(controller->metrics_port);
    if (!before.ok()) Die(before.status().ToString());
    const std::map<std::string, std::string> labels = {{"name", kName}};
    const double sum_before = SumMetric(*before, "gotk_reconcile_duration_seconds_sum", labels);

    const absl::Time now = absl::Now();
    const std::string requested =
        absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", now, absl::UTCTimeZone());
    json patch = {{"metadata", {{"annotations", {{kRequestedAt, requested}}}}}};
    const absl::Time t0 = absl::Now();
    auto patched =
        (*kube)->Patch(kGitRepositoryGvk, kNamespace, kName, common::PatchType::kMerge, patch);
    if (!patched.ok()) Die(patched.status().ToString());
    auto event_at = event_seen.Wait(revision, absl::Seconds(10));
    if (!event_at) Die("no ArtifactEvent for " + revision + "\n" + controller->proc->ReadLog());
    auto status_at = revision_seen.Wait(revision, absl::Seconds(10));
    auto watch_at = annotation_seen.Wait(requested, absl::Seconds(10));
    if (!status_at || !watch_at) Die("watch did not see the annotation or the status write");
    std::optional<absl::Time> progress_at;
    {
      absl::MutexLock lock(&progress_mu);
      for (absl::Time at : progress_seen) {
        if (at > t0 && at < *status_at) {
          progress_at = at;
          break;
        }
      }
    }

    auto after = ScrapeMetrics(controller->metrics_port);
    if (!after.ok()) Die(after.status().ToString());
    const double rec_ms =
        (SumMetric(*after, "gotk_reconcile_duration_seconds_sum", labels) - sum_before) * 1000;
    auto stored_at = StoredLogTime(controller->proc->ReadLog(), revision);

    // The peer, on the same new commit.
    const absl::Time p0 = absl::Now();
    RunPeerShell(kBench, peer_cmd);
    const double p_ms = absl::ToDoubleMilliseconds(absl::Now() - p0);

    if (i == rss_from) {
      rss_before = SampleProcess(controller->proc->pid());
      if (!rss_before.ok()) Die(rss_before.status().ToString());
    }
    if (flags.runs >= 1000 && i % 250 == 0) {  // the curve of a long run, on stderr
      if (auto at = SampleProcess(controller->proc->pid()); at.ok()) {
        std::fprintf(stderr, "fetch %d: RSS %.2f MB, anonymous %.2f MB\n", i, at->rss_mb,
                     at->rss_anon_mb);
      }
    }
    if (i == 0) continue;
    auto ms = [&](absl::Time at) { return absl::ToDoubleMilliseconds(at - t0); };
    total.push_back(ms(*event_at));
    to_watch.push_back(ms(*watch_at));
    to_status.push_back(ms(*status_at));
    reconcile.push_back(rec_ms);
    // The server's view of the reconcile's git requests (ms timestamps):
    // the ref check's GET info/refs, then the fetch's GET and POST.
    std::optional<absl::Time> check_end, fetch_end;
    for (const auto& r : (*git_http)->Requests()) {
      if (r.start < t0 - absl::Milliseconds(1) || r.end > *event_at + absl::Milliseconds(1)) {
        continue;
      }
      if (!check_end && absl::StrContains(r.line, "/info/refs?service=git-upload-pack")) {
        check_end = r.end;
      }
      if (absl::StrContains(r.line, "POST ") && absl::StrContains(r.line, "/git-upload-pack")) {
        fetch_end = r.end;
      }
    }
    if (flags.verbose) {
      for (const auto& r : (*git_http)->Requests()) {
        if (r.end < t0 - absl::Milliseconds(1)) continue;
        std::fprintf(stderr, "run %d: %s start +%.0f ms end +%.0f ms\n", i, r.line.c_str(),
                     absl::ToDoubleMilliseconds(r.start - t0),
                     absl::ToDoubleMilliseconds(r.end - t0));
      }
      std::fprintf(stderr, "run %d: event +%.1f ms, stored log +%.0f ms, reconcile %.1f ms\n", i,
                   absl::ToDoubleMilliseconds(*event_at - t0),
                   stored_at ? absl::ToDoubleMilliseconds(*stored_at - t0) : -1.0, rec_ms);
    }
    if (stored_at) {
      // The "stored artifact" line is logged just before the reconcile
      // returns and its duration is recorded: start = log time - duration
      // (the log has ms resolution).
      double start = ms(*stored_at) - rec_ms;
      to_start.push_back(start);
      if (progress_at) to_progress.push_back(ms(*progress_at) - start);
      if (check_end && fetch_end) {
        ls_remote.push_back(ms(*check_end) - start);
        fetch.push_back(ms(*fetch_end) - ms(*check_end));
        pack.push_back(ms(*stored_at) - ms(*fetch_end));
      }
      publish.push_back(ms(*event_at) - ms(*stored_at));
    }
    peer_ms.push_back(p_ms);
    absl::SleepFor(absl::Milliseconds(100));
  }

  auto rss_after = SampleProcess(controller->proc->pid());
  if (!rss_after.ok()) Die(rss_after.status().ToString());
  stop.store(true);
  stream_context.TryCancel();
  subscriber.join();
  watcher.join();

  const double p50 = Quantile(total, 0.5), p95 = Quantile(total, 0.95), max = Quantile(total, 1);
  const double pp50 = Quantile(peer_ms, 0.5), pp95 = Quantile(peer_ms, 0.95),
               pmax = Quantile(peer_ms, 1);
  const std::string what = absl::StrCat(
      "source-controller (Kubernetes mode): push, requestedAt PATCH (as Flux's Receiver does) -> "
      "ArtifactEvent on WatchArtifacts; ",
      flags.files, "-file repo over http (nginx + git http-backend), ", total.size(), " runs");
  const std::string peer_name = "git fetch into bare cache + git archive | gzip -n + sha256sum";
  for (auto [label, ours, theirs] : {std::tuple<const char*, double, double>{"p50", p50, pp50},
                                     {"p95", p95, pp95},
                                     {"max", max, pmax}}) {
    std::printf("| %s, %s | %s | %s: %s | %.2f | < 200 ms |\n", what.c_str(), label,
                FormatMs(ours).c_str(), peer_name.c_str(), FormatMs(theirs).c_str(), ours / theirs);
  }
  auto split = [&](const char* stage, const std::vector<double>& v) {
    std::printf("| latency split: %s | p50 %s, p95 %s | | | |\n", stage,
                FormatMs(Quantile(v, 0.5)).c_str(), FormatMs(Quantile(v, 0.95)).c_str());
  };
  split("PATCH sent -> API watch event (a second watcher beside the controller's)", to_watch);
  split("PATCH sent -> reconcile start (watch delivery, queue, object load)", to_start);
  split("reconcile start -> in-progress status on the watch (Ready=Unknown, as Flux)", to_progress);
  split("reconcile start -> ref check done (GET info/refs ends, per the git server's log)",
        ls_remote);
  split("ref check done -> fetch done (GET info/refs + POST git-upload-pack, server's log)", fetch);
  split("fetch done -> artifact stored (checkout, pack, sha256, store, GC; controller log)", pack);
  split("artifact stored -> ArtifactEvent received (final status patch, then publish, stream)",
        publish);
  split("PATCH sent -> status with the new revision on the watch", to_status);
  split("the reconcile as the controller times it (gotk_reconcile_duration_seconds)", reconcile);
  const int fetches = flags.runs - rss_from;
  std::printf(
      "| source-controller RSS growth from fetch %d to %d (one new commit each%s, over http) | "
      "%+.1f KB per fetch (%.1f -> %.1f MB; anonymous %+.1f KB per fetch, %.1f -> %.1f MB) | | | "
      "~0 (flat within noise) |\n",
      rss_from, flags.runs, flags.flat_history ? ", replacing the last" : "",
      (rss_after->rss_mb - rss_before->rss_mb) * 1024 / fetches, rss_before->rss_mb,
      rss_after->rss_mb, (rss_after->rss_anon_mb - rss_before->rss_anon_mb) * 1024 / fetches,
      rss_before->rss_anon_mb, rss_after->rss_anon_mb);
  std::fflush(stdout);

  controller->proc.reset();
  git_http->reset();
  api->reset();
  t::RemoveTree(root);
  return 0;
}

}  // namespace
}  // namespace gitops::bench

int main(int argc, char** argv) { return gitops::bench::Main(argc, argv); }
