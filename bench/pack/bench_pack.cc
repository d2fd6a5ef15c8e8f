// Packing benchmark: PackDirectory versus `tar -czf` of the same tree.
//
//   bench_pack [--files N] [--mb M] [--runs R]
//
// Generates N files totalling about M MB of partly compressible text (YAML-like
// manifests with random identifiers and some base64-like blobs) in nested
// directories under a temp dir, then prints markdown rows:
//   | <benchmark> | <ours> | <peer>: <peer value> | <ours/peer> | <target> |
// Wall time is the best of R runs each, alternating ours and the peer.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "source-controller/artifact/ignore.h"
#include "source-controller/artifact/packer.h"
#include "test/support/process.h"

namespace {

using gitops::source::LoadIgnoreRules;
using gitops::source::PackDirectory;

class Rng {
 public:
  explicit Rng(uint64_t seed) : x_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t Next() {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_;
  }
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t x_;
};

const char* const kWords[] = {
    "apiVersion", "kind",      "metadata", "name",     "namespace",  "labels",     "app",
    "component",  "spec",      "replicas", "selector", "template",   "containers", "image",
    "ports",      "resources", "limits",   "requests", "cpu",        "memory",     "env",
    "value",      "volume",    "mount",    "config",   "service",    "ingress",    "backend",
    "frontend",   "worker",    "cache",    "database", "monitoring", "prometheus", "grafana",
};

// One manifest-like text file of about `size` bytes.
std::string MakeContent(Rng& rng, size_t size) {
  static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve(size + 128);
  while (out.size() < size) {
    switch (rng.Below(6)) {
      case 0:
        absl::StrAppend(&out, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ",
                        kWords[rng.Below(35)], "-", rng.Below(100000), "\n");
        break;
      case 1: {  // an opaque blob (certificate, secret, hash): hardly compressible
        out += "  data: ";
        for (int i = 0; i < 76; ++i) out.push_back(kB64[rng.Below(64)]);
        out += "\n";
        break;
      }
      default:
        absl::StrAppend(&out, std::string(2 * (1 + rng.Below(4)), ' '), kWords[rng.Below(35)], ": ",
                        kWords[rng.Below(35)], "-", rng.Below(1000), "\n");
        break;
    }
  }
  out.resize(size);
  return out;
}

bool WriteAll(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = write(fd, data.data() + off, data.size() - off);
    if (w <= 0) {
      close(fd);
      return false;
    }
    off += static_cast<size_t>(w);
  }
  return close(fd) == 0;
}

// Generates the tree; returns its total byte count, or -1.
int64_t Generate(const std::string& root, int files, int64_t total_bytes) {
  Rng rng(42);
  const int64_t avg = std::max<int64_t>(1, total_bytes / std::max(files, 1));
  int64_t written = 0;
  for (int i = 0; i < files; ++i) {
    // team-XX/app-YY/<env>/ with about 25 files per directory.
    const int dir_index = i / 25;
    static const char* const kEnvs[] = {"base", "staging", "production", "overlays/eu"};
    const std::string dir = absl::StrCat(root, "/team-", dir_index / 40, "/app-",
                                         (dir_index / 4) % 10, "/", kEnvs[dir_index % 4]);
    if (i % 25 == 0) {
      for (size_t p = root.size() + 1; p <= dir.size(); ++p) {
        if (p == dir.size() || dir[p] == '/') mkdir(dir.substr(0, p).c_str(), 0755);
      }
    }
    const int64_t size =
        avg / 5 + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(avg * 8 / 5 + 1)));
    const std::string path = absl::StrCat(dir, "/", kWords[i % 35], "-", i, ".yaml");
    if (!WriteAll(path, MakeContent(rng, static_cast<size_t>(size)))) return -1;
    written += size;
  }
  return written;
}

// Runs argv and returns its wall time, or a negative duration on failure.
absl::Duration TimeCommand(const std::vector<std::string>& argv) {
  const absl::Time start = absl::Now();
  auto out = gitops::testing::RunCommand(argv, absl::Minutes(10));
  if (!out.ok()) {
    fprintf(stderr, "%s\n", out.status().ToString().c_str());
    return -absl::Seconds(1);
  }
  return absl::Now() - start;
}

// User+sys CPU time of this process (all threads) or of its waited-for
// descendants (tar and the gzip it spawns).
absl::Duration CpuTime(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return absl::DurationFromTimeval(ru.ru_utime) + absl::DurationFromTimeval(ru.ru_stime);
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.2f s", absl::ToDoubleSeconds(d));
}
std::string Mb(int64_t bytes) { return absl::StrFormat("%.1f MB", bytes / 1e6); }

}  // namespace

int main(int argc, char** argv) {
  int files = 20000;
  int64_t mb = 200;
  int runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--files") == 0) {
      files = atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "--mb") == 0) {
      mb = atoll(argv[i + 1]);
    } else if (strcmp(argv[i], "--runs") == 0) {
      runs = atoi(argv[i + 1]);
    } else {
      fprintf(stderr, "usage: bench_pack [--files N] [--mb M] [--runs R]\n");
      return 2;
    }
  }
  if (argc % 2 == 0 || files <= 0 || mb <= 0 || runs <= 0) {
    fprintf(stderr, "usage: bench_pack [--files N] [--mb M] [--runs R]\n");
    return 2;
  }

  const std::string tmp = gitops::testing::MakeTempDir("bench-pack");
  const std::string tree = tmp + "/tree";
  mkdir(tree.c_str(), 0755);
  const int64_t bytes = Generate(tree, files, mb * 1000 * 1000);
  if (bytes < 0) {
    fprintf(stderr, "generating the tree failed\n");
    gitops::testing::RemoveTree(tmp);
    return 1;
  }

  const std::string ours_out = tmp + "/ours.tar.gz";
  const std::string peer_out = tmp + "/peer.tar.gz";
  absl::Duration best_ours = absl::InfiniteDuration();
  absl::Duration best_peer = absl::InfiniteDuration();
  absl::Duration cpu_ours = absl::InfiniteDuration();
  absl::Duration cpu_peer = absl::InfiniteDuration();
  int64_t ours_size = 0;
  bool failed = false;
  for (int r = 0; r < runs && !failed; ++r) {
    const absl::Duration cpu_start = CpuTime(RUSAGE_SELF);
    const absl::Time start = absl::Now();
    auto rules = LoadIgnoreRules(tree, std::nullopt);
    auto packed = rules.ok() ? PackDirectory(tree, *rules, ours_out)
                             : absl::StatusOr<gitops::source::PackResult>(rules.status());
    const absl::Duration d = absl::Now() - start;
    cpu_ours = std::min(cpu_ours, CpuTime(RUSAGE_SELF) - cpu_start);
    if (!packed.ok()) {
      fprintf(stderr, "PackDirectory: %s\n", packed.status().ToString().c_str());
      failed = true;
      break;
    }
    ours_size = packed->size;
    best_ours = std::min(best_ours, d);

    const absl::Duration child_start = CpuTime(RUSAGE_CHILDREN);
    const absl::Duration p = TimeCommand({"tar", "-czf", peer_out, "-C", tree, "."});
    if (p < absl::ZeroDuration()) {
      failed = true;
      break;
    }
    best_peer = std::min(best_peer, p);
    cpu_peer = std::min(cpu_peer, CpuTime(RUSAGE_CHILDREN) - child_start);
  }
  const int64_t peer_size = FileSize(peer_out);
  gitops::testing::RemoveTree(tmp);
  if (failed) {
    printf("| pack %d files / %s | failed | tar -czf: - | - | <= 1.00 |\n", files,
           Mb(bytes).c_str());
    return 1;
  }

  const std::string label =
      absl::StrCat("pack ", files, " files / ", Mb(bytes), " (wall, best of ", runs, ")");
  printf("| %s | %s | tar -czf: %s | %.2f | <= 1.00 |\n", label.c_str(), Seconds(best_ours).c_str(),
         Seconds(best_peer).c_str(),
         absl::ToDoubleSeconds(best_ours) / absl::ToDoubleSeconds(best_peer));
  printf("| pack %d files / %s (CPU user+sys) | %s | tar -czf: %s | %.2f | informational |\n",
         files, Mb(bytes).c_str(), Seconds(cpu_ours).c_str(), Seconds(cpu_peer).c_str(),
         absl::ToDoubleSeconds(cpu_ours) / absl::ToDoubleSeconds(cpu_peer));
  printf("| pack %d files / %s (output size) | %s | tar -czf: %s | %.3f | informational |\n", files,
         Mb(bytes).c_str(), Mb(ours_size).c_str(), Mb(peer_size).c_str(),
         static_cast<double>(ours_size) / static_cast<double>(peer_size));
  return 0;
}
