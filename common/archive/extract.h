// Safe extraction of an artifact tarball fetched from the source-controller.
#ifndef GITOPS_COMMON_ARCHIVE_EXTRACT_H_
#define GITOPS_COMMON_ARCHIVE_EXTRACT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace gitops::common {

struct ExtractLimits {
  int64_t max_total_bytes = int64_t{1} << 30;  // uncompressed file data
  int64_t max_files = 100000;                  // entries of any type
};

// Extracts a .tar.gz into dest_dir (created; must be empty if it exists).
// Refuses, with a message naming the entry:
//   - absolute paths and any ".." component;
//   - entries placed under a symlink, symlinks with an absolute target or one
//     that resolves outside dest_dir (also through earlier symlinks; every
//     symlink is checked again against the final tree);
//   - hardlinks to anything but a regular file extracted earlier;
//   - device, fifo and socket entries; duplicate non-directory entries;
//   - more than max_files entries, more than max_total_bytes of file data
//     (checked against each header and while streaming, so a gzip bomb stops
//     early);
//   - corrupt or truncated archives, and input that is not gzip.
// Codes: InvalidArgument for hostile content, DataLoss for corrupt/truncated
// input, ResourceExhausted for limits, FailedPrecondition when dest_dir is
// not empty, Internal for local I/O failures. On error nothing is left in
// dest_dir. Files get mode 0644 (0755 when executable), directories 0755;
// owners and mtimes are not restored. Thread-compatible: concurrent calls
// with different dest_dirs are fine.
absl::Status ExtractTarGz(const std::string& tarball, const std::string& dest_dir,
                          const ExtractLimits& limits);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_ARCHIVE_EXTRACT_H_
