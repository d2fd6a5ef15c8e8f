// Artifact storage on the local filesystem (--storage-path), with Flux's
// layout and retention rules.
#ifndef GITOPS_SOURCE_CONTROLLER_ARTIFACT_STORAGE_H_
#define GITOPS_SOURCE_CONTROLLER_ARTIFACT_STORAGE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/fs/confined.h"

namespace gitops::source {

struct SourceKey {
  std::string kind;  // e.g. "GitRepository"
  std::string namespace_name;
  std::string name;
};

struct StoredArtifact {
  SourceKey source;
  std::string digest;  // "sha256:<hex>"
  int64_t size = 0;
  // Relative to the storage root: "<lowercase kind>/<ns>/<name>/<digest hex>.tar.gz".
  std::string path;
  absl::Time last_update;  // the file's mtime, set by Commit
};

// A pinned, open artifact: GC never deletes a file while a reader holds it.
// Thread-safe reads (pread).
class ArtifactReader {
 public:
  virtual ~ArtifactReader() = default;
  virtual const StoredArtifact& artifact() const = 0;
  // Reads up to `len` bytes at `offset`; returns the count (0 at or past the
  // end). OutOfRange for a negative offset, Internal on I/O failure.
  virtual absl::StatusOr<int64_t> ReadAt(int64_t offset, char* buf, int64_t len) const = 0;
};

// The source directories found in storage (see ArtifactStorage::ListSources).
struct SourceListing {
  std::vector<SourceKey> sources;
  // Entries, relative to the root, that are not directories where storage
  // expects one (e.g. a planted symlink): skipped, never followed.
  std::vector<std::string> skipped;
};

struct StorageOptions {
  // The clock Commit stamps last_update with (tests inject a fake one).
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// Local filesystem storage under one root directory. Artifacts live at
// "<lowercase kind>/<ns>/<name>/<64 hex>.tar.gz"; temp files in the same
// directory are named ".tmp-<random>.partial", which never looks like an
// artifact. last_update is the file's mtime, as in Flux. Below the root
// (which may itself be a symlink) nothing is followed: a symlink at the kind,
// namespace or name level is refused (FailedPrecondition) wherever a
// directory is expected, and never written, read or removed through.
// Thread-safe.
class ArtifactStorage {
 public:
  // Creates root (and parents); removes stale temp files left by a crash.
  // Errors: Internal on I/O failure.
  static absl::StatusOr<std::unique_ptr<ArtifactStorage>> Create(const std::string& root);
  static absl::StatusOr<std::unique_ptr<ArtifactStorage>> Create(const std::string& root,
                                                                 StorageOptions options);

  const std::string& root() const { return root_; }

  // Creates the source's directory and an empty new temp file in it; returns
  // its absolute path. The caller writes the artifact there, then calls
  // Commit, or removes it. InvalidArgument for a key that is not a safe
  // path component (empty, '/', "." or "..").
  absl::StatusOr<std::string> NewTempPath(const SourceKey& key);

  // fsyncs temp_path and renames it to <digest hex>.tar.gz atomically (then
  // fsyncs the directory). If that artifact already exists, the existing file
  // is kept and temp_path removed. Either way last_update becomes now, so the
  // artifact counts as the newest for GC. InvalidArgument for a malformed
  // digest or a temp path that NewTempPath did not make for this key.
  absl::StatusOr<StoredArtifact> Commit(const SourceKey& key, const std::string& temp_path,
                                        absl::string_view digest);

  // Opens and pins an artifact. NotFound if absent.
  absl::StatusOr<std::unique_ptr<ArtifactReader>> Open(const SourceKey& key,
                                                       absl::string_view digest);

  // The source's artifacts, newest first (ties: by digest). Empty when none.
  absl::StatusOr<std::vector<StoredArtifact>> List(const SourceKey& key) const;

  // Flux-like retention (--artifact-retention-records / -ttl): removes every
  // artifact older than `ttl` at `now`, then the oldest ones until at most
  // `keep_records` remain (the current one counts). Never removes the
  // artifact whose digest is `current`, nor a pinned one (pinned ones count
  // toward keep_records). Returns the removed paths, relative to root.
  absl::StatusOr<std::vector<std::string>> GarbageCollect(const SourceKey& key,
                                                          absl::string_view current,
                                                          int keep_records, absl::Duration ttl,
                                                          absl::Time now);

  // Removes the source's directory (e.g. on deletion) without following a
  // symlink at any level (a symlinked level: FailedPrecondition, nothing
  // removed). Open readers keep reading their file through their
  // descriptor. OK when already absent.
  absl::Status RemoveAll(const SourceKey& key);

  // The sources of `kind` with a directory in storage, sorted by namespace
  // and name (e.g. to find those whose object is gone). Only real
  // directories count; symlinks and other entries are listed in `skipped`.
  absl::StatusOr<SourceListing> ListSources(absl::string_view kind) const;

  // Number of open readers on the artifact (for tests and metrics).
  int PinCount(const SourceKey& key, absl::string_view digest) const;

 private:
  class Reader;
  ArtifactStorage(std::string root, StorageOptions options)
      : root_(std::move(root)), options_(std::move(options)) {}

  absl::StatusOr<std::string> SourceDir(const SourceKey& key) const;  // relative
  // The source's directory, opened without following a symlink at any
  // level; with `create`, missing levels are made.
  absl::StatusOr<common::UniqueFd> OpenSourceDir(const SourceKey& key, bool create) const;
  // Requires mu_.
  absl::StatusOr<std::vector<StoredArtifact>> ListLocked(const SourceKey& key) const;
  void Unpin(const std::string& rel_path);

  const std::string root_;
  const StorageOptions options_;
  // std::mutex rather than absl::Mutex so ThreadSanitizer sees it (Debian's
  // Abseil is not instrumented).
  mutable std::mutex mu_;
  std::map<std::string, int> pins_;  // guarded by mu_; relative path -> readers
};

// "<lowercase kind>/<ns>/<name>/<hex>.tar.gz" for an artifact of `key`.
std::string ArtifactPath(const SourceKey& key, absl::string_view digest);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_ARTIFACT_STORAGE_H_
