#include "source-controller/artifact/packer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status/status_macros.h"
#include "source-controller/artifact/gzip_writer.h"

namespace gitops::source {
namespace {

constexpr int64_t kDirMode = 0750;
constexpr int64_t kFileMode = 0600;
constexpr int64_t kExeFileMode = 0700;
constexpr size_t kTarBlock = 512;
constexpr int64_t kMaxUstarSize = 077777777777;  // 11 octal digits

absl::Status Errno(absl::string_view what, const std::string& path) {
  int err = errno;
  std::string msg = absl::StrCat(what, " ", path, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

// Writes `value` as zero-padded octal into field[0..width-2] plus a NUL.
void PutOctal(char* field, size_t width, int64_t value) {
  char tmp[32];
  snprintf(tmp, sizeof(tmp), "%0*llo", static_cast<int>(width - 1),
           static_cast<unsigned long long>(value));
  memcpy(field, tmp, width - 1);
  field[width - 1] = '\0';
}

// Splits a name into ustar prefix/name fields; false when it does not fit.
bool SplitUstarName(const std::string& name, std::string* prefix, std::string* rest) {
  if (name.size() <= 100) {
    prefix->clear();
    *rest = name;
    return true;
  }
  if (name.size() > 256) return false;
  // The prefix ends at a '/', at most 155 bytes; the rest at most 100 bytes.
  // A trailing '/' (directories) belongs to the rest.
  const size_t search_end = std::min<size_t>(155, name.size() - 2);
  for (size_t i = search_end + 1; i-- > 0;) {
    if (name[i] != '/') continue;
    if (name.size() - i - 1 > 100) return false;
    if (i == 0) return false;
    *prefix = name.substr(0, i);
    *rest = name.substr(i + 1);
    return true;
  }
  return false;
}

void FillHeader(char* h, const std::string& prefix, const std::string& name, int64_t mode,
                int64_t size, char typeflag) {
  memset(h, 0, kTarBlock);
  memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  PutOctal(h + 100, 8, mode);
  PutOctal(h + 108, 8, 0);                                  // uid
  PutOctal(h + 116, 8, 0);                                  // gid
  PutOctal(h + 124, 12, size <= kMaxUstarSize ? size : 0);  // size (pax beyond)
  PutOctal(h + 136, 12, 0);                                 // mtime
  h[156] = typeflag;
  memcpy(h + 257, "ustar", 6);  // magic "ustar\0"
  memcpy(h + 263, "00", 2);     // version
  PutOctal(h + 329, 8, 0);      // devmajor
  PutOctal(h + 337, 8, 0);      // devminor
  memcpy(h + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
  // The checksum is computed with its own field as spaces.
  memset(h + 148, ' ', 8);
  unsigned int sum = 0;
  for (size_t i = 0; i < kTarBlock; ++i) sum += static_cast<unsigned char>(h[i]);
  snprintf(h + 148, 8, "%06o", sum);  // six digits, NUL, then the space kept
  h[155] = ' ';
}

// One pax record: "<len> key=value\n", where len counts the whole record.
std::string PaxRecord(absl::string_view key, absl::string_view value) {
  const size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) len = std::to_string(len).size() + body;
  return absl::StrCat(len, " ", key, "=", value, "\n");
}

// A file is read into the deflate this many bytes at a time, the deadline
// checked in between.
constexpr int64_t kReadChunk = int64_t{4} << 20;

class TarPacker {
 public:
  TarPacker(const IgnoreMatcher& ignore, GzipWriter& gz, const PackOptions& options)
      : ignore_(ignore), gz_(gz), options_(options) {}

  absl::Status WalkDir(int dir_fd, const std::string& dir_path, const std::string& rel_prefix);
  absl::Status Finish() {
    char zeros[2 * kTarBlock] = {};
    return gz_.Write(zeros, sizeof(zeros));
  }
  int64_t files() const { return files_; }

 private:
  absl::Status WriteHeader(const std::string& name, int64_t mode, int64_t size, char typeflag);
  absl::Status Pad(int64_t size) {
    static const char zeros[kTarBlock] = {};
    size_t rem = static_cast<size_t>(size % static_cast<int64_t>(kTarBlock));
    return rem == 0 ? absl::OkStatus() : gz_.Write(zeros, kTarBlock - rem);
  }

  absl::Status CheckDeadline(const std::string& rel) const {
    if (absl::Now() < options_.deadline) return absl::OkStatus();
    return absl::DeadlineExceededError(absl::StrCat(
        "timed out after ", absl::FormatDuration(options_.timeout), " at '", rel, "'"));
  }

  const IgnoreMatcher& ignore_;
  GzipWriter& gz_;
  const PackOptions& options_;
  int64_t files_ = 0;
};

absl::Status TarPacker::WriteHeader(const std::string& name, int64_t mode, int64_t size,
                                    char typeflag) {
  char h[kTarBlock];
  std::string prefix, rest;
  const bool fits = SplitUstarName(name, &prefix, &rest);
  if (!fits || size > kMaxUstarSize) {
    // A pax extended header carries what ustar cannot. Its own name is
    // fixed so the output stays deterministic.
    std::string records;
    if (!fits) records += PaxRecord("path", name);
    if (size > kMaxUstarSize) records += PaxRecord("size", std::to_string(size));
    FillHeader(h, "", "PaxHeaders.0/entry", 0644, static_cast<int64_t>(records.size()), 'x');
    RETURN_IF_ERROR(gz_.Write(h, kTarBlock));
    RETURN_IF_ERROR(gz_.Write(records));
    RETURN_IF_ERROR(Pad(static_cast<int64_t>(records.size())));
    if (!fits) {
      prefix.clear();
      rest = name.substr(0, 100);
    }
  }
  FillHeader(h, prefix, rest, mode, size, typeflag);
  return gz_.Write(h, kTarBlock);
}

absl::Status TarPacker::WalkDir(int dir_fd, const std::string& dir_path,
                                const std::string& rel_prefix) {
  int dup_fd = dup(dir_fd);
  if (dup_fd < 0) return Errno("dup", dir_path);
  DIR* d = fdopendir(dup_fd);
  if (d == nullptr) {
    close(dup_fd);
    return Errno("read directory", dir_path);
  }
  struct Entry {
    std::string name;
    unsigned char type;
  };
  std::vector<Entry> entries;
  errno = 0;
  while (struct dirent* e = readdir(d)) {
    absl::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    entries.push_back({std::string(n), e->d_type});
  }
  const int read_errno = errno;
  closedir(d);
  if (read_errno != 0) {
    errno = read_errno;
    return Errno("read directory", dir_path);
  }
  // filepath.Walk order: names sorted bytewise.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });

  for (const Entry& e : entries) {
    if (e.name == ".git") continue;
    const std::string rel = rel_prefix + e.name;
    RETURN_IF_ERROR(CheckDeadline(rel));
    unsigned char type = e.type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (fstatat(dir_fd, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return Errno("stat", dir_path + "/" + e.name);
      }
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
    }
    if (type == DT_DIR) {
      const bool excluded = ignore_.Excluded(rel, true);
      // Flux still looks inside an excluded directory (a later negation may
      // re-include a file); without negations nothing inside can come back.
      if (excluded && !ignore_.has_negations()) continue;
      int sub = openat(dir_fd, e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) return Errno("open", dir_path + "/" + e.name);
      absl::Cleanup close_sub = [sub] { close(sub); };
      if (!excluded) RETURN_IF_ERROR(WriteHeader(rel + "/", kDirMode, 0, '5'));
      RETURN_IF_ERROR(WalkDir(sub, dir_path + "/" + e.name, rel + "/"));
    } else if (type == DT_REG) {
      if (ignore_.Excluded(rel, false)) continue;
      const std::string path = dir_path + "/" + e.name;
      int fd = openat(dir_fd, e.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return Errno("open", path);
      absl::Cleanup close_fd = [fd] { close(fd); };
      struct stat st;
      if (fstat(fd, &st) != 0) return Errno("stat", path);
      if (!S_ISREG(st.st_mode)) continue;
      const int64_t mode = (st.st_mode & 0111) != 0 ? kExeFileMode : kFileMode;
      RETURN_IF_ERROR(WriteHeader(rel, mode, st.st_size, '0'));
      for (int64_t left = st.st_size; left > 0; left -= kReadChunk) {
        RETURN_IF_ERROR(CheckDeadline(rel));
        RETURN_IF_ERROR(gz_.ReadFrom(fd, std::min(left, kReadChunk), path));
      }
      RETURN_IF_ERROR(Pad(st.st_size));
      ++files_;
    }
    // Symlinks, sockets, fifos and devices are left out, as in Flux.
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PackResult> PackDirectory(const std::string& root, const IgnoreMatcher& ignore,
                                         const std::string& out_path) {
  return PackDirectory(root, ignore, out_path, PackOptions{});
}

absl::StatusOr<PackResult> PackDirectory(const std::string& root, const IgnoreMatcher& ignore,
                                         const std::string& out_path, const PackOptions& options) {
  int root_fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return Errno("open source directory", root);
  absl::Cleanup close_root = [root_fd] { close(root_fd); };

  int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out_fd < 0) return Errno("create artifact", out_path);
  bool ok = false;
  absl::Cleanup close_out = [&] {
    close(out_fd);
    if (!ok) unlink(out_path.c_str());
  };

  int threads = options.threads;
  if (threads < 0) {
    threads = static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
  }
  GzipWriter gz(out_fd, threads, options.level);
  TarPacker tar(ignore, gz, options);
  RETURN_IF_ERROR(common::Annotate(tar.WalkDir(root_fd, root, ""), "pack " + root));
  RETURN_IF_ERROR(tar.Finish());
  ASSIGN_OR_RETURN(GzipWriter::Result written, gz.Finish());
  if (fchmod(out_fd, 0600) != 0) return Errno("chmod", out_path);
  ok = true;
  return PackResult{written.digest, written.size, tar.files()};
}

}  // namespace gitops::source
