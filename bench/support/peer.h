// Running a benchmark's peer command (git, tar, curl, ...) the way every
// benchmark here times it: posix_spawn + waitpid, output discarded, no
// polling that would inflate the peer's time. Not thread-safe.
#ifndef GITOPS_BENCH_SUPPORT_PEER_H_
#define GITOPS_BENCH_SUPPORT_PEER_H_

#include <string>
#include <vector>

namespace gitops::bench {

// Runs argv (argv[0] looked up in PATH) with stdout and stderr sent to
// /dev/null and waits for it. A command that cannot start or exits non-zero
// ends the benchmark: "<bench>: ..." on stderr, exit 1.
void RunPeer(const char* bench, std::vector<std::string> argv);

// RunPeer(bench, {"sh", "-c", command}).
void RunPeerShell(const char* bench, const std::string& command);

}  // namespace gitops::bench

#endif  // GITOPS_BENCH_SUPPORT_PEER_H_
