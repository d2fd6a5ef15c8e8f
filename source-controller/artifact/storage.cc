#include "source-controller/artifact/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/crypto/sha256.h"
#include "common/fs/confined.h"
#include "common/status/status_macros.h"

namespace gitops::source {
namespace {

constexpr absl::string_view kTempPrefix = ".tmp-";
constexpr absl::string_view kTempSuffix = ".partial";
constexpr absl::string_view kArtifactSuffix = ".tar.gz";

absl::Status Errno(absl::string_view what, const std::string& path) {
  int err = errno;
  std::string msg = absl::StrCat(what, " ", path, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

bool IsTempName(absl::string_view name) {
  return absl::StartsWith(name, kTempPrefix) && absl::EndsWith(name, kTempSuffix);
}

// "<64 lowercase hex>.tar.gz"
bool IsArtifactName(absl::string_view name) {
  if (name.size() != 64 + kArtifactSuffix.size() || !absl::EndsWith(name, kArtifactSuffix)) {
    return false;
  }
  for (size_t i = 0; i < 64; ++i) {
    char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool SafeComponent(absl::string_view c) {
  return !c.empty() && c != "." && c != ".." && c.find('/') == absl::string_view::npos &&
         c.find('\0') == absl::string_view::npos;
}

absl::Status MkdirAll(const std::string& path, mode_t mode) {
  if (path.empty()) return absl::OkStatus();
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a directory"));
  }
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    RETURN_IF_ERROR(MkdirAll(path.substr(0, slash), mode));
  }
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return Errno("mkdir", path);
  return absl::OkStatus();
}

// The real sub-directories of `dir_fd` (never symlinks), name-sorted; the
// names of other entries that are not regular files go to *skipped.
std::vector<std::string> SubDirs(int dir_fd, std::vector<std::string>* skipped) {
  std::vector<std::string> out;
  int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return out;
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return out;
  }
  rewinddir(d);
  while (struct dirent* e = readdir(d)) {
    absl::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      out.emplace_back(name);
    } else if (!S_ISREG(st.st_mode) && skipped != nullptr) {
      skipped->emplace_back(name);
    }
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Removes stale temp files in the three directory levels under dir_fd,
// never following a symlink.
void CleanTempFiles(int dir_fd, int depth) {
  if (depth == 3) {
    int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return;
    DIR* d = fdopendir(fd);
    if (d == nullptr) {
      close(fd);
      return;
    }
    std::vector<std::string> stale;
    while (struct dirent* e = readdir(d)) {
      if (IsTempName(e->d_name)) stale.emplace_back(e->d_name);
    }
    closedir(d);
    for (const std::string& name : stale) {
      struct stat st;
      if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
        unlinkat(dir_fd, name.c_str(), 0);
      }
    }
    return;
  }
  for (const std::string& sub : SubDirs(dir_fd, nullptr)) {
    common::UniqueFd fd(
        openat(dir_fd, sub.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.valid()) CleanTempFiles(fd.get(), depth + 1);
  }
}

std::string RandomHex(size_t bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    unsigned v = static_cast<unsigned>(rng() & 0xff);
    out.push_back(kHex[v >> 4]);
    out.push_back(kHex[v & 15]);
  }
  return out;
}

// fsyncs `name` in dir_fd ("" = the directory itself); `rel` names it in
// messages.
absl::Status FsyncAt(int dir_fd, const std::string& name, const std::string& rel) {
  common::UniqueFd fd(name.empty()
                          ? fcntl(dir_fd, F_DUPFD_CLOEXEC, 0)
                          : openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return Errno("open", rel);
  if (fsync(fd.get()) != 0) return Errno("fsync", rel);
  return absl::OkStatus();
}

absl::Status SetMtimeAt(int dir_fd, const std::string& name, absl::Time t, const std::string& rel) {
  struct timespec times[2];
  times[0] = absl::ToTimespec(t);
  times[1] = times[0];
  if (utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return Errno("set mtime of", rel);
  }
  return absl::OkStatus();
}

absl::Time Mtime(const struct stat& st) { return absl::TimeFromTimespec(st.st_mtim); }

}  // namespace

std::string ArtifactPath(const SourceKey& key, absl::string_view digest) {
  absl::string_view hex = digest;
  absl::ConsumePrefix(&hex, "sha256:");
  return absl::StrCat(absl::AsciiStrToLower(key.kind), "/", key.namespace_name, "/", key.name, "/",
                      hex, kArtifactSuffix);
}

class ArtifactStorage::Reader : public ArtifactReader {
 public:
  Reader(ArtifactStorage* storage, int fd, StoredArtifact artifact)
      : storage_(storage), fd_(fd), artifact_(std::move(artifact)) {}
  ~Reader() override {
    close(fd_);
    storage_->Unpin(artifact_.path);
  }
  const StoredArtifact& artifact() const override { return artifact_; }
  absl::StatusOr<int64_t> ReadAt(int64_t offset, char* buf, int64_t len) const override {
    if (offset < 0 || len < 0) {
      return absl::OutOfRangeError(absl::StrCat("bad read range ", offset, "+", len));
    }
    int64_t done = 0;
    while (done < len) {
      ssize_t n = pread(fd_, buf + done, static_cast<size_t>(len - done), offset + done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return absl::InternalError(
            absl::StrCat("read artifact ", artifact_.path, ": ", strerror(errno)));
      }
      if (n == 0) break;
      done += n;
    }
    return done;
  }

 private:
  ArtifactStorage* const storage_;
  const int fd_;
  const StoredArtifact artifact_;
};

absl::StatusOr<std::unique_ptr<ArtifactStorage>> ArtifactStorage::Create(const std::string& root) {
  return Create(root, StorageOptions{});
}

absl::StatusOr<std::unique_ptr<ArtifactStorage>> ArtifactStorage::Create(const std::string& root,
                                                                         StorageOptions options) {
  if (root.empty()) return absl::InvalidArgumentError("storage path is empty");
  std::string clean = root;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  RETURN_IF_ERROR(common::Annotate(MkdirAll(clean, 0755), "create storage root"));
  // The root is the administrator's (it may be a symlink); below it nothing
  // is followed.
  common::UniqueFd root_fd(open(clean.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return Errno("open storage root", clean);
  CleanTempFiles(root_fd.get(), 0);
  return std::unique_ptr<ArtifactStorage>(new ArtifactStorage(clean, std::move(options)));
}

absl::StatusOr<std::string> ArtifactStorage::SourceDir(const SourceKey& key) const {
  if (!SafeComponent(key.kind) || !SafeComponent(key.namespace_name) || !SafeComponent(key.name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid source key '", key.kind, "/",
                                                   key.namespace_name, "/", key.name, "'"));
  }
  return absl::StrCat(absl::AsciiStrToLower(key.kind), "/", key.namespace_name, "/", key.name);
}

absl::StatusOr<common::UniqueFd> ArtifactStorage::OpenSourceDir(const SourceKey& key,
                                                                bool create) const {
  ASSIGN_OR_RETURN(std::string rel, SourceDir(key));
  // One component at a time with O_NOFOLLOW: a symlink planted at the kind,
  // namespace or name level is refused, never written through.
  auto dir = common::OpenDirBeneath(root_, common::SplitClean(rel), create, 0755);
  if (!dir.ok()) {
    return absl::Status(dir.status().code(),
                        absl::StrCat("storage directory: ", dir.status().message()));
  }
  return std::move(*dir);
}

absl::StatusOr<std::string> ArtifactStorage::NewTempPath(const SourceKey& key) {
  ASSIGN_OR_RETURN(std::string rel, SourceDir(key));
  auto dir = OpenSourceDir(key, /*create=*/true);
  RETURN_IF_ERROR(common::Annotate(dir.status(), "create artifact directory"));
  for (int attempt = 0; attempt < 16; ++attempt) {
    const std::string name = absl::StrCat(kTempPrefix, RandomHex(12), kTempSuffix);
    int fd = openat(dir->get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
    if (fd >= 0) {
      close(fd);
      return absl::StrCat(root_, "/", rel, "/", name);
    }
    if (errno != EEXIST) return Errno("create temp file in", rel);
  }
  return absl::InternalError("could not create a unique temp file in " + rel);
}

absl::StatusOr<StoredArtifact> ArtifactStorage::Commit(const SourceKey& key,
                                                       const std::string& temp_path,
                                                       absl::string_view digest) {
  if (!common::IsValidDigest(digest)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid digest '", digest, "'"));
  }
  ASSIGN_OR_RETURN(std::string rel_dir, SourceDir(key));
  const std::string dir_path = root_ + "/" + rel_dir;
  const size_t slash = temp_path.find_last_of('/');
  if (slash == std::string::npos || temp_path.substr(0, slash) != dir_path ||
      !IsTempName(absl::string_view(temp_path).substr(slash + 1))) {
    return absl::InvalidArgumentError(
        absl::StrCat("temp file ", temp_path, " is not a temp file of ", rel_dir));
  }
  const std::string temp_name = temp_path.substr(slash + 1);
  const std::string temp_rel = absl::StrCat(rel_dir, "/", temp_name);
  ASSIGN_OR_RETURN(common::UniqueFd dir, OpenSourceDir(key, /*create=*/false));
  // Durable content before the rename makes it visible.
  RETURN_IF_ERROR(FsyncAt(dir.get(), temp_name, temp_rel));

  StoredArtifact out;
  out.source = key;
  out.digest = std::string(digest);
  out.path = ArtifactPath(key, digest);
  const std::string final_name = out.path.substr(out.path.find_last_of('/') + 1);
  const absl::Time now = options_.now();

  std::lock_guard<std::mutex> lock(mu_);
  struct stat st;
  if (fstatat(dir.get(), final_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISREG(st.st_mode)) {
    // Same digest, same bytes: keep the file readers may hold, refresh it.
    unlinkat(dir.get(), temp_name.c_str(), 0);
    RETURN_IF_ERROR(SetMtimeAt(dir.get(), final_name, now, out.path));
  } else {
    RETURN_IF_ERROR(SetMtimeAt(dir.get(), temp_name, now, temp_rel));
    if (renameat(dir.get(), temp_name.c_str(), dir.get(), final_name.c_str()) != 0) {
      return Errno("rename", temp_rel);
    }
  }
  RETURN_IF_ERROR(FsyncAt(dir.get(), "", rel_dir));
  if (fstatat(dir.get(), final_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return Errno("stat", out.path);
  }
  out.size = st.st_size;
  out.last_update = Mtime(st);
  return out;
}

absl::StatusOr<std::unique_ptr<ArtifactReader>> ArtifactStorage::Open(const SourceKey& key,
                                                                      absl::string_view digest) {
  if (!common::IsValidDigest(digest)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid digest '", digest, "'"));
  }
  ASSIGN_OR_RETURN(std::string rel_dir, SourceDir(key));
  StoredArtifact a;
  a.source = key;
  a.digest = std::string(digest);
  a.path = ArtifactPath(key, digest);
  const std::string name = a.path.substr(a.path.find_last_of('/') + 1);
  auto dir = OpenSourceDir(key, /*create=*/false);
  if (!dir.ok()) {
    if (absl::IsNotFound(dir.status())) {
      return absl::NotFoundError(absl::StrCat("artifact ", a.path, " not found"));
    }
    return dir.status();
  }

  std::lock_guard<std::mutex> lock(mu_);
  int fd = openat(dir->get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("artifact ", a.path, " not found"));
    }
    return Errno("open artifact", a.path);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::NotFoundError(absl::StrCat("artifact ", a.path, " is not a regular file"));
  }
  a.size = st.st_size;
  a.last_update = Mtime(st);
  ++pins_[a.path];
  return std::unique_ptr<ArtifactReader>(new Reader(this, fd, std::move(a)));
}

void ArtifactStorage::Unpin(const std::string& rel_path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pins_.find(rel_path);
  if (it != pins_.end() && --it->second <= 0) pins_.erase(it);
}

int ArtifactStorage::PinCount(const SourceKey& key, absl::string_view digest) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pins_.find(ArtifactPath(key, digest));
  return it == pins_.end() ? 0 : it->second;
}

absl::StatusOr<std::vector<StoredArtifact>> ArtifactStorage::List(const SourceKey& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return ListLocked(key);
}

absl::StatusOr<std::vector<StoredArtifact>> ArtifactStorage::ListLocked(
    const SourceKey& key) const {
  ASSIGN_OR_RETURN(std::string rel_dir, SourceDir(key));
  std::vector<StoredArtifact> out;
  auto dir = OpenSourceDir(key, /*create=*/false);
  if (!dir.ok()) {
    if (absl::IsNotFound(dir.status())) return out;
    return dir.status();
  }
  int fd = fcntl(dir->get(), F_DUPFD_CLOEXEC, 0);
  DIR* d = fd < 0 ? nullptr : fdopendir(fd);
  if (d == nullptr) {
    if (fd >= 0) close(fd);
    return Errno("read directory", rel_dir);
  }
  absl::Cleanup close_dir = [d] { closedir(d); };
  while (struct dirent* e = readdir(d)) {
    absl::string_view name = e->d_name;
    if (!IsArtifactName(name)) continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    StoredArtifact a;
    a.source = key;
    a.digest = absl::StrCat("sha256:", name.substr(0, 64));
    a.size = st.st_size;
    a.path = absl::StrCat(rel_dir, "/", name);
    a.last_update = Mtime(st);
    out.push_back(std::move(a));
  }
  std::sort(out.begin(), out.end(), [](const StoredArtifact& x, const StoredArtifact& y) {
    if (x.last_update != y.last_update) return x.last_update > y.last_update;
    return x.digest < y.digest;
  });
  return out;
}

absl::StatusOr<std::vector<std::string>> ArtifactStorage::GarbageCollect(const SourceKey& key,
                                                                         absl::string_view current,
                                                                         int keep_records,
                                                                         absl::Duration ttl,
                                                                         absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(std::vector<StoredArtifact> all, ListLocked(key));
  if (all.empty()) return std::vector<std::string>{};
  ASSIGN_OR_RETURN(common::UniqueFd dir, OpenSourceDir(key, /*create=*/false));
  int kept = 0;
  for (const StoredArtifact& a : all) {
    if (a.digest == current) ++kept;
  }
  std::vector<std::string> removed;
  std::vector<std::string> errors;
  for (const StoredArtifact& a : all) {  // newest first
    if (a.digest == current) continue;
    if (pins_.count(a.path) > 0) {
      ++kept;
      continue;
    }
    const bool expired = now - a.last_update > ttl;
    if (!expired && kept < keep_records) {
      ++kept;
      continue;
    }
    const std::string name = a.path.substr(a.path.find_last_of('/') + 1);
    if (unlinkat(dir.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
      errors.push_back(absl::StrCat(a.path, ": ", strerror(errno)));
      continue;
    }
    removed.push_back(a.path);
  }
  if (!errors.empty()) {
    return absl::InternalError(absl::StrCat("garbage collect: ", absl::StrJoin(errors, ", ")));
  }
  return removed;
}

absl::Status ArtifactStorage::RemoveAll(const SourceKey& key) {
  ASSIGN_OR_RETURN(std::string rel_dir, SourceDir(key));
  std::lock_guard<std::mutex> lock(mu_);
  // Never follows a symlink at the kind, namespace or name level, nor inside.
  return common::RemoveBeneath(root_, common::SplitClean(rel_dir));
}

absl::StatusOr<SourceListing> ArtifactStorage::ListSources(absl::string_view kind) const {
  SourceListing out;
  if (!SafeComponent(kind)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid source kind '", kind, "'"));
  }
  const std::string kind_dir = absl::AsciiStrToLower(kind);
  auto dir = common::OpenDirBeneath(root_, {kind_dir}, /*create=*/false);
  if (!dir.ok()) {
    if (absl::IsNotFound(dir.status())) return out;
    return absl::Status(dir.status().code(),
                        absl::StrCat("storage directory: ", dir.status().message()));
  }
  std::vector<std::string> skipped;
  for (const std::string& ns : SubDirs(dir->get(), &skipped)) {
    if (ns[0] == '.') continue;
    common::UniqueFd ns_fd(
        openat(dir->get(), ns.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!ns_fd.valid()) continue;
    std::vector<std::string> ns_skipped;
    for (const std::string& name : SubDirs(ns_fd.get(), &ns_skipped)) {
      if (name[0] == '.') continue;
      out.sources.push_back(SourceKey{std::string(kind), ns, name});
    }
    for (const std::string& s : ns_skipped)
      out.skipped.push_back(absl::StrCat(kind_dir, "/", ns, "/", s));
  }
  for (const std::string& s : skipped) out.skipped.push_back(absl::StrCat(kind_dir, "/", s));
  return out;
}

}  // namespace gitops::source
