// Files the benchmarks commit to their git repositories.
#ifndef GITOPS_BENCH_SUPPORT_REPO_CONTENT_H_
#define GITOPS_BENCH_SUPPORT_REPO_CONTENT_H_

#include <string>

namespace gitops::bench {

// A ConfigMap manifest named cm-<file> with 30 data keys whose values carry
// `version`: each new version changes every line, as a real edit would.
std::string ConfigMapFile(int file, int version);

}  // namespace gitops::bench

#endif  // GITOPS_BENCH_SUPPORT_REPO_CONTENT_H_
