// Kustomize benchmark: our `kustomize-build` versus `kubectl kustomize`
// (kustomize v5.5.0) on generated overlays, checking the outputs are
// identical, and printing markdown rows:
//   | <benchmark> | <ours> | kubectl kustomize: <peer> | <ours/peer> | <target> |
//
//   bench_kustomize [--quick] [--sizes 1000,5000] [--no-peer-above N]
//
// Inputs: a base of Deployment + Service + ConfigMap triples and an overlay
// with namePrefix, namespace, commonLabels (selectors), images and a JSON 6902
// patch; plus a variant where every Deployment uses a generated ConfigMap
// and Secret (hash suffixes, name references everywhere).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "test/support/process.h"

namespace {

using gitops::testing::BinaryPath;
using gitops::testing::MakeTempDir;
using gitops::testing::RemoveTree;
using gitops::testing::WriteFile;

struct RunResult {
  bool ok = false;
  double seconds = 0;
  long max_rss_kb = 0;
  std::string output;
};

// Runs argv with stdout to a file; measures wall time and peak RSS.
RunResult Run(const std::vector<std::string>& argv, const std::string& out_path) {
  RunResult r;
  absl::Time start = absl::Now();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    dup2(devnull, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  wait4(pid, &status, 0, &ru);
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  r.max_rss_kb = ru.ru_maxrss;
  r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::ifstream in(out_path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

std::string Deployment(int i, bool generated) {
  std::string refs = generated ? absl::StrFormat(R"(
        envFrom:
        - configMapRef:
            name: app-%d-env
        - secretRef:
            name: app-%d-secret
        volumeMounts:
        - name: config
          mountPath: /etc/app)",
                                                 i, i)
                               : "";
  std::string vols = generated ? absl::StrFormat(R"(
      volumes:
      - name: config
        configMap:
          name: app-%d-config)",
                                                 i)
                               : absl::StrFormat(R"(
      volumes:
      - name: config
        configMap:
          name: app-%d-config)",
                                                 i);
  return absl::StrFormat(R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%d
  labels:
    app: app-%d
spec:
  replicas: 1
  selector:
    matchLabels:
      app: app-%d
  template:
    metadata:
      labels:
        app: app-%d
    spec:
      containers:
      - name: main
        image: nginx:1.25
        ports:
        - containerPort: 8080
          name: http%s%s
)",
                         i, i, i, i, refs, vols);
}

std::string Service(int i) {
  return absl::StrFormat(R"(apiVersion: v1
kind: Service
metadata:
  name: app-%d
spec:
  selector:
    app: app-%d
  ports:
  - port: 80
    targetPort: http
)",
                         i, i);
}

std::string ConfigMap(int i) {
  return absl::StrFormat(R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: app-%d-config
data:
  LOG_LEVEL: info
  INDEX: "%d"
  DESCRIPTION: configuration of application number %d used by the benchmark
)",
                         i, i, i);
}

// Writes base/ and overlay/ for `n` resources; returns the overlay path.
std::string Generate(const std::string& root, int n, bool generators) {
  int per = generators ? 5 : 3;
  int apps = n / per;
  std::string res = "resources:\n";
  std::string gens;
  for (int i = 0; i < apps; ++i) {
    std::string file = absl::StrCat("app-", i, ".yaml");
    WriteFile(root + "/base/" + file,
              Deployment(i, generators) + "---\n" + Service(i) + "---\n" + ConfigMap(i))
        .IgnoreError();
    absl::StrAppend(&res, "- ", file, "\n");
    if (generators) {
      absl::StrAppend(&gens, "- name: app-", i, "-env\n  literals:\n  - MODE=prod\n  - ID=", i,
                      "\n");
    }
  }
  std::string extra;
  for (int i = apps * per; i < n; ++i) {
    extra +=
        absl::StrFormat("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra-%d\n", i);
  }
  if (!extra.empty()) {
    WriteFile(root + "/base/extra.yaml", extra).IgnoreError();
    res += "- extra.yaml\n";
  }
  std::string base_k = res;
  if (generators) {
    base_k += "configMapGenerator:\n" + gens + "secretGenerator:\n";
    for (int i = 0; i < apps; ++i) {
      absl::StrAppend(&base_k, "- name: app-", i, "-secret\n  literals:\n  - TOKEN=t", i, "\n");
    }
  }
  WriteFile(root + "/base/kustomization.yaml", base_k).IgnoreError();
  WriteFile(root + "/overlay/kustomization.yaml", R"(resources:
- ../base
namePrefix: prod-
namespace: production
commonLabels:
  env: prod
  team: platform
images:
- name: nginx
  newName: registry.example.com/nginx
  newTag: "1.27"
patches:
- target:
    kind: Deployment
  patch: |-
    - op: replace
      path: /spec/replicas
      value: 3
    - op: add
      path: /spec/template/metadata/annotations
      value:
        prometheus.io/scrape: "true"
)")
      .IgnoreError();
  return root + "/overlay";
}

std::string Ms(double s) {
  return s < 10 ? absl::StrFormat("%.0f ms", s * 1000) : absl::StrFormat("%.1f s", s);
}
std::string Mb(long kb) { return absl::StrFormat("%.1f MB", kb / 1024.0); }

struct Measure {
  RunResult ours;
  RunResult peer;
  bool peer_ran = false;
};

Measure Bench(const std::string& name, int n, bool generators, bool run_peer, int runs) {
  std::string root = MakeTempDir("bench-kustomize");
  std::string overlay = Generate(root, n, generators);
  Measure m;
  m.ours.seconds = 1e9;
  for (int i = 0; i < runs; ++i) {
    RunResult r = Run({BinaryPath("kustomize-build"), overlay}, root + "/ours.yaml");
    if (r.seconds < m.ours.seconds) m.ours = r;
  }
  if (run_peer) {
    m.peer = Run({"kubectl", "kustomize", overlay}, root + "/peer.yaml");
    m.peer_ran = true;
  }
  std::string label = absl::StrCat(name, " ", n, " resources");
  if (!m.ours.ok) {
    printf("| %s | failed | | | |\n", label.c_str());
  } else if (m.peer_ran && !m.peer.ok) {
    printf("| %s | %s | kubectl kustomize: failed | | |\n", label.c_str(),
           Ms(m.ours.seconds).c_str());
  } else if (m.peer_ran) {
    bool same = m.ours.output == m.peer.output;
    printf("| %s, wall%s | %s | kubectl kustomize: %s | %.3f | <= 0.1 (10x faster) |\n",
           label.c_str(), same ? ", identical output" : ", OUTPUT DIFFERS",
           Ms(m.ours.seconds).c_str(), Ms(m.peer.seconds).c_str(), m.ours.seconds / m.peer.seconds);
    printf("| %s, peak RSS | %s | kubectl kustomize: %s | %.3f | < 1 |\n", label.c_str(),
           Mb(m.ours.max_rss_kb).c_str(), Mb(m.peer.max_rss_kb).c_str(),
           static_cast<double>(m.ours.max_rss_kb) / m.peer.max_rss_kb);
  } else {
    printf("| %s, wall | %s | kubectl kustomize: not run | | |\n", label.c_str(),
           Ms(m.ours.seconds).c_str());
    printf("| %s, peak RSS | %s | kubectl kustomize: not run | | |\n", label.c_str(),
           Mb(m.ours.max_rss_kb).c_str());
  }
  fflush(stdout);
  RemoveTree(root);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {1000, 5000};
  int no_peer_above = 1 << 30;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      sizes = {200, 1000};
      no_peer_above = 200;
    } else if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      for (absl::string_view s : absl::StrSplit(argv[++i], ',')) {
        int v;
        if (absl::SimpleAtoi(s, &v)) sizes.push_back(v);
      }
    } else if (a == "--no-peer-above" && i + 1 < argc) {
      absl::SimpleAtoi(argv[++i], &no_peer_above);
    }
  }
  std::vector<Measure> runs;
  for (int n : sizes) runs.push_back(Bench("overlay", n, false, n <= no_peer_above, 3));
  if (sizes.size() >= 2) {
    const Measure& a = runs.front();
    const Measure& b = runs.back();
    double ours = b.ours.seconds / a.ours.seconds;
    std::string peer = "not run";
    std::string ratio;
    if (a.peer_ran && b.peer_ran && a.peer.ok && b.peer.ok) {
      double p = b.peer.seconds / a.peer.seconds;
      peer = absl::StrFormat("%.2fx", p);
      ratio = absl::StrFormat("%.3f", ours / p);
    }
    printf(
        "| overlay time growth %d -> %d resources | %.2fx | kubectl kustomize: %s | %s | "
        "ours <= %.0fx (linear) |\n",
        sizes.front(), sizes.back(), ours, peer.c_str(), ratio.c_str(),
        1.2 * sizes.back() / static_cast<double>(sizes.front()));
  }
  Bench("generators + name references", sizes.front(), true, sizes.front() <= no_peer_above, 3);
  return 0;
}
