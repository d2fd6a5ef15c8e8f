// Steady state of the source-controller in Kubernetes mode with many
// GitRepositories: --objects GitRepositories (interval 1m) spread over
// --repos small repositories served over http (nginx + git http-backend)
// on loopback, against
// test-apiserver. Applies them all with kubectl, waits until all are Ready,
// then observes for --observe-seconds:
//   - source-controller CPU seconds per minute (/proc/<pid>/stat), peak RSS
//     (VmHWM) and steady RSS (VmRSS, sampled every 2 s);
//   - reconciles per minute (controller_runtime_reconcile_total) and API
//     requests per reconcile (rest_client_requests_total{code,method}),
//     both from the controller's /metrics;
//   - git remote checks per minute, counted by the server (nginx's access
//     log: one GET .../info/refs?service=git-upload-pack per check);
//   - test-apiserver's and the git server's own CPU, test-apiserver's RSS.
// Memory is compared with Flux's 1 GiB per-controller limit (the spec of
// fluxcd/flux-benchmark); the peer for CPU is what the servers spend.
//
//   bench_source_scale [--objects 1000] [--repos 10] [--observe-seconds 180]
//                      [--concurrent 10] [--quick]   (--quick: 200 objects, 60 s)
//
// Prints markdown rows: | benchmark | ours | peer | ours/peer | target |
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/source/kube_bench.h"
#include "common/kube/config.h"
#include "common/kube/http_kube_client.h"
#include "common/yaml/yaml.h"
#include "test/apiserver/test_apiserver.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::bench {
namespace {

namespace t = gitops::testing;
using json = nlohmann::json;

constexpr const char* kNamespace = kBenchNamespace;

[[noreturn]] void Die(const std::string& what) { gitops::bench::Die("bench_source_scale", what); }

struct Flags {
  int objects = 1000;
  int repos = 10;
  int observe_seconds = 180;
  int concurrent = 10;
  int ready_timeout_seconds = 240;
};

// Ready=True with an artifact, for the current generation.
bool IsReady(const json& obj) {
  if (common::StringAt(obj, {"status", "artifact", "revision"}).empty()) return false;
  const json* conds = nullptr;
  if (obj.contains("status") && obj["status"].is_object() && obj["status"].contains("conditions") &&
      obj["status"]["conditions"].is_array()) {
    conds = &obj["status"]["conditions"];
  }
  if (conds == nullptr) return false;
  for (const json& c : *conds) {
    if (common::StringAt(c, {"type"}) == "Ready") return common::StringAt(c, {"status"}) == "True";
  }
  return false;
}

// How many of the GitRepositories are Ready (one List).
absl::StatusOr<int> CountReady(common::KubeClient& kube) {
  auto list = kube.List(kGitRepositoryGvk, kNamespace, {});
  if (!list.ok()) return list.status();
  int ready = 0;
  if (list->contains("items") && (*list)["items"].is_array()) {
    for (const json& item : (*list)["items"]) ready += IsReady(item) ? 1 : 0;
  }
  return ready;
}

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// RSS samples of one process over time.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid) : pid_(pid), thread_([this]() { Loop(); }) {}
  ~RssSampler() {
    stop_.store(true);
    thread_.join();
  }
  // (seconds since `from`, RSS MB) samples taken at or after `from`.
  std::vector<std::pair<double, double>> Since(absl::Time from) {
    absl::MutexLock lock(&mu_);
    std::vector<std::pair<double, double>> out;
    for (const auto& [at, mb] : samples_) {
      if (at >= from) out.emplace_back(absl::ToDoubleSeconds(at - from), mb);
    }
    return out;
  }

 private:
  void Loop() {
    while (!stop_.load()) {
      auto s = SampleProcess(pid_);
      if (s.ok()) {
        absl::MutexLock lock(&mu_);
        samples_.emplace_back(absl::Now(), s->rss_mb);
      }
      for (int i = 0; i < 20 && !stop_.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
    }
  }
  pid_t pid_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::vector<std::pair<absl::Time, double>> samples_;
  std::thread thread_;
};

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--objects") {
      flags.objects = next();
    } else if (a == "--repos") {
      flags.repos = next();
    } else if (a == "--observe-seconds") {
      flags.observe_seconds = next();
    } else if (a == "--concurrent") {
      flags.concurrent = next();
    } else if (a == "--quick") {
      flags.objects = 200;
      flags.observe_seconds = 60;
      flags.ready_timeout_seconds = 120;
    } else {
      Die("unknown flag " + a);
    }
  }
  UseFastTmpdir();
  const std::string root = t::MakeTempDir("bench-source-scale");

  auto api = StartApiServer();
  if (!api.ok()) Die(api.status().ToString());
  const pid_t api_pid = FindChild("test-apiserver");
  if (api_pid < 0) Die("cannot find the test-apiserver process");

  // A handful of small repositories.
  for (int r = 0; r < flags.repos; ++r) {
    auto work = t::GitWorkRepo::Create(absl::StrCat(root, "/work-", r));
    if (!work.ok()) Die(work.status().ToString());
    std::vector<std::pair<std::string, std::string>> files;
    for (int f = 0; f < 10; ++f) {
      files.emplace_back(absl::StrFormat("apps/cm-%02d.yaml", f),
                         absl::StrCat("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-", f,
                                      "\ndata:\n  repo: \"", r, "\"\n"));
    }
    if (auto c = work->Commit("initial", files); !c.ok()) Die(c.status().ToString());
    const std::string bare = absl::StrCat(root, "/srv/repo-", r, ".git");
    if (auto s = t::InitBareRepo(bare); !s.ok()) Die(s.ToString());
    if (auto s = work->PushAll(bare); !s.ok()) Die(s.ToString());
  }
  // Plain http (the CRD admits http, https and ssh URLs only); the access
  // log counts ref checks and fetches.
  auto git_http = StartGitHttp(root + "/srv", root + "/git-http", 8);
  if (!git_http.ok()) Die(git_http.status().ToString());

  auto controller =
      StartController((*api)->kubeconfig_path(), root + "/storage", root + "/source-controller.log",
                      {"--log-level=info", absl::StrCat("--concurrent=", flags.concurrent)});
  if (!controller.ok()) Die(controller.status().ToString());
  const pid_t controller_pid = controller->proc->pid();
  RssSampler rss(controller_pid);

  // Our client for polling readiness (not used while observing).
  auto config = common::LoadKubeConfigFile((*api)->kubeconfig_path());
  if (!config.ok()) Die(config.status().ToString());
  config->qps = 1000;
  config->burst = 1000;
  auto kube = common::HttpKubeClient::Create(*config);
  if (!kube.ok()) Die(kube.status().ToString());

  std::string manifest;
  for (int i = 0; i < flags.objects; ++i) {
    absl::StrAppend(
        &manifest, "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n",
        "metadata:\n  name: ", absl::StrFormat("repo-%04d", i), "\n  namespace: ", kNamespace,
        "\nspec:\n  interval: 1m\n  ref:\n    branch: main\n  url: ",
        (*git_http)->Url(absl::StrCat("repo-", i % flags.repos, ".git")), "\n");
  }
  auto path = (*api)->WriteManifest("repos.yaml", manifest);
  if (!path.ok()) Die(path.status().ToString());

  // The idle controller, before any object exists.
  absl::SleepFor(absl::Seconds(1));
  auto idle = SampleProcess(controller_pid);
  if (!idle.ok()) Die(idle.status().ToString());

  // Apply, then wait for all Ready.
  const absl::Time apply_start = absl::Now();
  if (auto s = (*api)->Kubectl({"apply", "-f", *path}, absl::Seconds(600)); !s.ok()) {
    Die(s.status().ToString());
  }
  const double apply_s = absl::ToDoubleSeconds(absl::Now() - apply_start);
  int ready = 0;
  const absl::Time ready_deadline = apply_start + absl::Seconds(flags.ready_timeout_seconds);
  while (absl::Now() < ready_deadline) {
    auto n = CountReady(**kube);
    if (n.ok()) ready = *n;
    if (ready == flags.objects) break;
    absl::SleepFor(absl::Seconds(1));
  }
  const absl::Time ready_at = absl::Now();
  const double ready_s = absl::ToDoubleSeconds(ready_at - apply_start);
  if (ready < flags.objects) {
    std::fprintf(stderr, "bench_source_scale: only %d of %d Ready after %.0f s; observing anyway\n",
                 ready, flags.objects, ready_s);
  }

  // Observe: counters at both ends, nothing else touching the API server.
  auto m0 = ScrapeMetrics(controller->metrics_port);
  if (!m0.ok()) Die(m0.status().ToString());
  auto c0 = SampleProcess(controller_pid);
  auto a0 = SampleProcess(api_pid);
  const double g0 = (*git_http)->CpuSeconds();
  auto git0 = t::ReadFile((*git_http)->access_log);
  if (!c0.ok() || !a0.ok() || !git0.ok()) Die("cannot sample processes");
  const absl::Time observe_start = absl::Now();
  absl::SleepFor(absl::Seconds(flags.observe_seconds));
  const double minutes = absl::ToDoubleSeconds(absl::Now() - observe_start) / 60;
  auto c1 = SampleProcess(controller_pid);
  auto a1 = SampleProcess(api_pid);
  const double g1 = (*git_http)->CpuSeconds();
  auto git1 = t::ReadFile((*git_http)->access_log);
  auto m1 = ScrapeMetrics(controller->metrics_port);
  if (!c1.ok() || !a1.ok() || !git1.ok() || !m1.ok()) {
    Die("controller or server gone during the observation:\n" + controller->proc->ReadLog());
  }
  auto end_ready = CountReady(**kube);
  auto samples = rss.Since(observe_start);

  // Derived numbers.
  auto reconciles = [](const std::string& m) {
    return SumMetric(m, "controller_runtime_reconcile_total");
  };
  auto requests = [](const std::string& m) { return SumMetric(m, "rest_client_requests_total"); };
  const double rec = reconciles(*m1) - reconciles(*m0);
  const double req = requests(*m1) - requests(*m0);
  const auto by_method0 = SumMetricBy(*m0, "rest_client_requests_total", "method");
  const auto by_method1 = SumMetricBy(*m1, "rest_client_requests_total", "method");
  std::vector<std::string> methods;
  for (const auto& [method, n] : by_method1) {
    double d = n - (by_method0.count(method) ? by_method0.at(method) : 0);
    if (d > 0) methods.push_back(absl::StrFormat("%s %.0f", method, d));
  }
  const auto by_code1 = SumMetricBy(*m1, "rest_client_requests_total", "code");
  const auto by_code0 = SumMetricBy(*m0, "rest_client_requests_total", "code");
  std::vector<std::string> bad_codes;
  for (const auto& [code, n] : by_code1) {
    double d = n - (by_code0.count(code) ? by_code0.at(code) : 0);
    if (d > 0 && !absl::StartsWith(code, "2"))
      bad_codes.push_back(absl::StrFormat("%s: %.0f", code, d));
  }
  // The most reconciles any one object had in the window: a hot loop shows
  // here even when the total looks normal.
  const auto per_object0 = SumMetricBy(*m0, "gotk_reconcile_duration_seconds_count", "name");
  const auto per_object1 = SumMetricBy(*m1, "gotk_reconcile_duration_seconds_count", "name");
  double max_per_object = 0;
  for (const auto& [name, n] : per_object1) {
    auto it = per_object0.find(name);
    max_per_object = std::max(max_per_object, n - (it == per_object0.end() ? 0 : it->second));
  }
  const double errors = SumMetric(*m1, "controller_runtime_reconcile_errors_total") -
                        SumMetric(*m0, "controller_runtime_reconcile_errors_total");
  const std::string check = "/info/refs?service=git-upload-pack", fetch = "/git-upload-pack HTTP";
  const int checks = CountLines(*git1, check) - CountLines(*git0, check);
  const int fetches = CountLines(*git1, fetch) - CountLines(*git0, fetch);
  const double sync_requests = requests(*m0);
  auto join_counts = [](const std::map<std::string, double>& m) {
    std::vector<std::string> parts;
    for (const auto& [k, v] : m) {
      if (v > 0) parts.push_back(absl::StrFormat("%s %.0f", k, v));
    }
    return parts.empty() ? std::string("none") : absl::StrJoin(parts, ", ");
  };
  const std::string sync_methods = join_counts(by_method0);
  const std::string sync_codes = join_counts(by_code0);
  const double sync_errors = SumMetric(*m0, "controller_runtime_reconcile_errors_total");
  double sync_max_per_object = 0;
  for (const auto& [name, n] : per_object0) sync_max_per_object = std::max(sync_max_per_object, n);
  // POSTs are Events. When all of them since the start add up to at most one
  // per object, those in the window are the initial NewArtifact Events still
  // draining under the client's QPS limit, not steady-state work.
  const double posts = by_method1.count("POST") ? by_method1.at("POST") : 0;
  const std::string events_note =
      posts <= flags.objects
          ? absl::StrFormat(
                "%.0f Events POSTed since start for %d objects: the window's POSTs are initial "
                "NewArtifact Events draining under the QPS limit",
                posts, flags.objects)
          : absl::StrFormat("%.0f Events POSTed since start for %d objects", posts, flags.objects);
  // Error log lines by message: where retries come from.
  std::map<std::string, double> error_lines;
  for (absl::string_view line : absl::StrSplit(controller->proc->ReadLog(), '\n')) {
    if (!absl::StrContains(line, "\"level\":\"error\"")) continue;
    size_t at = line.find("\"msg\":\"");
    if (at == absl::string_view::npos) continue;
    at += 7;
    std::string msg(line.substr(at, line.find('"', at) - at));
    size_t reason = line.find("\"reason\":\"");
    if (reason != absl::string_view::npos) {
      reason += 10;
      absl::StrAppend(&msg, " (", line.substr(reason, line.find('"', reason) - reason), ")");
    }
    error_lines[msg] += 1;
  }
  const double sync_reconciles = reconciles(*m0);

  double rss_min = 1e9, rss_max = 0, first_half = 0, second_half = 0;
  int n_first = 0, n_second = 0;
  for (const auto& [sec, mb] : samples) {
    rss_min = std::min(rss_min, mb);
    rss_max = std::max(rss_max, mb);
    if (sec < flags.observe_seconds / 2.0) {
      first_half += mb;
      ++n_first;
    } else {
      second_half += mb;
      ++n_second;
    }
  }
  const double growth = n_first && n_second ? second_half / n_second - first_half / n_first : 0;
  const double ctl_cpu = (c1->cpu_seconds - c0->cpu_seconds) / minutes;
  const double api_cpu = (a1->cpu_seconds - a0->cpu_seconds) / minutes;
  const double git_cpu = (g1 - g0) / minutes;
  const double expected_per_min = flags.objects;  // one per object per 1m interval

  const std::string setup = absl::StrFormat(
      "%d GitRepositories on %d repos (http, git http-backend), interval 1m, --concurrent=%d, "
      "observed %.1f min",
      flags.objects, flags.repos, flags.concurrent, minutes);
  const double flux_limit_mb = 1024;
  std::printf(
      "| source-controller, %s: time to all Ready from kubectl apply (client limit --kube-api-qps "
      "50, burst 300, Flux's defaults) | %.1f s (%d/%d Ready; the apply itself %.1f s) | Flux "
      "(flux-benchmark, 1,000 OCIRepositories, 16-core runner): 1m30s "
      "| — | all Ready, bounded |\n",
      setup.c_str(), ready_s, ready, flags.objects, apply_s);
  std::printf(
      "| source-controller RSS before any object (idle, same flags) | %.1f MB | Flux "
      "per-controller limit: 1 GiB | %.3f | report |\n",
      idle->rss_mb, idle->rss_mb / flux_limit_mb);
  std::printf(
      "| source-controller peak RSS (VmHWM), same run | %.1f MB | Flux per-controller limit: 1 GiB "
      "| %.3f (%.0fx under) | < 100 MB |\n",
      c1->hwm_mb, c1->hwm_mb / flux_limit_mb, flux_limit_mb / c1->hwm_mb);
  std::printf(
      "| source-controller steady RSS (end of window; min-max %.1f-%.1f MB; growth 2nd half vs "
      "1st %+.1f MB) | %.1f MB | Flux per-controller limit: 1 GiB | %.3f (%.0fx under) | < 100 MB "
      "|\n",
      rss_min, rss_max, growth, c1->rss_mb, c1->rss_mb / flux_limit_mb, flux_limit_mb / c1->rss_mb);
  std::printf(
      "| source-controller CPU, steady state | %.2f CPU-s/min | test-apiserver: %.2f CPU-s/min; "
      "nginx + git http-backend: %.2f CPU-s/min | %.2f (vs test-apiserver) | report |\n",
      ctl_cpu, api_cpu, git_cpu, ctl_cpu / std::max(api_cpu, 1e-9));
  std::printf(
      "| reconciles per minute, steady state (%.0f errors; at most %.0f for one object in %.1f "
      "min) | %.0f | expected: %.0f (one per object per interval; window edges cut bursts) | %.2f "
      "| ~1.0 (no hot loop) |\n",
      errors, max_per_object, minutes, rec / minutes, expected_per_min,
      rec / minutes / expected_per_min);
  std::printf(
      "| git remote checks per minute (info/refs requests in the server's access log; %d fetches) "
      "| %.0f | expected: %.0f | %.2f | ~1.0, no fetch when nothing moved |\n",
      fetches, checks / minutes, expected_per_min, checks / minutes / expected_per_min);
  std::printf(
      "| API requests per steady reconcile (%s%s%s; %s) | %.2f | %.0f requests / %.0f reconciles "
      "| | report |\n",
      methods.empty() ? "none" : absl::StrJoin(methods, ", ").c_str(),
      bad_codes.empty() ? "" : "; non-2xx ", absl::StrJoin(bad_codes, ", ").c_str(),
      events_note.c_str(), rec > 0 ? req / rec : 0.0, req, rec);
  std::printf(
      "| API requests per object until all Ready (%s; codes %s) | %.2f | %.0f requests / %d "
      "objects (%.0f reconciles, %.0f errors, at most %.0f for one object) | | report |\n",
      sync_methods.c_str(), sync_codes.c_str(), sync_requests / flags.objects, sync_requests,
      flags.objects, sync_reconciles, sync_errors, sync_max_per_object);
  if (!error_lines.empty()) {
    std::printf("| controller error log lines, whole run | %s | | | none |\n",
                join_counts(error_lines).c_str());
  }
  std::printf(
      "| test-apiserver RSS with %d GitRepositories (end of window) | %.1f MB (peak %.1f MB) | | | "
      "report |\n",
      flags.objects, a1->rss_mb, a1->hwm_mb);
  if (!end_ready.ok() || *end_ready != flags.objects) {
    std::printf("| Ready at the end of the window | %d of %d | | | all |\n",
                end_ready.ok() ? *end_ready : -1, flags.objects);
  }
  std::fflush(stdout);

  controller->proc->Signal(SIGTERM);
  controller->proc->Wait(absl::Seconds(20)).IgnoreError();
  controller->proc.reset();
  git_http->reset();
  api->reset();
  t::RemoveTree(root);
  return 0;
}

}  // namespace
}  // namespace gitops::bench

int main(int argc, char** argv) { return gitops::bench::Main(argc, argv); }
