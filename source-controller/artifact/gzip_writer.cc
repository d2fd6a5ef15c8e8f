#include "source-controller/artifact/gzip_writer.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gitops::source {
namespace {

constexpr size_t kDictSize = 32 * 1024;

// gzip member header: magic, deflate, no flags, mtime 0, no extra flags,
// OS 255 ("unknown", as Go's compress/gzip writes it).
constexpr unsigned char kGzipHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};

absl::Status WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("write artifact: ", strerror(errno)));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

}  // namespace

struct GzipWriter::Block {
  uint64_t seq = 0;
  std::unique_ptr<char[]> in{new char[kBlockSize]};
  size_t len = 0;
  std::string dict;
  bool final = false;
  std::vector<char> out;
  size_t out_len = 0;
  uint32_t crc = 0;
  bool done = false;
};

struct GzipWriter::Worker {
  z_stream strm{};
  bool initialized = false;
  ~Worker() {
    if (initialized) deflateEnd(&strm);
  }
};

GzipWriter::GzipWriter(int fd, int threads, int level)
    : fd_(fd), threads_(std::max(threads, 0)), level_(std::clamp(level, 1, 9)) {}

GzipWriter::~GzipWriter() { StopWorkers(); }

void GzipWriter::StartWorkers() {
  if (!workers_.empty() || threads_ == 0) return;
  for (int i = 0; i < threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

void GzipWriter::StopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

absl::Status GzipWriter::AcquireBlock() {
  std::unique_lock<std::mutex> lock(mu_);
  const size_t max_blocks = static_cast<size_t>(threads_) * 2 + 2;
  cv_.wait(lock, [&] { return !error_.ok() || !free_.empty() || blocks_alive_ < max_blocks; });
  if (!error_.ok()) return error_;
  if (!free_.empty()) {
    current_ = std::move(free_.back());
    free_.pop_back();
  } else {
    current_ = std::make_unique<Block>();
    ++blocks_alive_;
  }
  current_->len = 0;
  current_->out_len = 0;
  current_->done = false;
  current_->final = false;
  return absl::OkStatus();
}

absl::Status GzipWriter::Write(const char* data, size_t n) {
  while (n > 0) {
    if (current_ == nullptr) {
      absl::Status s = AcquireBlock();
      if (!s.ok()) return s;
    }
    size_t take = std::min(n, kBlockSize - current_->len);
    memcpy(current_->in.get() + current_->len, data, take);
    current_->len += take;
    data += take;
    n -= take;
    if (current_->len == kBlockSize) {
      absl::Status s = Submit(false);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status GzipWriter::ReadFrom(int fd, int64_t n, absl::string_view name_for_errors) {
  while (n > 0) {
    if (current_ == nullptr) {
      absl::Status s = AcquireBlock();
      if (!s.ok()) return s;
    }
    size_t want = std::min<size_t>(static_cast<size_t>(n), kBlockSize - current_->len);
    ssize_t r = read(fd, current_->in.get() + current_->len, want);
    if (r < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("read ", name_for_errors, ": ", strerror(errno)));
    }
    if (r == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("read ", name_for_errors, ": file shrank while packing"));
    }
    current_->len += static_cast<size_t>(r);
    n -= r;
    if (current_->len == kBlockSize) {
      absl::Status s = Submit(false);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status GzipWriter::Submit(bool final) {
  if (current_ == nullptr) {
    absl::Status s = AcquireBlock();
    if (!s.ok()) return s;
  }
  std::unique_ptr<Block> b = std::move(current_);
  b->seq = next_seq_++;
  b->final = final;
  b->dict = last_dict_;
  // The next block's dictionary: the last 32 KiB of all input so far.
  if (b->len >= kDictSize) {
    last_dict_.assign(b->in.get() + b->len - kDictSize, kDictSize);
  } else {
    last_dict_.append(b->in.get(), b->len);
    if (last_dict_.size() > kDictSize) last_dict_.erase(0, last_dict_.size() - kDictSize);
  }

  // Small inputs (a single block) and threads == 0 never start a thread.
  const bool run_inline = threads_ == 0 || (final && workers_.empty());
  if (run_inline) {
    if (inline_worker_ == nullptr) inline_worker_ = std::make_unique<Worker>();
    Compress(*b, *inline_worker_);
    std::unique_lock<std::mutex> lock(mu_);
    b->done = true;
    pending_.push_back(std::move(b));
    FlushInOrder(lock);
    return error_;
  }
  StartWorkers();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) return error_;
    jobs_.push_back(b.get());
    pending_.push_back(std::move(b));
  }
  cv_.notify_all();
  return absl::OkStatus();
}

void GzipWriter::Compress(Block& b, Worker& w) {
  z_stream& s = w.strm;
  if (!w.initialized) {
    deflateInit2(&s, level_, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    w.initialized = true;
  } else {
    deflateReset(&s);
  }
  if (!b.dict.empty()) {
    deflateSetDictionary(&s, reinterpret_cast<const Bytef*>(b.dict.data()),
                         static_cast<uInt>(b.dict.size()));
  }
  b.out.resize(deflateBound(&s, b.len) + 64);
  s.next_in = reinterpret_cast<Bytef*>(b.in.get());
  s.avail_in = static_cast<uInt>(b.len);
  size_t produced = 0;
  const int flush = b.final ? Z_FINISH : Z_SYNC_FLUSH;
  while (true) {
    s.next_out = reinterpret_cast<Bytef*>(b.out.data() + produced);
    s.avail_out = static_cast<uInt>(b.out.size() - produced);
    int ret = deflate(&s, flush);
    produced = b.out.size() - s.avail_out;
    bool complete = b.final ? ret == Z_STREAM_END : (s.avail_in == 0 && s.avail_out != 0);
    if (complete) break;
    b.out.resize(b.out.size() * 2);
  }
  b.out_len = produced;
  b.crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(b.in.get()), static_cast<uInt>(b.len)));
}

void GzipWriter::WorkerLoop(int index) {
  Worker w;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    Block* b = jobs_.front();
    jobs_.pop_front();
    lock.unlock();
    Compress(*b, w);
    lock.lock();
    b->done = true;
    FlushInOrder(lock);
  }
}

void GzipWriter::FlushInOrder(std::unique_lock<std::mutex>& lock) {
  if (flushing_) return;
  flushing_ = true;
  while (!pending_.empty() && pending_.front()->done && error_.ok()) {
    std::unique_ptr<Block> b = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    absl::Status s;
    if (b->seq == 0) {
      sha_.Update(kGzipHeader, sizeof(kGzipHeader));
      s = WriteAll(fd_, reinterpret_cast<const char*>(kGzipHeader), sizeof(kGzipHeader));
      out_bytes_ += sizeof(kGzipHeader);
    }
    if (s.ok()) {
      sha_.Update(b->out.data(), b->out_len);
      s = WriteAll(fd_, b->out.data(), b->out_len);
      out_bytes_ += static_cast<int64_t>(b->out_len);
      crc_ = static_cast<uint32_t>(crc32_combine(crc_, b->crc, static_cast<z_off_t>(b->len)));
      in_bytes_ += b->len;
    }
    lock.lock();
    if (!s.ok() && error_.ok()) error_ = s;
    free_.push_back(std::move(b));
    cv_.notify_all();
  }
  flushing_ = false;
  cv_.notify_all();
}

absl::StatusOr<GzipWriter::Result> GzipWriter::Finish() {
  if (finished_) return absl::FailedPreconditionError("gzip writer already finished");
  finished_ = true;
  absl::Status s = Submit(true);
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !error_.ok() || (pending_.empty() && !flushing_); });
    if (s.ok()) s = error_;
  }
  StopWorkers();
  if (!s.ok()) return s;

  unsigned char trailer[8];
  for (int i = 0; i < 4; ++i) trailer[i] = static_cast<unsigned char>(crc_ >> (8 * i));
  const uint32_t isize = static_cast<uint32_t>(in_bytes_);
  for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<unsigned char>(isize >> (8 * i));
  sha_.Update(trailer, sizeof(trailer));
  s = WriteAll(fd_, reinterpret_cast<const char*>(trailer), sizeof(trailer));
  if (!s.ok()) return s;
  out_bytes_ += sizeof(trailer);
  return Result{"sha256:" + sha_.HexDigest(), out_bytes_};
}

}  // namespace gitops::source
