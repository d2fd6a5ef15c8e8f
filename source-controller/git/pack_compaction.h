// Keeps a cached bare repository's pack count bounded.
//
// Every incremental fetch into a cache adds one pack file. libgit2 opens
// every pack's index when it opens the repository, so a cache that a
// source has fetched into 500 times costs 500 index maps and lookups on
// each later fetch (measured: 7 ms per fetch after 60 fetches, 26 ms after
// 500, with memory that grows with the count). Compaction is `git repack
// -a -d` done with libgit2's pack builder: one new pack of everything the
// cache's refs reach, then the old packs removed.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_PACK_COMPACTION_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_PACK_COMPACTION_H_

#include <string>

#include "absl/status/statusor.h"

struct git_repository;

namespace gitops::source {

// The number of pack files (objects/pack/pack-*.pack) in the bare
// repository at git_dir; 0 when there is no pack directory.
int CountPacks(const std::string& git_dir);

// When the bare repository `repo` (at git_dir) holds more than max_packs
// packs, writes one pack of every object reachable from its refs (commits
// with their history, trees, blobs, annotated tags) and deletes the others.
// Objects no ref reaches are dropped, as git gc does: a later fetch brings
// them back if a source asks for them. Returns the number of packs left.
// The caller holds the cache's lock; `repo` must not be in use elsewhere.
// Errors leave the old packs in place (the new pack, if written, only
// duplicates them).
absl::StatusOr<int> CompactPacks(git_repository* repo, const std::string& git_dir, int max_packs);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_PACK_COMPACTION_H_
