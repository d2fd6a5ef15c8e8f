#include "source-controller/artifact/gzip_writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "gtest/gtest.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

using gitops::testing::MakeTempDir;
using gitops::testing::ReadFile;
using gitops::testing::RemoveTree;

// Mixed content: runs of text and pseudo-random bytes.
std::string Payload(size_t n) {
  std::string out;
  out.reserve(n);
  uint32_t x = 12345;
  while (out.size() < n) {
    if ((out.size() / 4096) % 3 == 0) {
      x = x * 1103515245u + 12345u;
      out.push_back(static_cast<char>(x >> 16));
    } else {
      out.push_back("kind: ConfigMap\n"[out.size() % 16]);
    }
  }
  return out;
}

// Inflates a gzip stream with zlib; empty + failure on error.
bool Gunzip(const std::string& in, std::string* out) {
  z_stream s{};
  if (inflateInit2(&s, 16 + 15) != Z_OK) return false;
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  char buf[65536];
  int ret;
  do {
    s.next_out = reinterpret_cast<Bytef*>(buf);
    s.avail_out = sizeof(buf);
    ret = inflate(&s, Z_NO_FLUSH);
    if (ret != Z_OK && ret != Z_STREAM_END) {
      inflateEnd(&s);
      return false;
    }
    out->append(buf, sizeof(buf) - s.avail_out);
  } while (ret != Z_STREAM_END);
  const bool consumed_all = s.avail_in == 0;
  inflateEnd(&s);
  return consumed_all;
}

TEST(GzipWriterTest, OutputIsValidAndIndependentOfThreadsAtBlockEdges) {
  const std::string dir = MakeTempDir("gzip-writer");
  const size_t kB = GzipWriter::kBlockSize;
  const size_t sizes[] = {0, 1, kB - 1, kB, kB + 1, 3 * kB, 3 * kB + 7};
  for (size_t size : sizes) {
    const std::string input = Payload(size);
    std::string first;
    for (int threads : {0, 1, 3}) {
      SCOPED_TRACE(absl::StrCat("size ", size, ", threads ", threads));
      const std::string path = absl::StrCat(dir, "/out-", size, "-", threads, ".gz");
      int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ASSERT_GE(fd, 0);
      absl::StatusOr<GzipWriter::Result> result;
      {
        GzipWriter gz(fd, threads, 6);
        // Uneven writes, so block boundaries fall inside a Write call.
        size_t off = 0;
        for (size_t step = 1000; off < input.size(); step = step * 7 % 100003 + 1) {
          const size_t n = std::min(step, input.size() - off);
          ASSERT_TRUE(gz.Write(input.data() + off, n).ok());
          off += n;
        }
        result = gz.Finish();
      }
      close(fd);
      ASSERT_TRUE(result.ok()) << result.status();
      auto bytes = ReadFile(path);
      ASSERT_TRUE(bytes.ok());
      EXPECT_EQ(result->size, static_cast<int64_t>(bytes->size()));
      EXPECT_EQ(result->digest, common::Sha256Digest(*bytes));
      std::string round_trip;
      ASSERT_TRUE(Gunzip(*bytes, &round_trip));
      EXPECT_EQ(round_trip, input);
      if (threads == 0) {
        first = *bytes;
      } else {
        EXPECT_EQ(*bytes, first) << "bytes differ from the single-threaded output";
      }
    }
  }
  RemoveTree(dir);
}

TEST(GzipWriterTest, ReadFromCopiesAFileAndRejectsAShortOne) {
  const std::string dir = MakeTempDir("gzip-writer");
  const std::string input = Payload(GzipWriter::kBlockSize * 2 + 100);
  ASSERT_TRUE(gitops::testing::WriteFile(dir + "/in", input).ok());
  int in = open((dir + "/in").c_str(), O_RDONLY);
  int out = open((dir + "/out.gz").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  {
    GzipWriter gz(out, 2, 6);
    ASSERT_TRUE(gz.ReadFrom(in, static_cast<int64_t>(input.size()), "in").ok());
    ASSERT_TRUE(gz.Finish().ok());
  }
  auto bytes = ReadFile(dir + "/out.gz");
  ASSERT_TRUE(bytes.ok());
  std::string round_trip;
  ASSERT_TRUE(Gunzip(*bytes, &round_trip));
  EXPECT_EQ(round_trip, input);

  // The file is at EOF now: asking for more is a FailedPrecondition.
  GzipWriter gz(out, 0, 6);
  EXPECT_EQ(gz.ReadFrom(in, 10, "in").code(), absl::StatusCode::kFailedPrecondition);
  close(in);
  close(out);
  RemoveTree(dir);
}

}  // namespace
}  // namespace gitops::source
