#include "bench/source/kube_bench.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace gitops::bench {

absl::StatusOr<ProcSample> SampleProcess(pid_t pid) {
  std::ifstream stat_file(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the parenthesised comm (which may contain spaces):
  // state(3) ... utime(14) stime(15) cutime(16) cstime(17).
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return absl::NotFoundError(absl::StrCat("no process ", pid));
  std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
  if (f.size() < 15) return absl::InternalError("short /proc/<pid>/stat");
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  auto at = [&](int field) {  // field numbers as in proc(5)
    double v = 0;
    absl::SimpleAtod(f[field - 3], &v);
    return v / tick;
  };
  ProcSample s;
  s.cpu_seconds = at(14) + at(15);
  s.children_cpu_seconds = at(16) + at(17);
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    double kb = 0;
    absl::string_view l = line;
    for (auto [key, out] : {std::pair<const char*, double*>{"VmRSS:", &s.rss_mb},
                            {"VmHWM:", &s.hwm_mb},
                            {"RssAnon:", &s.rss_anon_mb}}) {
      if (absl::ConsumePrefix(&l, key)) {
        l = absl::StripAsciiWhitespace(absl::StripSuffix(absl::StripAsciiWhitespace(l), "kB"));
        if (absl::SimpleAtod(l, &kb)) *out = kb / 1024.0;
      }
    }
  }
  return s;
}

namespace {

// (pid, ppid, comm) of every process.
struct ProcEntry {
  pid_t pid;
  pid_t ppid;
  std::string comm;
};
std::vector<ProcEntry> ListProcesses() {
  std::vector<ProcEntry> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::ifstream stat_file(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
    int ppid = 0;
    if (f.size() < 2 || !absl::SimpleAtoi(f[1], &ppid)) continue;
    out.push_back({pid, ppid, stat.substr(open + 1, close - open - 1)});
  }
  closedir(proc);
  return out;
}

double TreeCpu(pid_t pid, const std::vector<ProcEntry>& all) {
  auto s = SampleProcess(pid);
  double cpu = s.ok() ? s->cpu_seconds + s->children_cpu_seconds : 0;
  for (const ProcEntry& p : all) {
    if (p.ppid == pid) cpu += TreeCpu(p.pid, all);
  }
  return cpu;
}

}  // namespace

pid_t FindChild(absl::string_view comm) {
  const pid_t self = getpid();
  for (const auto& p : ListProcesses()) {
    if (p.ppid == self && p.comm == comm) return p.pid;
  }
  return -1;
}

namespace {

// Calls fn(labels, value) for each sample line of metric `name` (exactly).
template <typename Fn>
void ForEachSample(absl::string_view text, absl::string_view name, Fn fn) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#' || !absl::ConsumePrefix(&line, name)) continue;
    absl::string_view labels;
    if (!line.empty() && line[0] == '{') {
      size_t end = line.find('}');
      if (end == absl::string_view::npos) continue;
      labels = line.substr(1, end - 1);
      line.remove_prefix(end + 1);
    }
    if (line.empty() || line[0] != ' ') continue;  // a longer name (name_sum, ...)
    double v = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(line), &v)) continue;
    fn(labels, v);
  }
}

std::string LabelValue(absl::string_view labels, absl::string_view key) {
  std::string token = absl::StrCat(key, "=\"");
  size_t at = 0;
  while ((at = labels.find(token, at)) != absl::string_view::npos) {
    if (at == 0 || labels[at - 1] == ',') {
      size_t start = at + token.size();
      size_t end = labels.find('"', start);
      return std::string(labels.substr(start, end - start));
    }
    at += token.size();
  }
  return "";
}

}  // namespace

double SumMetric(absl::string_view text, absl::string_view name,
                 const std::map<std::string, std::string>& labels) {
  double sum = 0;
  ForEachSample(text, name, [&](absl::string_view l, double v) {
    for (const auto& [k, want] : labels) {
      if (LabelValue(l, k) != want) return;
    }
    sum += v;
  });
  return sum;
}

std::map<std::string, double> SumMetricBy(absl::string_view text, absl::string_view name,
                                          absl::string_view label) {
  std::map<std::string, double> out;
  ForEachSample(text, name, [&](absl::string_view l, double v) { out[LabelValue(l, label)] += v; });
  return out;
}

void KillChildren() {
  const pid_t self = getpid();
  for (const auto& p : ListProcesses()) {
    if (p.ppid != self) continue;
    kill(-p.pid, SIGKILL);
    kill(p.pid, SIGKILL);
    waitpid(p.pid, nullptr, 0);
  }
}

absl::StatusOr<std::unique_ptr<testing::TestApiServer>> StartApiServer() {
  auto api = testing::TestApiServer::StartWithCrds();
  if (!api.ok()) return api.status();
  if (auto s = (*api)->Kubectl({"create", "namespace", kBenchNamespace}); !s.ok()) {
    return s.status();
  }
  return api;
}

void Die(absl::string_view bench, const std::string& what) {
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(bench.size()), bench.data(), what.c_str());
  KillChildren();
  std::exit(1);
}

double TreeCpuSeconds(pid_t pid) { return TreeCpu(pid, ListProcesses()); }

std::string GitHttp::Url(absl::string_view repo) const {
  return absl::StrCat("http://127.0.0.1:", port, "/", repo);
}

std::vector<GitHttp::Request> GitHttp::Requests() const {
  std::vector<Request> out;
  auto log = testing::ReadFile(access_log);
  if (!log.ok()) return out;
  for (absl::string_view line : absl::StrSplit(*log, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    double end = 0, duration = 0;
    if (f.size() < 3 || !absl::SimpleAtod(f[0], &end) || !absl::SimpleAtod(f[1], &duration)) {
      continue;
    }
    absl::string_view request = f[2];
    size_t q1 = request.find('"'), q2 = request.rfind('"');
    if (q1 == absl::string_view::npos || q2 <= q1) continue;
    Request r;
    r.end = absl::FromUnixMillis(static_cast<int64_t>(end * 1000 + 0.5));
    r.start = r.end - absl::Milliseconds(static_cast<int64_t>(duration * 1000 + 0.5));
    r.line = std::string(request.substr(q1 + 1, q2 - q1 - 1));
    out.push_back(std::move(r));
  }
  return out;
}

double GitHttp::CpuSeconds() const {
  auto all = ListProcesses();
  return TreeCpu(nginx->proc().pid(), all) + TreeCpu(fcgiwrap->proc().pid(), all);
}

absl::StatusOr<std::unique_ptr<GitHttp>> StartGitHttp(const std::string& repo_root,
                                                      const std::string& dir, int fcgi_workers) {
  auto server = std::make_unique<GitHttp>();
  if (absl::Status s = testing::WriteFile(dir + "/tmp/.keep", ""); !s.ok()) return s;
  const std::string socket = dir + "/fcgiwrap.sock";
  auto fcgi = testing::Subprocess::Start(
      {"fcgiwrap", "-c", std::to_string(fcgi_workers), "-s", "unix:" + socket}, {},
      dir + "/fcgiwrap.log");
  if (!fcgi.ok()) return fcgi.status();
  server->fcgiwrap = std::make_unique<testing::ServerProcess>(std::move(*fcgi));
  for (int i = 0; i < 250 && access(socket.c_str(), F_OK) != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  server->port = testing::PickFreePort();
  server->access_log = dir + "/access.log";
  std::string conf = absl::StrCat(
      "daemon off;\nmaster_process off;\nworker_processes 1;\npid ", dir, "/nginx.pid;\n",
      "error_log ", dir, "/error.log warn;\nevents { worker_connections 512; }\n",
      "http {\n  log_format timed '$msec $request_time \"$request\" $status';\n", "  access_log ",
      server->access_log, " timed;\n  client_body_temp_path ", dir,
      "/tmp/body;\n  proxy_temp_path ", dir, "/tmp/proxy;\n  fastcgi_temp_path ", dir,
      "/tmp/fastcgi;\n  uwsgi_temp_path ", dir, "/tmp/uwsgi;\n  scgi_temp_path ", dir,
      "/tmp/scgi;\n  client_max_body_size 0;\n  server {\n    listen 127.0.0.1:", server->port,
      ";\n    location / {\n      include /etc/nginx/fastcgi_params;\n",
      "      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;\n",
      "      fastcgi_param GIT_PROJECT_ROOT ", repo_root, ";\n",
      "      fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n      fastcgi_param PATH_INFO $uri;\n",
      "      fastcgi_pass unix:", socket, ";\n    }\n  }\n}\n");
  const std::string conf_path = dir + "/nginx.conf";
  if (absl::Status s = testing::WriteFile(conf_path, conf); !s.ok()) return s;
  auto nginx = testing::Subprocess::Start(
      {"nginx", "-p", dir + "/", "-c", conf_path, "-e", dir + "/error.log"}, {},
      dir + "/nginx.log");
  if (!nginx.ok()) return nginx.status();
  server->nginx = std::make_unique<testing::ServerProcess>(std::move(*nginx));
  if (absl::Status s = testing::WaitForPort(server->port, absl::Seconds(10)); !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("nginx did not start: ", s.message(), " ", server->nginx->proc().ReadLog()));
  }
  return server;
}

absl::StatusOr<std::string> ScrapeMetrics(const std::string& port) {
  return testing::RunCommand({"curl", "-sf", absl::StrCat("http://127.0.0.1:", port, "/metrics")},
                             absl::Seconds(30));
}

double Quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(q * values.size()));
  rank = std::min(values.size(), std::max<size_t>(1, rank));
  return values[rank - 1];
}

void UseFastTmpdir() {
  const char* tmpdir = std::getenv("TMPDIR");
  if ((tmpdir == nullptr || *tmpdir == '\0') && access("/dev/shm", W_OK) == 0) {
    setenv("TMPDIR", "/dev/shm", 1);
  }
}

absl::StatusOr<Controller> StartController(const std::string& kubeconfig,
                                           const std::string& storage_dir,
                                           const std::string& log_path,
                                           const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {testing::BinaryPath("source-controller"),
                                   "--kubeconfig=" + kubeconfig,
                                   "--storage-path=" + storage_dir,
                                   "--grpc-addr=127.0.0.1:0",
                                   "--storage-adv-addr=127.0.0.1:1",
                                   "--metrics-addr=127.0.0.1:0",
                                   "--health-addr=127.0.0.1:0",
                                   "--storage-addr=127.0.0.1:0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  // e.g. GITOPS_BENCH_CONTROLLER_WRAPPER="heaptrack -o /tmp/controller" to
  // profile the controller's allocations during a benchmark.
  if (const char* wrapper = std::getenv("GITOPS_BENCH_CONTROLLER_WRAPPER");
      wrapper != nullptr && *wrapper != '\0') {
    std::vector<std::string> wrapped = absl::StrSplit(wrapper, ' ', absl::SkipEmpty());
    args.insert(args.begin(), wrapped.begin(), wrapped.end());
  }
  auto proc = testing::Subprocess::Start(args, {}, log_path);
  if (!proc.ok()) return proc.status();
  Controller c;
  c.proc = std::move(*proc);
  auto grpc = c.proc->WaitForLogField("source-controller started", "grpc_port", absl::Seconds(30));
  if (!grpc.ok()) return grpc.status();
  auto metrics =
      c.proc->WaitForLogField("source-controller started", "metrics_port", absl::Seconds(5));
  if (!metrics.ok()) return metrics.status();
  c.grpc_port = *grpc;
  c.metrics_port = *metrics;
  return c;
}

std::string FormatMs(double ms) {
  if (ms >= 10000) return absl::StrFormat("%.1f s", ms / 1000);
  if (ms >= 100) return absl::StrFormat("%.0f ms", ms);
  if (ms >= 10) return absl::StrFormat("%.1f ms", ms);
  return absl::StrFormat("%.2f ms", ms);
}

}  // namespace gitops::bench
