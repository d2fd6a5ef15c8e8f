#include "common/fs/confined.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"

namespace gitops::common {
namespace {

absl::Status Errno(int err, absl::string_view what, absl::string_view path) {
  std::string msg = absl::StrCat(what, " ", path, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

bool ValidComponent(absl::string_view c) {
  return !c.empty() && c != "." && c != ".." && c.find('/') == absl::string_view::npos &&
         c.find('\0') == absl::string_view::npos;
}

std::string Prefix(const std::vector<std::string>& parts, size_t n) {
  return absl::StrJoin(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(n), "/");
}

// The names in `dir_fd`, except "." and "..".
absl::StatusOr<std::vector<std::string>> ReadNames(int dir_fd) {
  int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("dup: ", strerror(errno)));
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    const int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("read directory: ", strerror(err)));
  }
  rewinddir(d);  // the duplicate shares the offset of an earlier read
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = readdir(d)) {
    absl::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  const int err = errno;
  closedir(d);
  if (err != 0) return absl::InternalError(absl::StrCat("read directory: ", strerror(err)));
  return names;
}

// Removes the non-directories in `dir_fd`; returns its sub-directories.
std::vector<std::string> UnlinkFiles(int dir_fd, std::vector<std::string>& errors) {
  std::vector<std::string> subdirs;
  auto names = ReadNames(dir_fd);
  if (!names.ok()) {
    errors.emplace_back(names.status().message());
    return subdirs;
  }
  for (const std::string& n : *names) {
    struct stat st;
    if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) errors.push_back(absl::StrCat("stat ", n, ": ", strerror(errno)));
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      subdirs.push_back(n);
    } else if (unlinkat(dir_fd, n.c_str(), 0) != 0 && errno != ENOENT) {
      errors.push_back(absl::StrCat("remove ", n, ": ", strerror(errno)));
    }
  }
  return subdirs;
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.release();
  }
  return *this;
}

int UniqueFd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

std::vector<std::string> SplitClean(absl::string_view rel) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(rel, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.emplace_back(part);
  }
  return out;
}

std::string FileTypeName(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a named pipe (FIFO)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISREG(mode)) return "a regular file";
  return "not a regular file";
}

absl::StatusOr<std::optional<std::string>> FirstSymlink(int root_fd,
                                                        const std::vector<std::string>& parts) {
  UniqueFd dir(fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!dir.valid()) return absl::InternalError(absl::StrCat("dup: ", strerror(errno)));
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!ValidComponent(parts[i])) {
      return absl::InvalidArgumentError(absl::StrCat("invalid path component '", parts[i], "'"));
    }
    struct stat st;
    if (fstatat(dir.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return std::nullopt;
      return Errno(errno, "stat", Prefix(parts, i + 1));
    }
    if (S_ISLNK(st.st_mode)) return Prefix(parts, i + 1);
    if (!S_ISDIR(st.st_mode) || i + 1 == parts.size()) return std::nullopt;
    UniqueFd next(
        openat(dir.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) return Errno(errno, "open", Prefix(parts, i + 1));
    dir = std::move(next);
  }
  return std::nullopt;
}

absl::StatusOr<UniqueFd> OpenDirBeneath(int root_fd, const std::vector<std::string>& parts,
                                        bool create, mode_t mode) {
  UniqueFd dir(fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!dir.valid()) return absl::InternalError(absl::StrCat("dup: ", strerror(errno)));
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& c = parts[i];
    if (!ValidComponent(c)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid path component '", c, "'"));
    }
    UniqueFd next(openat(dir.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid() && errno == ENOENT && create) {
      if (mkdirat(dir.get(), c.c_str(), mode) != 0 && errno != EEXIST) {
        return Errno(errno, "mkdir", Prefix(parts, i + 1));
      }
      next =
          UniqueFd(openat(dir.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!next.valid()) {
      const int err = errno;
      const std::string rel = Prefix(parts, i + 1);
      if (err == ELOOP || err == ENOTDIR) {
        // Say which: O_NOFOLLOW on a link is ELOOP, but so is a loop.
        struct stat st;
        std::string what = "not a directory";
        if (fstatat(dir.get(), c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
          what = FileTypeName(st.st_mode);
        }
        return absl::FailedPreconditionError(
            absl::StrCat("'", rel, "' is ", what, ", not a directory; refusing to use it"));
      }
      return Errno(err, "open", rel);
    }
    dir = std::move(next);
  }
  return dir;
}

absl::StatusOr<UniqueFd> OpenDirBeneath(const std::string& root,
                                        const std::vector<std::string>& parts, bool create,
                                        mode_t mode) {
  UniqueFd root_fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return Errno(errno, "open", root);
  return OpenDirBeneath(root_fd.get(), parts, create, mode);
}

absl::Status ClearDir(int dir_fd) {
  // Depth-first with one open directory at a time: descend with
  // openat(O_NOFOLLOW), climb back with "..", checked against the inode we
  // came from, so a deep tree cannot exhaust descriptors.
  struct Level {
    std::vector<std::string> pending;  // sub-directories still to remove
    std::string name;                  // this directory's name in its parent
    struct stat parent;                // the parent's identity
  };
  std::vector<std::string> errors;
  UniqueFd cur(fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return absl::InternalError(absl::StrCat("dup: ", strerror(errno)));
  std::vector<Level> stack;
  stack.push_back(Level{UnlinkFiles(cur.get(), errors), "", {}});
  while (!stack.empty()) {
    Level& top = stack.back();
    if (!top.pending.empty()) {
      std::string name = std::move(top.pending.back());
      top.pending.pop_back();
      struct stat here;
      if (fstat(cur.get(), &here) != 0) {
        errors.push_back(absl::StrCat("stat: ", strerror(errno)));
        break;
      }
      UniqueFd child(
          openat(cur.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child.valid()) {
        // Replaced by a non-directory since the listing: remove that.
        if (errno == ELOOP || errno == ENOTDIR) {
          unlinkat(cur.get(), name.c_str(), 0);
        } else if (errno != ENOENT) {
          errors.push_back(absl::StrCat("open ", name, ": ", strerror(errno)));
        }
        continue;
      }
      fchmod(child.get(), 0700);  // so that its entries may be listed and removed
      std::vector<std::string> subdirs = UnlinkFiles(child.get(), errors);
      cur = std::move(child);
      stack.push_back(Level{std::move(subdirs), std::move(name), here});
      continue;
    }
    if (stack.size() == 1) break;
    // Climb back and remove the emptied directory.
    UniqueFd parent(openat(cur.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat st;
    if (!parent.valid() || fstat(parent.get(), &st) != 0 || !SameFile(st, top.parent)) {
      errors.push_back(absl::StrCat("directory ", top.name, " moved while being removed"));
      break;
    }
    if (unlinkat(parent.get(), top.name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      errors.push_back(absl::StrCat("remove ", top.name, ": ", strerror(errno)));
    }
    cur = std::move(parent);
    stack.pop_back();
  }
  if (!errors.empty()) {
    return absl::InternalError(absl::StrCat("remove: ", absl::StrJoin(errors, ", ")));
  }
  return absl::OkStatus();
}

absl::Status RemoveBeneath(const std::string& root, const std::vector<std::string>& parts) {
  if (parts.empty()) return absl::InvalidArgumentError("nothing to remove: empty path");
  const std::vector<std::string> parents(parts.begin(), parts.end() - 1);
  const std::string& last = parts.back();
  if (!ValidComponent(last)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid path component '", last, "'"));
  }
  auto parent = OpenDirBeneath(root, parents, /*create=*/false);
  if (!parent.ok()) {
    if (absl::IsNotFound(parent.status())) return absl::OkStatus();
    return parent.status();
  }
  const std::string rel = absl::StrJoin(parts, "/");
  struct stat st;
  if (fstatat(parent->get(), last.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno(errno, "stat", rel);
  }
  if (S_ISDIR(st.st_mode)) {
    UniqueFd dir(
        openat(parent->get(), last.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) return Errno(errno, "open", rel);
    fchmod(dir.get(), 0700);
    RETURN_IF_ERROR(Annotate(ClearDir(dir.get()), rel));
    if (unlinkat(parent->get(), last.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return Errno(errno, "remove", rel);
    }
    return absl::OkStatus();
  }
  if (unlinkat(parent->get(), last.c_str(), 0) != 0 && errno != ENOENT) {
    return Errno(errno, "remove", rel);
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  std::string clean = path;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  const size_t slash = clean.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : clean.substr(0, slash);
  const std::string base = slash == std::string::npos ? clean : clean.substr(slash + 1);
  if (!ValidComponent(base)) {
    return absl::InvalidArgumentError(absl::StrCat("refusing to remove '", path, "'"));
  }
  return RemoveBeneath(dir, {base});
}

absl::StatusOr<std::string> ReadRegularFileAt(int dir_fd, const std::string& name,
                                              int64_t max_bytes, absl::string_view display) {
  if (!ValidComponent(name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid file name '", name, "'"));
  }
  UniqueFd fd(
      openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ELOOP) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to read ", display, ": it is a symbolic link, not a regular file"));
    }
    return Errno(err, "open", display);
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Errno(errno, "stat", display);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("refusing to read ", display, ": it is ",
                                                      FileTypeName(st.st_mode),
                                                      ", not a regular file"));
  }
  auto too_big = [&](int64_t size) {
    return absl::ResourceExhaustedError(absl::StrCat("refusing to read ", display, ": ", size,
                                                     " bytes is more than the limit of ", max_bytes,
                                                     " bytes"));
  };
  if (st.st_size > max_bytes) return too_big(st.st_size);
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[16384];
  while (true) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, "read", display);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    // The size fstat gave may be wrong (a file that grows): bound the read.
    if (static_cast<int64_t>(out.size()) > max_bytes) {
      return too_big(static_cast<int64_t>(out.size()));
    }
  }
  return out;
}

}  // namespace gitops::common
