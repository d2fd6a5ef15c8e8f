// Git benchmark: the cheap "did it move" check (ResolveRemote) and a full
// fetch + checkout (FetchAndCheckout into an empty cache) of a repository
// served by `git daemon`, against the git CLI on the same URL.
//
// The incremental row compares a fetch of one new commit plus a checkout of
// the full tree into an empty directory with `git fetch` + `git archive` piped to `tar
// -x` into an empty directory, from an existing clone.
//
//   bench_git_check [--files N] [--commits C] [--runs R] [--quick]
//
// Builds a repository of N files with C commits of history (each touching
// about 2% of the files), serves it with git daemon on loopback, and prints
// markdown rows:
//   | <benchmark> | <ours> | <peer>: <peer value> | <ours/peer> | <target> |
// Times are the best of R runs, alternating ours and the peer.
//
// Working directories go under --dir, else $TMPDIR if set, else /dev/shm when
// it exists: on a disk file system the kernel's inode allocation for the
// thousands of files both sides create (ext4 scanning recently deleted
// inodes) dominates and makes the rows noise.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/support/peer.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace {

using gitops::bench::RunPeer;
using gitops::source::GitFetcher;
using gitops::source::GitFetchOptions;
using gitops::source::GitRevision;
namespace t = gitops::testing;

struct Flags {
  int files = 3000;
  int commits = 20;
  int runs = 5;
  std::string dir;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--files") {
      f.files = next();
    } else if (a == "--commits") {
      f.commits = next();
    } else if (a == "--runs") {
      f.runs = next();
    } else if (a == "--dir") {
      f.dir = i + 1 < argc ? argv[++i] : "";
    } else if (a == "--quick") {
      f.files = 500;
      f.commits = 5;
      f.runs = 2;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      std::exit(2);
    }
  }
  return f;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_git_check: %s\n", what.c_str());
  std::exit(1);
}

std::string FileContent(int file, int version) {
  std::string out;
  for (int line = 0; line < 40; ++line) {
    absl::StrAppend(&out, "key", line, ": value-", file, "-", version, "-",
                    (file * 7919 + line * 104729 + version) % 1000003, "\n");
  }
  return out;
}

std::string FilePath(int file) {
  return absl::StrFormat("dir%02d/sub%02d/file%05d.yaml", file % 50, (file / 50) % 20, file);
}

// Best wall time of `runs` calls of `fn` (which returns false on failure).
absl::Duration Best(int runs, const std::function<void()>& fn) {
  absl::Duration best = absl::InfiniteDuration();
  for (int i = 0; i < runs; ++i) {
    absl::Time start = absl::Now();
    fn();
    best = std::min(best, absl::Now() - start);
  }
  return best;
}

std::string Ms(absl::Duration d) {
  double ms = absl::ToDoubleMilliseconds(d);
  return ms < 10 ? absl::StrFormat("%.2f ms", ms) : absl::StrFormat("%.0f ms", ms);
}

void Row(const std::string& name, absl::Duration ours, const std::string& peer_name,
         absl::Duration peer, const std::string& target) {
  std::printf("| %s | %s | %s: %s | %.3f | %s |\n", name.c_str(), Ms(ours).c_str(),
              peer_name.c_str(), Ms(peer).c_str(),
              absl::ToDoubleMilliseconds(ours) / absl::ToDoubleMilliseconds(peer), target.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  const char* tmpdir = std::getenv("TMPDIR");
  if (flags.dir.empty() && (tmpdir == nullptr || *tmpdir == '\0') &&
      access("/dev/shm", W_OK) == 0) {
    flags.dir = "/dev/shm";
  }
  if (!flags.dir.empty()) setenv("TMPDIR", flags.dir.c_str(), 1);
  std::string root = t::MakeTempDir("bench-git");
  std::string serve = root + "/srv";
  std::string bare = serve + "/repo.git";

  // A repository with history: one big initial commit, then small ones.
  auto work = t::GitWorkRepo::Create(root + "/work");
  if (!work.ok()) Die(work.status().ToString());
  std::vector<std::pair<std::string, std::string>> files;
  for (int f = 0; f < flags.files; ++f) files.emplace_back(FilePath(f), FileContent(f, 0));
  if (auto c = work->Commit("initial", files); !c.ok()) Die(c.status().ToString());
  int touched = std::max(1, flags.files / 50);
  for (int c = 1; c <= flags.commits; ++c) {
    files.clear();
    for (int k = 0; k < touched; ++k) {
      int f = (c * 131 + k * 37) % flags.files;
      files.emplace_back(FilePath(f), FileContent(f, c));
    }
    if (auto s = work->Commit(absl::StrCat("change ", c), files); !s.ok())
      Die(s.status().ToString());
  }
  if (auto s = t::InitBareRepo(bare); !s.ok()) Die(s.ToString());
  if (auto s = work->PushAll(bare); !s.ok()) Die(s.ToString());
  auto daemon = t::GitDaemon::Start(serve);
  if (!daemon.ok()) Die(daemon.status().ToString());
  std::string url = (*daemon)->Url("repo.git");

  std::unique_ptr<GitFetcher> fetcher = gitops::source::NewLibgit2Fetcher();
  GitFetchOptions options;
  options.url = url;
  options.ref.branch = "main";
  int seq = 0;
  auto fresh = [&](absl::string_view what) { return absl::StrCat(root, "/", what, "-", seq++); };

  // Warm up the server and page cache.
  auto warm = fetcher->FetchAndCheckout(options, fresh("cache"), fresh("co"));
  if (!warm.ok()) Die(warm.status().ToString());

  absl::Duration fetch_ours, clone_peer, check_ours, lsremote_peer, incr_ours, incr_peer;
  std::string clone_dir;
  for (int r = 0; r < flags.runs; ++r) {
    fetch_ours = std::min(r == 0 ? absl::InfiniteDuration() : fetch_ours, Best(1, [&] {
                            std::string cache = fresh("cache"), co = fresh("co");
                            auto rev = fetcher->FetchAndCheckout(options, cache, co);
                            if (!rev.ok()) Die(rev.status().ToString());
                            t::RemoveTree(cache);
                            t::RemoveTree(co);
                          }));
    clone_peer = std::min(
        r == 0 ? absl::InfiniteDuration() : clone_peer, Best(1, [&] {
          std::string dir = fresh("clone");
          RunPeer("bench_git_check", {"git", "clone", "--quiet", "--branch", "main", url, dir});
          if (!clone_dir.empty()) t::RemoveTree(clone_dir);
          clone_dir = dir;
        }));
  }
  check_ours = Best(flags.runs * 4, [&] {
    auto rev = fetcher->ResolveRemote(options);
    if (!rev.ok()) Die(rev.status().ToString());
  });
  lsremote_peer = Best(flags.runs * 4, [&] {
    RunPeer("bench_git_check", {"git", "ls-remote", url, "refs/heads/main"});
  });

  // Incremental: one new commit since the cache / clone was filled.
  std::string cache = fresh("cache");
  if (auto rev = fetcher->FetchAndCheckout(options, cache, fresh("co")); !rev.ok()) {
    Die(rev.status().ToString());
  }
  incr_ours = incr_peer = absl::InfiniteDuration();
  for (int r = 0; r < flags.runs; ++r) {
    files.clear();
    for (int k = 0; k < touched; ++k) {
      int f = (r * 17 + k * 53) % flags.files;
      files.emplace_back(FilePath(f), FileContent(f, 1000 + r));
    }
    if (auto s = work->Commit(absl::StrCat("incr ", r), files); !s.ok()) Die(s.status().ToString());
    if (auto s = work->Push(bare, "main", "refs/heads/main"); !s.ok()) Die(s.ToString());
    incr_ours = std::min(incr_ours, Best(1, [&] {
                           std::string co = fresh("co");
                           auto rev = fetcher->FetchAndCheckout(options, cache, co);
                           if (!rev.ok()) Die(rev.status().ToString());
                           t::RemoveTree(co);
                         }));
    incr_peer = std::min(
        incr_peer, Best(1, [&] {
          // The same work as ours: fetch what is new, write the full tree into
          // a fresh directory.
          std::string co = fresh("peer-co");
          RunPeer("bench_git_check",
                  {"sh", "-c",
                   absl::StrCat("git -C '", clone_dir, "' fetch --quiet origin main && mkdir '", co,
                                "' && git -C '", clone_dir, "' archive FETCH_HEAD | tar -x -C '",
                                co, "'")});
          t::RemoveTree(co);
        }));
  }

  std::string size = absl::StrCat(flags.files, " files, ", flags.commits + 1, " commits");
  Row(absl::StrCat("git: nothing-changed check, ResolveRemote (", size, ")"), check_ours,
      "FetchAndCheckout into empty cache", fetch_ours, "< 0.1 (ref listing only, no download)");
  Row(absl::StrCat("git: nothing-changed check, ResolveRemote (", size, ")"), check_ours,
      "git ls-remote", lsremote_peer, "<= 1.0");
  Row(absl::StrCat("git: fetch + checkout, empty cache (", size, ")"), fetch_ours, "git clone",
      clone_peer, "<= 1.5");
  Row(absl::StrCat("git: fetch + checkout after 1 new commit (", size, ")"), incr_ours,
      "git fetch + git archive piped to tar -x", incr_peer, "<= 1.5");

  daemon->reset();
  t::RemoveTree(root);
  return 0;
}
