// Helpers shared by the source-controller benchmarks in Kubernetes mode:
// process CPU/memory from /proc, Prometheus text parsing, percentiles, and
// starting the real source-controller binary against test-apiserver.
// Not thread-safe unless a function says so.
#ifndef GITOPS_BENCH_SOURCE_KUBE_BENCH_H_
#define GITOPS_BENCH_SOURCE_KUBE_BENCH_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kube/kube_client.h"
#include "test/apiserver/test_apiserver.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::bench {

// CPU and memory of one process, from /proc/<pid>/stat and /status.
struct ProcSample {
  double cpu_seconds = 0;           // utime + stime
  double children_cpu_seconds = 0;  // cutime + cstime (reaped children)
  double rss_mb = 0;                // VmRSS
  double hwm_mb = 0;                // VmHWM (peak RSS)
  double rss_anon_mb = 0;           // RssAnon (heap and stacks; the rest maps files)
};
absl::StatusOr<ProcSample> SampleProcess(pid_t pid);

// The first direct child of this process whose comm is `comm`, or -1.
pid_t FindChild(absl::string_view comm);
// SIGKILLs the process group of every direct child of this process (each
// testing::Subprocess leads its own group) and reaps them: for exits that
// skip destructors, so no server outlives the benchmark.
void KillChildren();

// The GitRepository kind the benchmarks create.
inline const common::GroupVersionKind kGitRepositoryGvk{"source.toolkit.fluxcd.io", "v1",
                                                        "GitRepository"};
inline constexpr char kBenchNamespace[] = "flux-system";

// Prints "<bench>: <what>" to stderr, kills the child processes, exits 1.
[[noreturn]] void Die(absl::string_view bench, const std::string& what);

// CPU seconds of `pid` and all its live descendants, each with the children
// it has reaped (cutime + cstime): what a forking server costs.
double TreeCpuSeconds(pid_t pid);

// Sum of the values of every series of `name` in a Prometheus text
// exposition whose labels include each `label="value"` in `labels`.
double SumMetric(absl::string_view text, absl::string_view name,
                 const std::map<std::string, std::string>& labels = {});
// Per-label-value sums of `name` grouped by `label` (e.g. method).
std::map<std::string, double> SumMetricBy(absl::string_view text, absl::string_view name,
                                          absl::string_view label);

// GET http://127.0.0.1:<port>/metrics (via curl).
absl::StatusOr<std::string> ScrapeMetrics(const std::string& port);

// The q-quantile (0..1, nearest rank) of `values`; 0 when empty.
double Quantile(std::vector<double> values, double q);

// Chooses the working directory for temp files the way bench_git_check
// does: $TMPDIR if set, else /dev/shm when writable (inode churn on a disk
// file system otherwise dominates small-file work).
void UseFastTmpdir();

// The test API server with the chart's CRDs and the flux-system namespace.
absl::StatusOr<std::unique_ptr<testing::TestApiServer>> StartApiServer();

// The real source-controller binary in Kubernetes mode on loopback ports.
struct Controller {
  std::unique_ptr<testing::Subprocess> proc;
  std::string grpc_port;
  std::string metrics_port;
};
absl::StatusOr<Controller> StartController(const std::string& kubeconfig,
                                           const std::string& storage_dir,
                                           const std::string& log_path,
                                           const std::vector<std::string>& extra_args);

// nginx + fcgiwrap + git http-backend serving the bare repositories under
// `repo_root` over plain http on 127.0.0.1, with an access log, one line per
// request: `<end, unix seconds.ms> <duration s> "<request line>" <code>`
// ("GET /<repo>/info/refs?service=git-upload-pack" starts a ref check or a
// fetch, "POST /<repo>/git-upload-pack" is the fetch's download). Files go to `dir`. The
// destructors kill each server's process group.
struct GitHttp {
  std::unique_ptr<testing::ServerProcess> fcgiwrap;
  std::unique_ptr<testing::ServerProcess> nginx;
  int port = 0;
  std::string access_log;
  std::string Url(absl::string_view repo) const;
  // Requests logged so far.
  struct Request {
    absl::Time start, end;
    std::string line;  // "GET /repo.git/info/refs?service=git-upload-pack HTTP/1.1"
  };
  std::vector<Request> Requests() const;
  // CPU seconds of nginx, fcgiwrap and the git processes they ran.
  double CpuSeconds() const;
};
absl::StatusOr<std::unique_ptr<GitHttp>> StartGitHttp(const std::string& repo_root,
                                                      const std::string& dir, int fcgi_workers);

// "12.3 ms" / "1.23 s" style.
std::string FormatMs(double ms);

}  // namespace gitops::bench

#endif  // GITOPS_BENCH_SOURCE_KUBE_BENCH_H_
