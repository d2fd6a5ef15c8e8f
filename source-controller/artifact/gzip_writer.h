// A deterministic, pipelined gzip writer: the caller fills fixed-size input
// blocks on its own thread while worker threads deflate earlier blocks (each
// primed with the previous block's last 32 KiB, as pigz does) and the
// finished blocks are hashed and written in order.
#ifndef GITOPS_SOURCE_CONTROLLER_ARTIFACT_GZIP_WRITER_H_
#define GITOPS_SOURCE_CONTROLLER_ARTIFACT_GZIP_WRITER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/sha256.h"

namespace gitops::source {

// Writes one gzip member to a file descriptor. The output depends only on the
// bytes written and the compression level, never on the number of threads or
// their timing: block boundaries are fixed, the gzip header has no name and a
// zero mtime (OS byte 255, as Go's compress/gzip).
//
// Memory stays bounded: at most a few blocks per worker are in flight.
// Not thread-safe: one producer thread calls Write/ReadFrom/Finish.
class GzipWriter {
 public:
  struct Result {
    std::string digest;  // "sha256:<hex>" of the compressed bytes
    int64_t size = 0;    // compressed bytes written
  };

  // Uncompressed bytes per block.
  static constexpr size_t kBlockSize = 256 * 1024;

  // `fd` stays owned by the caller. `threads` deflate workers (0 = deflate
  // inline on the caller's thread); `level` is zlib's 1..9.
  GzipWriter(int fd, int threads, int level);
  ~GzipWriter();
  GzipWriter(const GzipWriter&) = delete;
  GzipWriter& operator=(const GzipWriter&) = delete;

  absl::Status Write(const char* data, size_t n);
  absl::Status Write(absl::string_view data) { return Write(data.data(), data.size()); }
  // Appends exactly `n` bytes read from `fd` (copied straight into the
  // block buffers). FailedPrecondition if the file ends early.
  absl::Status ReadFrom(int fd, int64_t n, absl::string_view name_for_errors);
  // Flushes the last block and the gzip trailer. Call once.
  absl::StatusOr<Result> Finish();

 private:
  struct Block;
  struct Worker;

  absl::Status AcquireBlock();
  absl::Status Submit(bool final);
  void Compress(Block& b, Worker& w);
  void WorkerLoop(int index);
  // Writes every finished block at the head of the queue, in order. Called
  // with `lock` held; releases it while writing.
  void FlushInOrder(std::unique_lock<std::mutex>& lock);
  void StartWorkers();
  void StopWorkers();

  const int fd_;
  const int threads_;
  const int level_;

  std::unique_ptr<Block> current_;
  std::string last_dict_;  // last 32 KiB of uncompressed input so far
  uint64_t next_seq_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;                  // state changes
  std::deque<Block*> jobs_;                     // waiting for a worker
  std::deque<std::unique_ptr<Block>> pending_;  // submitted, in order
  std::vector<std::unique_ptr<Block>> free_;    // reusable blocks
  size_t blocks_alive_ = 0;
  bool flushing_ = false;
  bool stop_ = false;
  absl::Status error_;
  std::vector<std::thread> workers_;
  std::unique_ptr<Worker> inline_worker_;

  // Written only by the flushing thread (under the flushing_ token).
  common::Sha256 sha_;
  uint32_t crc_ = 0;
  uint64_t in_bytes_ = 0;
  int64_t out_bytes_ = 0;
  bool finished_ = false;
};

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_ARTIFACT_GZIP_WRITER_H_
