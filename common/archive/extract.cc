#include "common/archive/extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/status/status_macros.h"

namespace gitops::common {
namespace {

constexpr int kMaxSymlinkHops = 40;
constexpr size_t kBufSize = 256 * 1024;

absl::Status Errno(absl::string_view what, absl::string_view path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", strerror(errno)));
}

std::vector<std::string> Split(absl::string_view path) {
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(path, '/')) {
    if (!c.empty()) out.emplace_back(c);
  }
  return out;
}

// Removes everything inside the directory `dir_fd` without following symlinks.
void ClearDir(int dir_fd) {
  int fd = dup(dir_fd);
  if (fd < 0) return;
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    absl::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  closedir(d);
  for (const std::string& n : names) {
    struct stat st;
    if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dir_fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        fchmod(sub, 0700);  // make sure we may delete its contents
        ClearDir(sub);
        close(sub);
      }
      unlinkat(dir_fd, n.c_str(), AT_REMOVEDIR);
    } else {
      unlinkat(dir_fd, n.c_str(), 0);
    }
  }
}

class Extractor {
 public:
  Extractor(int dest_fd, const ExtractLimits& limits) : dest_fd_(dest_fd), limits_(limits) {}

  absl::Status Run(const std::string& tarball);

 private:
  enum class Type { kDir, kFile, kSymlink };
  struct Node {
    Type type;
    std::string target;  // symlinks
  };

  // Validates a raw entry name and returns its clean relative form ("" for
  // the root itself).
  absl::StatusOr<std::string> CleanName(const char* raw, absl::string_view what) const;
  // Creates missing parent directories of `path`; refuses to go through a
  // symlink or a file.
  absl::Status EnsureParents(const std::string& path);
  absl::Status CheckFree(const std::string& path) const;
  // OK when `target`, as the content of a symlink at `path`, resolves inside
  // the destination given the tree extracted so far.
  absl::Status CheckSymlink(const std::string& path, const std::string& target) const;

  absl::Status ExtractDir(const std::string& path);
  absl::Status ExtractFile(struct archive* a, struct archive_entry* e, const std::string& path);
  absl::Status ExtractSymlink(struct archive_entry* e, const std::string& path);
  absl::Status ExtractHardlink(struct archive_entry* e, const std::string& path);

  const int dest_fd_;
  const ExtractLimits limits_;
  std::map<std::string, Node> tree_;
  int64_t entries_ = 0;
  int64_t bytes_ = 0;
  std::unique_ptr<char[]> buf_{new char[kBufSize]};
};

absl::StatusOr<std::string> Extractor::CleanName(const char* raw, absl::string_view what) const {
  if (raw == nullptr || *raw == '\0') {
    return absl::InvalidArgumentError(absl::StrCat(what, " has an empty name"));
  }
  absl::string_view name = raw;
  if (name.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", name, "\": absolute paths are not allowed"));
  }
  std::vector<absl::string_view> parts;
  for (absl::string_view c : absl::StrSplit(name, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " \"", name, "\": '..' path components are not allowed"));
    }
    parts.push_back(c);
  }
  return absl::StrJoin(parts, "/");
}

absl::Status Extractor::EnsureParents(const std::string& path) {
  size_t pos = 0;
  while ((pos = path.find('/', pos)) != std::string::npos) {
    const std::string parent = path.substr(0, pos++);
    auto it = tree_.find(parent);
    if (it == tree_.end()) {
      if (mkdirat(dest_fd_, parent.c_str(), 0755) != 0) return Errno("mkdir", parent);
      tree_[parent] = Node{Type::kDir, ""};
    } else if (it->second.type == Type::kSymlink) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entry \"", path, "\" is placed under symlink \"", parent, "\"; refusing to follow it"));
    } else if (it->second.type != Type::kDir) {
      return absl::InvalidArgumentError(
          absl::StrCat("entry \"", path, "\": parent \"", parent, "\" is not a directory"));
    }
  }
  return absl::OkStatus();
}

absl::Status Extractor::CheckFree(const std::string& path) const {
  if (tree_.count(path) > 0) {
    return absl::InvalidArgumentError(absl::StrCat("duplicate entry \"", path, "\""));
  }
  return absl::OkStatus();
}

absl::Status Extractor::CheckSymlink(const std::string& path, const std::string& target) const {
  auto escape = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("symlink \"", path, "\" -> \"", target, "\" points outside the destination"));
  };
  if (absl::StartsWith(target, "/")) return escape();
  std::vector<std::string> cur = Split(path);
  cur.pop_back();  // resolve relative to the link's directory
  std::deque<std::string> todo;
  for (std::string& c : Split(target)) todo.push_back(std::move(c));
  int hops = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      if (cur.empty()) return escape();
      cur.pop_back();
      continue;
    }
    cur.push_back(std::move(c));
    auto it = tree_.find(absl::StrJoin(cur, "/"));
    if (it == tree_.end() || it->second.type != Type::kSymlink) continue;
    // Through an earlier symlink: continue with its target.
    if (++hops > kMaxSymlinkHops) {
      return absl::InvalidArgumentError(
          absl::StrCat("symlink \"", path, "\" -> \"", target, "\": too many levels of links"));
    }
    const std::string& next = it->second.target;
    if (absl::StartsWith(next, "/")) return escape();
    cur.pop_back();
    std::vector<std::string> parts = Split(next);
    todo.insert(todo.begin(), parts.begin(), parts.end());
  }
  return absl::OkStatus();
}

absl::Status Extractor::ExtractDir(const std::string& path) {
  if (path.empty()) return absl::OkStatus();  // the root itself ("./")
  RETURN_IF_ERROR(EnsureParents(path));
  auto it = tree_.find(path);
  if (it != tree_.end()) {
    if (it->second.type == Type::kDir) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("directory entry \"", path, "\" conflicts with an earlier entry"));
  }
  if (mkdirat(dest_fd_, path.c_str(), 0755) != 0) return Errno("mkdir", path);
  tree_[path] = Node{Type::kDir, ""};
  return absl::OkStatus();
}

absl::Status Extractor::ExtractFile(struct archive* a, struct archive_entry* e,
                                    const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("file entry with an empty name");
  const int64_t declared = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  if (declared < 0) {
    return absl::DataLossError(absl::StrCat("entry \"", path, "\" has a negative size"));
  }
  if (declared > limits_.max_total_bytes - bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("entry \"", path, "\" (", declared, " bytes) would take the extracted data ",
                     "past the limit of ", limits_.max_total_bytes, " bytes"));
  }
  RETURN_IF_ERROR(EnsureParents(path));
  RETURN_IF_ERROR(CheckFree(path));
  const mode_t mode = (archive_entry_perm(e) & 0111) != 0 ? 0755 : 0644;
  int fd =
      openat(dest_fd_, path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Errno("create", path);
  absl::Cleanup close_fd = [fd] { close(fd); };
  tree_[path] = Node{Type::kFile, ""};
  while (true) {
    la_ssize_t n = archive_read_data(a, buf_.get(), kBufSize);
    if (n < 0) {
      return absl::DataLossError(absl::StrCat("corrupt or truncated archive at entry \"", path,
                                              "\": ", archive_error_string(a)));
    }
    if (n == 0) break;
    bytes_ += n;
    if (bytes_ > limits_.max_total_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat("entry \"", path,
                                                       "\": extracted data exceeds the limit of ",
                                                       limits_.max_total_bytes, " bytes"));
    }
    const char* p = buf_.get();
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      ssize_t w = write(fd, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Errno("write", path);
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
  }
  return absl::OkStatus();
}

absl::Status Extractor::ExtractSymlink(struct archive_entry* e, const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("symlink entry with an empty name");
  const char* raw_target = archive_entry_symlink(e);
  if (raw_target == nullptr || *raw_target == '\0') {
    return absl::InvalidArgumentError(absl::StrCat("symlink \"", path, "\" has no target"));
  }
  const std::string target = raw_target;
  RETURN_IF_ERROR(EnsureParents(path));
  RETURN_IF_ERROR(CheckFree(path));
  RETURN_IF_ERROR(CheckSymlink(path, target));
  if (symlinkat(target.c_str(), dest_fd_, path.c_str()) != 0) return Errno("symlink", path);
  tree_[path] = Node{Type::kSymlink, target};
  return absl::OkStatus();
}

absl::Status Extractor::ExtractHardlink(struct archive_entry* e, const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("hardlink entry with an empty name");
  ASSIGN_OR_RETURN(std::string target, CleanName(archive_entry_hardlink(e),
                                                 absl::StrCat("hardlink \"", path, "\" target")));
  auto it = tree_.find(target);
  if (it == tree_.end() || it->second.type != Type::kFile) {
    return absl::InvalidArgumentError(absl::StrCat("hardlink \"", path, "\" -> \"", target,
                                                   "\": target is not a file in the archive"));
  }
  RETURN_IF_ERROR(EnsureParents(path));
  RETURN_IF_ERROR(CheckFree(path));
  if (linkat(dest_fd_, target.c_str(), dest_fd_, path.c_str(), 0) != 0) {
    return Errno("link", path);
  }
  tree_[path] = Node{Type::kFile, ""};
  return absl::OkStatus();
}

absl::Status Extractor::Run(const std::string& tarball) {
  struct archive* a = archive_read_new();
  if (a == nullptr) return absl::InternalError("libarchive: out of memory");
  absl::Cleanup free_archive = [a] { archive_read_free(a); };
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, tarball.c_str(), 64 * 1024) != ARCHIVE_OK) {
    const int err = archive_errno(a);
    std::string msg =
        absl::StrCat("corrupt or truncated archive ", tarball, ": ", archive_error_string(a));
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrCat("open ", tarball, ": ", archive_error_string(a)));
    }
    return absl::DataLossError(msg);
  }
  bool first = true;
  while (true) {
    struct archive_entry* e = nullptr;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      return absl::DataLossError(absl::StrCat("corrupt or truncated archive after ", entries_,
                                              " entries: ", archive_error_string(a)));
    }
    if (first) {
      first = false;
      if (archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP) {
        return absl::DataLossError("archive is not gzip-compressed");
      }
    }
    if (++entries_ > limits_.max_files) {
      return absl::ResourceExhaustedError(
          absl::StrCat("archive has more than ", limits_.max_files, " entries"));
    }
    const char* raw = archive_entry_pathname(e);
    ASSIGN_OR_RETURN(std::string path, CleanName(raw, "entry"));
    if (archive_entry_hardlink(e) != nullptr) {
      RETURN_IF_ERROR(ExtractHardlink(e, path));
      continue;
    }
    const mode_t type = archive_entry_filetype(e);
    switch (type) {
      case AE_IFDIR:
        RETURN_IF_ERROR(ExtractDir(path));
        break;
      case AE_IFREG:
        RETURN_IF_ERROR(ExtractFile(a, e, path));
        break;
      case AE_IFLNK:
        RETURN_IF_ERROR(ExtractSymlink(e, path));
        break;
      case AE_IFCHR:
      case AE_IFBLK:
        return absl::InvalidArgumentError(
            absl::StrCat("entry \"", path, "\": device files are not allowed"));
      case AE_IFIFO:
        return absl::InvalidArgumentError(
            absl::StrCat("entry \"", path, "\": fifos are not allowed"));
      case AE_IFSOCK:
        return absl::InvalidArgumentError(
            absl::StrCat("entry \"", path, "\": sockets are not allowed"));
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("entry \"", path, "\": unsupported entry type ", type));
    }
  }
  if (first) {
    // An empty tar still has a gzip filter; anything else never got here.
    if (archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP) {
      return absl::DataLossError("archive is not gzip-compressed");
    }
  }
  // A later symlink can change where an earlier one leads: check them all
  // against the final tree.
  for (const auto& [path, node] : tree_) {
    if (node.type == Type::kSymlink) RETURN_IF_ERROR(CheckSymlink(path, node.target));
  }
  return absl::OkStatus();
}

absl::Status MkdirAll(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a directory"));
  }
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) RETURN_IF_ERROR(MkdirAll(path.substr(0, slash)));
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir", path);
  return absl::OkStatus();
}

}  // namespace

absl::Status ExtractTarGz(const std::string& tarball, const std::string& dest_dir,
                          const ExtractLimits& limits) {
  RETURN_IF_ERROR(MkdirAll(dest_dir));
  int dest_fd = open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dest_fd < 0) return Errno("open", dest_dir);
  absl::Cleanup close_dest = [dest_fd] { close(dest_fd); };
  {
    DIR* d = opendir(dest_dir.c_str());
    if (d == nullptr) return Errno("read directory", dest_dir);
    bool empty = true;
    while (struct dirent* e = readdir(d)) {
      absl::string_view n = e->d_name;
      if (n != "." && n != "..") empty = false;
    }
    closedir(d);
    if (!empty) {
      return absl::FailedPreconditionError(
          absl::StrCat("extract into ", dest_dir, ": directory is not empty"));
    }
  }
  Extractor extractor(dest_fd, limits);
  absl::Status s = extractor.Run(tarball);
  if (!s.ok()) {
    ClearDir(dest_fd);
    return s;
  }
  return absl::OkStatus();
}

}  // namespace gitops::common
