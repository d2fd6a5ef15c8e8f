// GitFetcher over libgit2 1.5 (file, git, http(s), ssh transports).
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_LIBGIT2_FETCHER_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_LIBGIT2_FETCHER_H_

#include <memory>

#include "source-controller/git/git_fetcher.h"

namespace gitops::source {

// Initializes libgit2 once per process (and registers the socket stream that
// enforces GitFetchOptions::timeout). Never fails; thread-safe.
struct Libgit2FetcherOptions {
  // A cache that holds more pack files than this after a fetch is compacted
  // into one pack (see pack_compaction.h): each fetch adds a pack, and every
  // pack costs time and memory on each later open.
  int max_packs_per_cache = 32;
};

std::unique_ptr<GitFetcher> NewLibgit2Fetcher(Libgit2FetcherOptions options = {});

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_LIBGIT2_FETCHER_H_
