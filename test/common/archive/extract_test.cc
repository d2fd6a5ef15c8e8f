#include "common/archive/extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "test/support/process.h"

namespace gitops::common {
namespace {

using gitops::testing::MakeTempDir;
using gitops::testing::ReadFile;
using gitops::testing::RemoveTree;
using gitops::testing::WriteFile;

// Builds a .tar.gz with libarchive, entry by entry, including entries no
// honest packer would write.
class TarBuilder {
 public:
  explicit TarBuilder(const std::string& path) : a_(archive_write_new()) {
    archive_write_add_filter_gzip(a_);
    archive_write_set_format_pax_restricted(a_);
    ok_ = archive_write_open_filename(a_, path.c_str()) == ARCHIVE_OK;
  }
  ~TarBuilder() { Close(); }

  TarBuilder& File(const std::string& name, const std::string& content, int mode = 0644) {
    return Entry(name, AE_IFREG, mode, content.size(),
                 [&] { archive_write_data(a_, content.data(), content.size()); });
  }
  // A file of `size` zero bytes, written in chunks.
  TarBuilder& Zeros(const std::string& name, int64_t size) {
    return Entry(name, AE_IFREG, 0644, size, [&] {
      std::string chunk(1 << 20, '\0');
      for (int64_t left = size; left > 0; left -= static_cast<int64_t>(chunk.size())) {
        archive_write_data(a_, chunk.data(), std::min<int64_t>(left, chunk.size()));
      }
    });
  }
  TarBuilder& Dir(const std::string& name) { return Entry(name, AE_IFDIR, 0755, 0, nullptr); }
  TarBuilder& Symlink(const std::string& name, const std::string& target) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFLNK);
    archive_entry_set_perm(e, 0777);
    archive_entry_set_symlink(e, target.c_str());
    ok_ = ok_ && archive_write_header(a_, e) == ARCHIVE_OK;
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& Hardlink(const std::string& name, const std::string& target) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_hardlink(e, target.c_str());
    archive_entry_set_size(e, 0);
    ok_ = ok_ && archive_write_header(a_, e) == ARCHIVE_OK;
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& Special(const std::string& name, mode_t type) {
    return Entry(name, type, 0644, 0, nullptr);
  }
  bool Close() {
    if (a_ != nullptr) {
      ok_ = ok_ && archive_write_close(a_) == ARCHIVE_OK;
      archive_write_free(a_);
      a_ = nullptr;
    }
    return ok_;
  }

 private:
  TarBuilder& Entry(const std::string& name, mode_t type, int mode, int64_t size,
                    const std::function<void()>& data) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_size(e, size);
    if (type == AE_IFCHR) archive_entry_set_rdev(e, makedev(1, 3));
    ok_ = ok_ && archive_write_header(a_, e) == ARCHIVE_OK;
    if (data) data();
    archive_entry_free(e);
    return *this;
  }

  struct archive* a_;
  bool ok_ = false;
};

// gzip-compresses raw bytes (for hand-made tar streams).
bool GzipRaw(const std::string& path, const std::string& data) {
  struct archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_raw(a);
  bool ok = archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK;
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "raw");
  ok = ok && archive_write_header(a, e) == ARCHIVE_OK;
  ok =
      ok && archive_write_data(a, data.data(), data.size()) == static_cast<la_ssize_t>(data.size());
  archive_entry_free(e);
  ok = ok && archive_write_close(a) == ARCHIVE_OK;
  archive_write_free(a);
  return ok;
}

// A ustar header declaring a regular file of `size` bytes.
std::string UstarHeader(const std::string& name, int64_t size) {
  std::string h(512, '\0');
  memcpy(&h[0], name.data(), name.size());
  snprintf(&h[100], 8, "%07o", 0644);
  snprintf(&h[108], 8, "%07o", 0);
  snprintf(&h[116], 8, "%07o", 0);
  snprintf(&h[124], 12, "%011llo", static_cast<unsigned long long>(size) & 077777777777ull);
  snprintf(&h[136], 12, "%011o", 0);
  h[156] = '0';
  memcpy(&h[257], "ustar", 6);
  memcpy(&h[263], "00", 2);
  memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  snprintf(&h[148], 8, "%06o", sum);
  h[155] = ' ';
  return h;
}

bool DirIsEmpty(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  bool empty = true;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") empty = false;
  }
  closedir(d);
  return empty;
}

class ExtractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = MakeTempDir("extract");
    tarball_ = tmp_ + "/in.tar.gz";
    dest_ = tmp_ + "/out";
  }
  void TearDown() override { RemoveTree(tmp_); }
  std::string tmp_, tarball_, dest_;
};

TEST_F(ExtractTest, NormalTarballRoundTrips) {
  TarBuilder b(tarball_);
  b.Dir("deploy/")
      .File("deploy/app.yaml", "kind: Deployment\n")
      .File("./kustomization.yaml", "resources:\n- deploy\n")
      .File("run.sh", "#!/bin/sh\n", 0755)
      .File("implicit/parent/x.yaml", "x: 1\n")
      .Symlink("deploy/latest.yaml", "app.yaml")
      .Symlink("up.yaml", "deploy/../kustomization.yaml")
      .Hardlink("deploy/copy.yaml", "deploy/app.yaml");
  ASSERT_TRUE(b.Close());

  ASSERT_TRUE(ExtractTarGz(tarball_, dest_, ExtractLimits{}).ok());
  struct Want {
    const char* path;
    const char* content;
  } files[] = {
      {"deploy/app.yaml", "kind: Deployment\n"}, {"kustomization.yaml", "resources:\n- deploy\n"},
      {"implicit/parent/x.yaml", "x: 1\n"},      {"deploy/latest.yaml", "kind: Deployment\n"},
      {"up.yaml", "resources:\n- deploy\n"},     {"deploy/copy.yaml", "kind: Deployment\n"},
  };
  for (const Want& w : files) {
    SCOPED_TRACE(w.path);
    auto content = ReadFile(dest_ + "/" + w.path);
    ASSERT_TRUE(content.ok()) << content.status();
    EXPECT_EQ(*content, w.content);
  }
  struct stat st;
  ASSERT_EQ(stat((dest_ + "/run.sh").c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 0100, 0u);
  ASSERT_EQ(lstat((dest_ + "/deploy/latest.yaml").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST_F(ExtractTest, HostileEntriesAreRefusedAndNothingIsLeft) {
  struct Case {
    const char* name;
    std::function<void(TarBuilder&)> build;
    absl::StatusCode code;
    const char* message;  // must appear in the error
  } cases[] = {
      {"absolute path", [](TarBuilder& b) { b.File("/etc/evil", "x"); },
       absl::StatusCode::kInvalidArgument, "/etc/evil"},
      {"dot dot", [](TarBuilder& b) { b.File("ok.yaml", "x").File("a/../../evil", "x"); },
       absl::StatusCode::kInvalidArgument, "a/../../evil"},
      {"symlink escaping", [](TarBuilder& b) { b.Symlink("evil", "../../etc"); },
       absl::StatusCode::kInvalidArgument, "evil"},
      {"absolute symlink", [](TarBuilder& b) { b.Symlink("evil", "/etc/passwd"); },
       absl::StatusCode::kInvalidArgument, "/etc/passwd"},
      {"symlink escaping through an earlier symlink",
       [](TarBuilder& b) { b.Symlink("a", ".").Symlink("b", "a/.."); },
       absl::StatusCode::kInvalidArgument, "\"b\""},
      {"earlier symlink redirected by a later one",
       [](TarBuilder& b) { b.Symlink("l1", "b/..").Symlink("b", "."); },
       absl::StatusCode::kInvalidArgument, "\"l1\""},
      {"symlink then file through it",
       [](TarBuilder& b) { b.Dir("sub/").Symlink("link", "sub").File("link/x.yaml", "x"); },
       absl::StatusCode::kInvalidArgument, "link/x.yaml"},
      {"hardlink escaping", [](TarBuilder& b) { b.Hardlink("evil", "../../etc/passwd"); },
       absl::StatusCode::kInvalidArgument, "evil"},
      {"hardlink to an absolute path", [](TarBuilder& b) { b.Hardlink("evil", "/etc/passwd"); },
       absl::StatusCode::kInvalidArgument, "/etc/passwd"},
      {"hardlink to a symlink", [](TarBuilder& b) { b.Symlink("s", "x").Hardlink("evil", "s"); },
       absl::StatusCode::kInvalidArgument, "evil"},
      {"char device", [](TarBuilder& b) { b.Special("dev/null", AE_IFCHR); },
       absl::StatusCode::kInvalidArgument, "dev/null"},
      {"fifo", [](TarBuilder& b) { b.Special("pipe", AE_IFIFO); },
       absl::StatusCode::kInvalidArgument, "pipe"},
      {"duplicate file", [](TarBuilder& b) { b.File("a.yaml", "1").File("a.yaml", "2"); },
       absl::StatusCode::kInvalidArgument, "a.yaml"},
      {"file as a parent", [](TarBuilder& b) { b.File("a", "1").File("a/b", "2"); },
       absl::StatusCode::kInvalidArgument, "a/b"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RemoveTree(dest_);
    {
      TarBuilder b(tarball_);
      c.build(b);
      ASSERT_TRUE(b.Close());
    }
    absl::Status s = ExtractTarGz(tarball_, dest_, ExtractLimits{});
    EXPECT_EQ(s.code(), c.code) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), c.message)) << s;
    EXPECT_TRUE(DirIsEmpty(dest_)) << "leftovers after: " << s;
  }
  struct stat st;
  EXPECT_NE(lstat((tmp_ + "/evil").c_str(), &st), 0);
}

TEST_F(ExtractTest, LimitsAreEnforced) {
  struct Case {
    const char* name;
    std::function<void(TarBuilder&)> build;
    ExtractLimits limits;
    const char* message;
  } cases[] = {
      {"too many files",
       [](TarBuilder& b) {
         for (int i = 0; i < 20; ++i) b.File(absl::StrCat("f", i, ".yaml"), "x");
       },
       ExtractLimits{1 << 20, 10}, "more than 10 entries"},
      {"one file too big", [](TarBuilder& b) { b.Zeros("big.bin", 2 << 20); },
       ExtractLimits{1 << 20, 100}, "big.bin"},
      {"gzip bomb of many small members",
       [](TarBuilder& b) {
         for (int i = 0; i < 16; ++i) b.Zeros(absl::StrCat("bomb", i), 2 << 20);
       },
       ExtractLimits{5 << 20, 100}, "bomb2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RemoveTree(dest_);
    {
      TarBuilder b(tarball_);
      c.build(b);
      ASSERT_TRUE(b.Close());
    }
    absl::Status s = ExtractTarGz(tarball_, dest_, c.limits);
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), c.message)) << s;
    EXPECT_TRUE(DirIsEmpty(dest_));
  }
}

TEST_F(ExtractTest, HugeDeclaredSizeStopsBeforeReadingData) {
  // A header claiming 4 GiB followed by almost nothing: refused on the
  // header alone, long before the (missing) data would be read.
  ASSERT_TRUE(GzipRaw(tarball_, UstarHeader("huge.bin", int64_t{4} << 30) + std::string(512, 'x')));
  const absl::Time start = absl::Now();
  absl::Status s = ExtractTarGz(tarball_, dest_, ExtractLimits{});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "huge.bin")) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(DirIsEmpty(dest_));
}

TEST_F(ExtractTest, CorruptAndTruncatedArchivesAreDataLoss) {
  std::string text;
  for (int i = 0; i < 20000; ++i) absl::StrAppend(&text, "line ", i, " of some yaml: value\n");
  {
    TarBuilder b(tarball_);
    b.File("a.yaml", text).File("b.yaml", text + "b");
    ASSERT_TRUE(b.Close());
  }
  auto good = ReadFile(tarball_);
  ASSERT_TRUE(good.ok());
  ASSERT_GT(good->size(), 200u);

  struct Case {
    const char* name;
    std::string bytes;
  } cases[] = {
      {"truncated", good->substr(0, good->size() / 2)},
      {"corrupt deflate stream", good->substr(0, 12) + std::string(64, '\xff') + good->substr(76)},
      {"not gzip at all", "this is not an archive, just text\n"},
      {"empty file", ""},
      {"plain tar", UstarHeader("a.yaml", 1) + std::string(512, 'a') + std::string(1024, '\0')},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RemoveTree(dest_);
    ASSERT_TRUE(WriteFile(tarball_, c.bytes).ok());
    absl::Status s = ExtractTarGz(tarball_, dest_, ExtractLimits{});
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_TRUE(DirIsEmpty(dest_)) << s;
  }
}

TEST_F(ExtractTest, NonEmptyDestinationIsRefused) {
  {
    TarBuilder b(tarball_);
    b.File("a.yaml", "x");
    ASSERT_TRUE(b.Close());
  }
  ASSERT_TRUE(WriteFile(dest_ + "/existing", "keep me").ok());
  absl::Status s = ExtractTarGz(tarball_, dest_, ExtractLimits{});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  auto kept = ReadFile(dest_ + "/existing");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, "keep me");
}

}  // namespace
}  // namespace gitops::common
