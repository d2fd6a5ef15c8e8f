// Streaming benchmark: an artifact of --mb MiB pulled over gRPC by the real
// `kustomize-controller fetch` (download + digest verification) against `curl`
// downloading the same file from nginx, both on loopback, both writing to disk.
// Prints markdown rows: | benchmark | ours | peer | ratio | target |
//
//   bench_stream [--mb 500] [--runs 3]
//   bench_stream serve STORAGE_DIR PORT_FILE FILE... (internal: the gRPC side;
//                                                     FILE is served as GitRepository bench/<stem>)
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "common/runtime/shutdown.h"
#include "source-controller/artifact/storage.h"
#include "source-controller/grpc/artifact_server.h"
#include "source-controller/grpc/event_hub.h"
#include "test/support/process.h"

namespace gitops::bench {
namespace {

using testing::RunCommand;
using testing::Subprocess;

int Serve(const std::string& storage_dir, const std::string& port_file,
          const std::vector<std::string>& files) {
  common::BlockShutdownSignals();
  auto storage = source::ArtifactStorage::Create(storage_dir);
  if (!storage.ok()) return 1;
  source::ArtifactEventHub hub;
  for (const auto& file : files) {
    std::string name = std::filesystem::path(file).stem().stem().string();
    source::SourceKey key{"GitRepository", "bench", name};
    auto digest = common::Sha256File(file);
    auto temp = (*storage)->NewTempPath(key);
    if (!digest.ok() || !temp.ok()) return 1;
    std::filesystem::copy_file(file, *temp, std::filesystem::copy_options::overwrite_existing);
    auto stored = (*storage)->Commit(key, *temp, *digest);
    if (!stored.ok()) return 1;
    source::v1::Artifact a;
    a.mutable_source()->set_kind("GitRepository");
    a.mutable_source()->set_namespace_("bench");
    a.mutable_source()->set_name(name);
    a.set_digest(*digest);
    a.set_size(stored->size);
    a.set_path(stored->path);
    a.set_revision("main@sha1:0000000000000000000000000000000000000000");
    hub.PublishUpdated(a);
  }
  source::ArtifactServerOptions opts;
  opts.listen_address = "127.0.0.1:0";
  auto server = source::ArtifactServer::Start(opts, &hub, storage->get());
  if (!server.ok()) return 1;
  if (!testing::WriteFile(port_file, std::to_string((*server)->port())).ok()) return 1;
  common::WaitForShutdownSignal();
  (*server)->Shutdown(absl::Seconds(1));
  return 0;
}

struct Run {
  double seconds = 0;
  long max_rss_kb = 0;
};

// Runs argv as a child; wall time and the child's peak RSS.
Run Measure(const std::vector<std::string>& argv) {
  absl::Time start = absl::Now();
  auto proc = Subprocess::Start(argv);
  if (!proc.ok()) return {};
  pid_t pid = (*proc)->pid();
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  Run r;
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  r.max_rss_kb = ru.ru_maxrss;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "%s failed:\n%s\n", argv[0].c_str(), (*proc)->ReadLog().c_str());
    r.seconds = -1;
  }
  // Reaped by wait4 already: the destructor's kill is harmless.
  return r;
}

int Main(int argc, char** argv) {
  int mb = 500, runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--mb") mb = std::atoi(argv[i + 1]);
    if (flag == "--runs") runs = std::atoi(argv[i + 1]);
  }
  std::string dir = testing::MakeTempDir("bench-stream");
  std::string file = dir + "/www/artifact.tar.gz";
  std::string small = dir + "/www/small.tar.gz";
  const int small_mb = std::max(1, mb / 10);
  std::filesystem::create_directories(dir + "/www");
  // Incompressible bytes: the transfer, not compression, is measured.
  for (auto [path, size] : {std::pair<std::string, int>{file, mb}, {small, small_mb}}) {
    if (!RunCommand(
             {"sh", "-c", absl::StrCat("head -c ", int64_t{size} << 20, " /dev/urandom > ", path)})
             .ok()) {
      return 1;
    }
  }
  auto digest = common::Sha256File(file);

  // The gRPC side: this binary in serve mode.
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  auto server = Subprocess::Start({self, "serve", dir + "/storage", dir + "/port", file, small});
  std::string port;
  for (int i = 0; i < 600 && port.empty(); ++i) {
    auto p = testing::ReadFile(dir + "/port");
    if (p.ok()) port = *p;
    absl::SleepFor(absl::Milliseconds(100));
  }
  if (!server.ok() || port.empty()) return 1;

  // The peer: nginx serving the same file.
  int nginx_port = testing::PickFreePort();
  std::string conf = absl::StrFormat(
      "daemon off; user root; worker_processes 1; error_log %s/nginx.err; pid %s/nginx.pid;\n"
      "events { worker_connections 64; }\n"
      "http { access_log off; sendfile on; tcp_nopush on; client_body_temp_path %s;\n"
      "  proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;\n"
      "  server { listen 127.0.0.1:%d; root %s/www; } }\n",
      dir, dir, dir, dir, dir, dir, dir, nginx_port, dir);
  testing::WriteFile(dir + "/nginx.conf", conf).IgnoreError();
  auto nginx = Subprocess::Start({"nginx", "-c", dir + "/nginx.conf", "-p", dir});
  if (!nginx.ok() || !testing::WaitForPort(nginx_port, absl::Seconds(10)).ok()) return 1;

  std::string kc = testing::BinaryPath("kustomize-controller");
  Run best_grpc{1e9, 0}, best_curl{1e9, 0};
  long max_rss = 0;
  for (int i = 0; i < runs; ++i) {
    std::filesystem::remove(dir + "/grpc.tar.gz");
    Run g = Measure({kc, "fetch", "--source-addr=127.0.0.1:" + port, "--namespace=bench",
                     "--name=artifact", "--log-level=error", dir + "/grpc.tar.gz"});
    std::filesystem::remove(dir + "/curl.tar.gz");
    Run c = Measure({"curl", "-sf", "-o", dir + "/curl.tar.gz",
                     absl::StrCat("http://127.0.0.1:", nginx_port, "/artifact.tar.gz")});
    if (g.seconds < 0 || c.seconds < 0) return 1;
    if (g.seconds < best_grpc.seconds) best_grpc = g;
    if (c.seconds < best_curl.seconds) best_curl = c;
    max_rss = std::max(max_rss, g.max_rss_kb);
  }
  Run small_run = Measure({kc, "fetch", "--source-addr=127.0.0.1:" + port, "--namespace=bench",
                           "--name=small", "--log-level=error", dir + "/small-grpc.tar.gz"});
  auto got = common::Sha256File(dir + "/grpc.tar.gz");
  if (!got.ok() || !digest.ok() || *got != *digest) {
    fprintf(stderr, "downloaded artifact does not match\n");
    return 1;
  }
  double grpc_mbps = mb / best_grpc.seconds;
  double curl_mbps = mb / best_curl.seconds;
  printf(
      "| gRPC artifact stream, %d MiB (fetch + sha256 verify) | %.0f MiB/s | curl from nginx: %.0f "
      "MiB/s | %.2f | >= 0.80 |\n",
      mb, grpc_mbps, curl_mbps, grpc_mbps / curl_mbps);
  printf(
      "| subscriber peak RSS during a %d MiB fetch | %.1f MB | curl: %.1f MB | %.2f | < 64 MB |\n",
      mb, max_rss / 1024.0, best_curl.max_rss_kb / 1024.0, (double)max_rss / best_curl.max_rss_kb);
  printf(
      "| subscriber peak RSS, %d MiB vs %d MiB artifact | %.1f MB | same client, %d MiB: %.1f MB | "
      "%.2f | ~1.0 (flat) |\n",
      mb, small_mb, max_rss / 1024.0, small_mb, small_run.max_rss_kb / 1024.0,
      (double)max_rss / std::max(1L, small_run.max_rss_kb));
  (*server)->Signal(SIGTERM);
  (*server)->Wait(absl::Seconds(5)).IgnoreError();
  (*nginx)->Signal(SIGQUIT);
  (*nginx)->Wait(absl::Seconds(5)).IgnoreError();
  testing::RemoveTree(dir);
  return 0;
}

}  // namespace
}  // namespace gitops::bench

int main(int argc, char** argv) {
  if (argc >= 5 && std::string(argv[1]) == "serve") {
    return gitops::bench::Serve(argv[2], argv[3], std::vector<std::string>(argv + 4, argv + argc));
  }
  return gitops::bench::Main(argc, argv);
}
