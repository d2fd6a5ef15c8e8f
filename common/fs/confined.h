// File-system operations confined beneath a directory: nothing here follows
// a symbolic link below the directory it starts from. For trees whose
// content a tenant controls (checkouts, unpacked artifacts) and for the
// controllers' own trees (storage, git caches, work directories), where a
// planted symlink must never redirect a write, a removal or a read.
#ifndef GITOPS_COMMON_FS_CONFINED_H_
#define GITOPS_COMMON_FS_CONFINED_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::common {

// An owned file descriptor, closed on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership; returns the descriptor.
  int release();

 private:
  int fd_ = -1;
};

// The clean components of the relative path `rel`: '/'-separated, empty and
// "." components dropped, ".." removing the previous component and clamped
// at the root (the lexical part of Flux's securejoin.SecureJoin). The result
// never holds "", "." or "..". A leading '/' is ignored.
std::vector<std::string> SplitClean(absl::string_view rel);

// "a symbolic link", "a directory", "a named pipe (FIFO)", "a socket", "a
// character device", "a block device", "a regular file".
std::string FileTypeName(mode_t mode);

// The first prefix of `parts`, below the directory `root_fd`, that is a
// symbolic link, '/'-joined ("st" for {"st", "planted"}); nullopt when none
// is. A missing component ends the search (it would be created as a
// directory). Errors: Internal on I/O failure.
absl::StatusOr<std::optional<std::string>> FirstSymlink(int root_fd,
                                                        const std::vector<std::string>& parts);

// Opens the directory reached from `root_fd` through `parts`, one component
// at a time with openat(O_NOFOLLOW | O_DIRECTORY), so a symbolic link at any
// level is never followed. With `create`, missing directories are made with
// `mode`. Messages name components by their path relative to root_fd.
// Errors: InvalidArgument (a component is "", ".", ".." or holds '/'),
// NotFound (a component is missing and !create), FailedPrecondition (a
// component is a symbolic link or not a directory), Internal.
absl::StatusOr<UniqueFd> OpenDirBeneath(int root_fd, const std::vector<std::string>& parts,
                                        bool create, mode_t mode = 0755);
// The same from the directory `root`, which is trusted: it is opened
// following symlinks, like any path an administrator configures.
absl::StatusOr<UniqueFd> OpenDirBeneath(const std::string& root,
                                        const std::vector<std::string>& parts, bool create,
                                        mode_t mode = 0755);

// Removes everything inside the directory `dir_fd` (not the directory
// itself) with unlinkat, never following a symbolic link: a link is removed,
// not what it points to. Holds a constant number of descriptors however
// deep the tree. Errors: Internal (what could not be removed stays).
absl::Status ClearDir(int dir_fd);

// Removes `root`/`parts` (a file; a symbolic link itself, not its target;
// or a directory tree, as ClearDir). OK when absent. A symbolic link or a
// non-directory among the parent components is FailedPrecondition and
// nothing is removed; InvalidArgument for an empty `parts` or a bad
// component (as OpenDirBeneath); Internal on I/O failure.
absl::Status RemoveBeneath(const std::string& root, const std::vector<std::string>& parts);
// RemoveBeneath(dirname(path), {basename(path)}): the parent components of
// `path` are trusted, its last component and what lies below are not.
absl::Status RemoveTree(const std::string& path);

// Reads the file `name` (one component) in the directory `dir_fd` only if it
// is a regular file: opened with O_NOFOLLOW | O_NONBLOCK (a symbolic link,
// a FIFO or a device is never followed, waited on or read), checked with
// fstat, and read up to `max_bytes`. Errors: NotFound (absent),
// FailedPrecondition (not a regular file; the message says what it is),
// ResourceExhausted (larger than max_bytes), Internal. Messages name the
// file as `display`.
absl::StatusOr<std::string> ReadRegularFileAt(int dir_fd, const std::string& name,
                                              int64_t max_bytes, absl::string_view display);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_FS_CONFINED_H_
