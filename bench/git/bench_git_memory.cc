// Git memory benchmark: does the fetcher's memory grow with each fetch?
//
// For each transport (file://, git://, http://, https:// with a CA and basic
// auth, ssh:// with an ed25519 key and known_hosts) a small repository is
// served on loopback; the benchmark then repeats what the source-controller
// does for a source whose upstream moves: push one new commit, ResolveRemote,
// FetchAndCheckout into the same cached bare repository and a fresh checkout
// directory, remove the checkout. It samples, in this process, the resident
// set (VmRSS) and the bytes malloc has handed out and not had back
// (mallinfo2 uordblks + hblkhd: live heap, whatever the allocator keeps)
// after fetch --from and after the last one. RSS also counts file pages
// (shared libraries' code as more of it runs, mapped pack files); the
// anonymous part is what a leak or the allocator's retention would grow. Live heap that grows is a
// leak or an unbounded cache; RSS that grows while the live heap does not is the allocator keeping
// freed memory.
//
// The peer is the git CLI doing the same work per commit from its own
// clone (`git fetch` + `git archive | tar -x` into a fresh directory): a new
// process each time, so by construction it cannot grow; its time per fetch is
// the row's peer figure, next to ours.
//
//   bench_git_memory [--fetches 500] [--from 50] [--transports file,git,http,https,ssh]
//                    [--flat-history] [--quick]
//
// Prints markdown rows: | benchmark | ours | peer | ours/peer | target |
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/support/peer.h"
#include "bench/support/repo_content.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace {

using gitops::source::GitFetcher;

void RunPeerShell(const std::string& command) {
  gitops::bench::RunPeerShell("bench_git_memory", command);
}

using gitops::source::GitFetchOptions;
namespace t = gitops::testing;

constexpr char kUser[] = "bench";
constexpr char kPassword[] = "bench-password";

struct Flags {
  int fetches = 500;
  int from = 50;
  std::vector<std::string> transports = {"file", "git", "http", "https", "ssh"};
  // Each new commit replaces the previous one (force push): the history
  // stays two commits long, so what grows with the number of fetches is
  // told apart from what grows with the repository.
  bool flat_history = false;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_git_memory: %s\n", what.c_str());
  std::exit(1);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--fetches") {
      f.fetches = std::atoi(next().c_str());
    } else if (a == "--from") {
      f.from = std::atoi(next().c_str());
    } else if (a == "--transports") {
      f.transports = absl::StrSplit(next(), ',', absl::SkipEmpty());
    } else if (a == "--flat-history") {
      f.flat_history = true;
    } else if (a == "--quick") {
      f.fetches = 120;
      f.from = 20;
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: bench_git_memory [--fetches N] [--from K] [--transports file,git,http,https,ssh] "
          "[--flat-history] [--quick]\n");
      std::exit(0);
    } else {
      Die("unknown flag " + a + " (try --help)");
    }
  }
  if (f.from < 1 || f.fetches <= f.from) Die("need 1 <= --from < --fetches");
  return f;
}

// A /proc/self/status field in KB: VmRSS (all resident pages) or RssAnon
// (heap, stacks: what a leak or the allocator would grow).
double StatusKb(absl::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field)) {
      double kb = 0;
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtod(parts[1], &kb)) return kb;
    }
  }
  return 0;
}

// Bytes malloc has handed out and not had back, in KB.
double HeapKb() {
  struct mallinfo2 m = mallinfo2();
  return static_cast<double>(m.uordblks + m.hblkhd) / 1024.0;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A served repository: the URL and credentials a GitRepository would have,
// the bare repository to push to, and what keeps its server running.
struct Served {
  GitFetchOptions options;
  std::string bare;
  std::string peer_url;  // the same repository for the git CLI
  std::string peer_env;  // environment the git CLI needs for it
  std::unique_ptr<t::GitDaemon> daemon;
  std::unique_ptr<t::GitHttpServer> http;
  std::unique_ptr<t::GitSshServer> ssh;
};

Served Serve(const std::string& transport, const std::string& root) {
  Served s;
  const std::string serve = root + "/srv";
  s.bare = serve + "/repo.git";
  if (auto st = t::InitBareRepo(s.bare); !st.ok()) Die(st.ToString());
  s.options.ref.branch = "main";
  if (transport == "file") {
    s.options.url = "file://" + s.bare;
    s.peer_url = s.options.url;
  } else if (transport == "git") {
    auto d = t::GitDaemon::Start(serve);
    if (!d.ok()) Die(d.status().ToString());
    s.daemon = std::move(*d);
    s.options.url = s.daemon->Url("repo.git");
    s.peer_url = s.options.url;
  } else if (transport == "http" || transport == "https") {
    t::GitHttpServer::Options o;
    o.tls = transport == "https";
    if (o.tls) {
      o.username = kUser;
      o.password = kPassword;
    }
    auto h = t::GitHttpServer::Start(serve, o);
    if (!h.ok()) Die(h.status().ToString());
    s.http = std::move(*h);
    s.options.url = s.http->Url("repo.git");
    s.peer_url = s.options.url;
    if (o.tls) {
      s.options.credentials.username = kUser;
      s.options.credentials.password = kPassword;
      s.options.credentials.ca_pem = s.http->ca_pem();
      const std::string ca = root + "/ca.pem";
      std::ofstream(ca) << s.http->ca_pem();
      s.peer_url = absl::StrCat("https://", kUser, ":", kPassword, "@",
                                s.options.url.substr(std::strlen("https://")));
      s.peer_env = absl::StrCat("GIT_SSL_CAINFO='", ca, "' ");
    }
  } else if (transport == "ssh") {
    auto d = t::GitSshServer::Start();
    if (!d.ok()) Die(d.status().ToString());
    s.ssh = std::move(*d);
    s.options.url = s.ssh->Url(s.bare);
    s.options.credentials.ssh_identity = s.ssh->client_private_key();
    s.options.credentials.ssh_known_hosts = s.ssh->known_hosts_line() + "\n";
    const std::string key = root + "/id", known = root + "/known_hosts";
    std::ofstream(key) << s.ssh->client_private_key();
    ::chmod(key.c_str(), 0600);
    std::ofstream(known) << s.ssh->known_hosts_line() << "\n";
    s.peer_url = s.options.url;
    s.peer_env = absl::StrCat("GIT_SSH_COMMAND='ssh -i ", key, " -o UserKnownHostsFile=", known,
                              " -o IdentitiesOnly=yes' ");
  } else {
    Die("unknown transport " + transport);
  }
  return s;
}

void Measure(const std::string& transport, const Flags& flags, GitFetcher& fetcher) {
  const std::string root = t::MakeTempDir("bench-git-memory-" + transport);
  Served served = Serve(transport, root);
  auto work = t::GitWorkRepo::Create(root + "/work");
  if (!work.ok()) Die(work.status().ToString());
  constexpr int kFiles = 20;
  std::vector<std::pair<std::string, std::string>> files;
  for (int f = 0; f < kFiles; ++f) {
    files.emplace_back(absl::StrFormat("apps/cm-%02d.yaml", f), gitops::bench::ConfigMapFile(f, 0));
  }
  if (auto c = work->Commit("initial", files); !c.ok()) Die(c.status().ToString());
  if (auto st = work->PushAll(served.bare); !st.ok()) Die(st.ToString());

  const std::string cache = root + "/cache";
  const std::string peer_clone = root + "/peer";
  RunPeerShell(
      absl::StrCat(served.peer_env, "git clone -q '", served.peer_url, "' '", peer_clone, "'"));

  double rss_from = 0, anon_from = 0, heap_from = 0;
  std::vector<double> ours_ms, peer_ms;
  for (int i = 1; i <= flags.fetches; ++i) {
    const int f = i % kFiles;
    if (flags.flat_history && i > 1) {
      if (auto r = t::Git(work->dir(), {"reset", "-q", "--soft", "HEAD~1"}); !r.ok()) {
        Die(r.status().ToString());
      }
    }
    auto sha = work->Commit(absl::StrCat("change ", i), {{absl::StrFormat("apps/cm-%02d.yaml", f),
                                                          gitops::bench::ConfigMapFile(f, i)}});
    if (!sha.ok()) Die(sha.status().ToString());
    if (auto st = work->Push(served.bare, "main", "refs/heads/main"); !st.ok()) Die(st.ToString());

    const std::string checkout = absl::StrCat(root, "/co-", i);
    const absl::Time start = absl::Now();
    auto remote = fetcher.ResolveRemote(served.options);
    if (!remote.ok()) Die(absl::StrCat(transport, ": ", remote.status().ToString()));
    auto fetched = fetcher.FetchAndCheckout(served.options, cache, checkout);
    if (!fetched.ok()) Die(absl::StrCat(transport, ": ", fetched.status().ToString()));
    ours_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (fetched->commit != *sha) Die(transport + ": fetched " + fetched->commit + ", want " + *sha);
    t::RemoveTree(checkout);

    if (i % 10 == 0) {  // the peer, on the same new commit, every tenth fetch
      const std::string co = absl::StrCat(root, "/peer-co-", i);
      const absl::Time p0 = absl::Now();
      RunPeerShell(absl::StrCat(served.peer_env, "git -C '", peer_clone,
                                "' fetch -q origin main && mkdir '", co, "' && git -C '",
                                peer_clone, "' archive FETCH_HEAD | tar -x -C '", co, "'"));
      peer_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - p0));
      t::RemoveTree(co);
    }
    if (i == flags.from) {
      rss_from = StatusKb("VmRSS:");
      anon_from = StatusKb("RssAnon:");
      heap_from = HeapKb();
    }
  }
  const double rss_to = StatusKb("VmRSS:"), anon_to = StatusKb("RssAnon:"), heap_to = HeapKb();
  const int span = flags.fetches - flags.from;
  const double ours = Median(ours_ms), peer = Median(peer_ms);
  std::printf(
      "| git memory, %s: growth from fetch %d to %d (one new commit each%s, same cache) | RSS "
      "%+.2f "
      "KB/fetch (%.1f -> %.1f MB; anonymous %+.2f KB/fetch), live heap %+.2f KB/fetch (%.1f -> "
      "%.1f MB); %.1f ms/fetch | git "
      "fetch + git archive piped to tar -x, a new process per fetch: %.1f ms/fetch | %.2f | ~0 "
      "KB/fetch (flat within noise) |\n",
      transport.c_str(), flags.from, flags.fetches,
      flags.flat_history ? ", replacing the last: history stays 2 commits" : "",
      (rss_to - rss_from) / span, rss_from / 1024, rss_to / 1024, (anon_to - anon_from) / span,
      (heap_to - heap_from) / span, heap_from / 1024, heap_to / 1024, ours, peer, ours / peer);
  std::fflush(stdout);
  t::RemoveTree(root);
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  if (std::getenv("TMPDIR") == nullptr && access("/dev/shm", W_OK) == 0) {
    setenv("TMPDIR", "/dev/shm", 1);
  }
  std::unique_ptr<GitFetcher> fetcher = gitops::source::NewLibgit2Fetcher();
  for (const std::string& transport : flags.transports) Measure(transport, flags, *fetcher);
  return 0;
}
