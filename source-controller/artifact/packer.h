// Packs a checkout into a deterministic .tar.gz artifact.
#ifndef GITOPS_SOURCE_CONTROLLER_ARTIFACT_PACKER_H_
#define GITOPS_SOURCE_CONTROLLER_ARTIFACT_PACKER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "source-controller/artifact/ignore.h"

namespace gitops::source {

struct PackResult {
  std::string digest;  // "sha256:<hex>" of the .tar.gz bytes
  int64_t size = 0;    // bytes of the .tar.gz
  int64_t files = 0;   // regular files in the archive
};

struct PackOptions {
  // Deflate worker threads besides the caller's (which walks the tree and
  // formats the tar stream). -1 = one per core, at most 4. The output bytes
  // do not depend on this value.
  int threads = -1;
  // zlib level; 6 is Go's compress/gzip default, as Flux uses.
  int level = 6;
  // Packing stops with DeadlineExceeded ("timed out after <timeout>")
  // once this passes; checked before every entry and every 4 MiB of a
  // file (the reconcile's spec.timeout).
  absl::Time deadline = absl::InfiniteFuture();
  absl::Duration timeout = absl::ZeroDuration();
};

// Writes a deterministic gzip tar of root's tree to out_path (created or
// truncated, mode 0600):
//   - entries in filepath.Walk order (names byte-sorted within a directory,
//     a directory right before its contents), as Flux's Storage.Archive;
//   - a directory entry ("dir/", mode 0750) for every directory that is not
//     excluded, files with mode 0600, or 0700 when any execute bit is set;
//   - uid/gid 0, empty uname/gname, mtime 0; ustar headers, with a pax
//     header only for paths that do not fit ustar;
//   - any ".git" entry, excluded paths, and everything that is not a regular
//     file or directory (symlinks, sockets, devices) left out, as Flux does;
//   - gzip header with zero mtime and no name; level `options.level`.
// Same tree -> same bytes, whatever the checkout time, umask, owner or
// readdir order. The digest is computed while writing (no second pass).
// On error out_path is removed. Errors: NotFound (root missing),
// FailedPrecondition (a file changed while being read), DeadlineExceeded
// (options.deadline passed), Internal (I/O).
absl::StatusOr<PackResult> PackDirectory(const std::string& root, const IgnoreMatcher& ignore,
                                         const std::string& out_path);
absl::StatusOr<PackResult> PackDirectory(const std::string& root, const IgnoreMatcher& ignore,
                                         const std::string& out_path, const PackOptions& options);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_ARTIFACT_PACKER_H_
