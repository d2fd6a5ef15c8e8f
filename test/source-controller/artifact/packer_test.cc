#include "source-controller/artifact/packer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/archive/extract.h"
#include "common/crypto/sha256.h"
#include "gtest/gtest.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

using gitops::testing::MakeTempDir;
using gitops::testing::ReadFile;
using gitops::testing::RemoveTree;
using gitops::testing::RunCommand;
using gitops::testing::WriteFile;

struct TreeFile {
  std::string path;
  std::string content;
  bool exec = false;
};

// Compressible text bigger than a few gzip blocks, so the pipelined writer
// really runs several blocks through its workers.
std::string BigText(size_t bytes, int seed) {
  std::string out;
  uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(seed + 1);
  while (out.size() < bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    absl::StrAppend(&out, "  - name: item-", x % 1000, "\n    value: \"", x % 7919, "\"\n");
  }
  out.resize(bytes);
  return out;
}

std::vector<TreeFile> SampleTree() {
  std::string long_dir(120, 'd');
  std::string very_long = std::string(90, 'a') + "/" + std::string(90, 'b') + "/" +
                          std::string(90, 'c') + "/" + std::string(60, 'e') + ".yaml";
  return {
      {"kustomization.yaml", "resources:\n- deploy\n"},
      {"deploy/app.yaml", "kind: Deployment\n"},
      {"deploy/svc.yaml", "kind: Service\n"},
      {"deploy.txt", "sorts after the deploy/ directory in walk order\n"},
      {"scripts/run.sh", "#!/bin/sh\necho hi\n", true},
      {"data/big.yaml", BigText(1500 * 1024, 1)},
      {"data/empty.yaml", ""},
      {long_dir + "/x.yaml", "long dir name\n"},
      {very_long, "pax path\n"},
      {"Upper/Z.yaml", "uppercase sorts first\n"},
  };
}

void WriteTree(const std::string& root, std::vector<TreeFile> files, bool reverse, mode_t file_mode,
               mode_t exec_mode) {
  if (reverse) std::reverse(files.begin(), files.end());
  for (const TreeFile& f : files) {
    const std::string path = root + "/" + f.path;
    ASSERT_TRUE(WriteFile(path, f.content).ok()) << path;
    ASSERT_EQ(chmod(path.c_str(), f.exec ? exec_mode : file_mode), 0);
  }
}

std::string ReadAll(const std::string& path) {
  auto data = ReadFile(path);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *data : "";
}

class PackDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override { tmp_ = MakeTempDir("packer"); }
  void TearDown() override { RemoveTree(tmp_); }
  std::string tmp_;
};

TEST_F(PackDirectoryTest, SameTreeGivesSameBytesWhateverTheCheckout) {
  const std::string a = tmp_ + "/a", b = tmp_ + "/b";
  WriteTree(a, SampleTree(), /*reverse=*/false, 0644, 0755);
  const mode_t old_umask = umask(077);  // the second checkout under a strict umask
  WriteTree(b, SampleTree(), /*reverse=*/true, 0600, 0700);
  umask(old_umask);
  // Different mtimes, a .git directory, and noise only in one checkout.
  struct timespec old_times[2] = {{1000000, 0}, {1000000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (b + "/deploy/app.yaml").c_str(), old_times, 0), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, (b + "/deploy").c_str(), old_times, 0), 0);
  ASSERT_TRUE(WriteFile(b + "/.git/HEAD", "ref: refs/heads/main\n").ok());
  ASSERT_TRUE(WriteFile(b + "/logo.png", "not really a png").ok());
  ASSERT_EQ(symlink("deploy", (b + "/link").c_str()), 0);

  IgnoreMatcher defaults;
  for (absl::string_view list : {kExcludeVcs, kExcludeExt}) {
    std::string text(list);
    std::replace(text.begin(), text.end(), ',', '\n');
    defaults.AddPatterns(text);
  }

  auto ra = PackDirectory(a, defaults, tmp_ + "/a.tar.gz");
  ASSERT_TRUE(ra.ok()) << ra.status();
  auto rb = PackDirectory(b, defaults, tmp_ + "/b.tar.gz");
  ASSERT_TRUE(rb.ok()) << rb.status();
  PackOptions inline_opts;
  inline_opts.threads = 0;
  auto rc = PackDirectory(a, defaults, tmp_ + "/c.tar.gz", inline_opts);
  ASSERT_TRUE(rc.ok()) << rc.status();

  PackOptions many_opts;
  many_opts.threads = 4;
  auto rd = PackDirectory(b, defaults, tmp_ + "/d.tar.gz", many_opts);
  ASSERT_TRUE(rd.ok()) << rd.status();

  EXPECT_EQ(ra->digest, rb->digest);
  EXPECT_EQ(ra->digest, rc->digest) << "thread count must not change the bytes";
  EXPECT_EQ(ra->digest, rd->digest) << "thread count must not change the bytes";
  EXPECT_EQ(ReadAll(tmp_ + "/a.tar.gz"), ReadAll(tmp_ + "/b.tar.gz"));
  EXPECT_EQ(ra->files, static_cast<int64_t>(SampleTree().size()));

  auto file_digest = common::Sha256File(tmp_ + "/a.tar.gz");
  ASSERT_TRUE(file_digest.ok());
  EXPECT_EQ(ra->digest, *file_digest);
  struct stat st;
  ASSERT_EQ(stat((tmp_ + "/a.tar.gz").c_str(), &st), 0);
  EXPECT_EQ(ra->size, st.st_size);
}

TEST_F(PackDirectoryTest, TarExtractsTheTreeMinusIgnoredFiles) {
  const std::string src = tmp_ + "/src";
  WriteTree(src, SampleTree(), false, 0644, 0755);
  ASSERT_TRUE(WriteFile(src + "/.git/config", "[core]\n").ok());
  ASSERT_TRUE(WriteFile(src + "/tmp/scratch.yaml", "x").ok());
  ASSERT_TRUE(WriteFile(src + "/tmp/keep.yaml", "kept by negation\n").ok());
  ASSERT_TRUE(WriteFile(src + "/notes.md", "ignored").ok());
  ASSERT_EQ(mkdir((src + "/empty").c_str(), 0755), 0);
  ASSERT_EQ(symlink("deploy/app.yaml", (src + "/link.yaml").c_str()), 0);

  IgnoreMatcher rules;
  rules.AddPatterns(".git/\ntmp/\n!tmp/keep.yaml\n*.md\n");
  auto packed = PackDirectory(src, rules, tmp_ + "/out.tar.gz");
  ASSERT_TRUE(packed.ok()) << packed.status();

  const std::string dst = tmp_ + "/dst";
  ASSERT_EQ(mkdir(dst.c_str(), 0755), 0);
  auto out = RunCommand({"tar", "-xzf", tmp_ + "/out.tar.gz", "-C", dst});
  ASSERT_TRUE(out.ok()) << out.status();
  auto listing = RunCommand({"sh", "-c", "cd '" + dst + "' && find . | sort"});
  ASSERT_TRUE(listing.ok());

  for (const TreeFile& f : SampleTree()) {
    SCOPED_TRACE(f.path);
    EXPECT_EQ(ReadAll(dst + "/" + f.path), f.content);
    struct stat st;
    ASSERT_EQ(stat((dst + "/" + f.path).c_str(), &st), 0);
    EXPECT_EQ((st.st_mode & 0100) != 0, f.exec);
  }
  EXPECT_EQ(ReadAll(dst + "/tmp/keep.yaml"), "kept by negation\n");
  struct stat st;
  EXPECT_NE(lstat((dst + "/tmp/scratch.yaml").c_str(), &st), 0) << *listing;
  EXPECT_NE(lstat((dst + "/notes.md").c_str(), &st), 0) << *listing;
  EXPECT_NE(lstat((dst + "/.git").c_str(), &st), 0) << *listing;
  EXPECT_NE(lstat((dst + "/link.yaml").c_str(), &st), 0) << "symlinks are left out, as in Flux";
  EXPECT_EQ(lstat((dst + "/empty").c_str(), &st), 0) << "empty directories are kept";
  EXPECT_EQ(packed->files, static_cast<int64_t>(SampleTree().size()) + 1);
}

TEST_F(PackDirectoryTest, KustomizeSideExtractsWhatWasPacked) {
  const std::string src = tmp_ + "/src";
  WriteTree(src, SampleTree(), false, 0644, 0755);
  auto packed = PackDirectory(src, IgnoreMatcher(), tmp_ + "/out.tar.gz");
  ASSERT_TRUE(packed.ok()) << packed.status();
  const std::string dst = tmp_ + "/dst";
  absl::Status s = common::ExtractTarGz(tmp_ + "/out.tar.gz", dst, common::ExtractLimits{});
  ASSERT_TRUE(s.ok()) << s;
  for (const TreeFile& f : SampleTree()) {
    SCOPED_TRACE(f.path);
    EXPECT_EQ(ReadAll(dst + "/" + f.path), f.content);
  }
}

TEST_F(PackDirectoryTest, FluxIgnoreRulesShapeTheArchive) {
  const std::string src = tmp_ + "/src";
  for (const char* f :
       {"app/deploy.yaml", "app/logo.png", "app/local/dev.yaml", "app/local/keep.yaml",
        "docs/readme.md", ".github/workflows/ci.yaml", "secrets/key.yaml", ".sops.yaml"}) {
    ASSERT_TRUE(WriteFile(src + "/" + f, f).ok());
  }
  ASSERT_TRUE(WriteFile(src + "/app/.sourceignore", "local/\n!local/keep.yaml\n").ok());
  ASSERT_TRUE(WriteFile(src + "/.git/HEAD", "ref: refs/heads/main\n").ok());
  auto rules = LoadIgnoreRules(src, std::string("/secrets/\n/docs\n"));
  ASSERT_TRUE(rules.ok()) << rules.status();
  auto packed = PackDirectory(src, *rules, tmp_ + "/out.tar.gz");
  ASSERT_TRUE(packed.ok()) << packed.status();
  auto listing = RunCommand({"tar", "-tzf", tmp_ + "/out.tar.gz"});
  ASSERT_TRUE(listing.ok()) << listing.status();
  // Own patterns replace Flux's non-VCS defaults, so .png, .github and
  // .sops.yaml stay; a negation re-includes a file below an excluded dir.
  EXPECT_EQ(*listing,
            ".github/\n.github/workflows/\n.github/workflows/ci.yaml\n.sops.yaml\napp/\n"
            "app/.sourceignore\napp/deploy.yaml\napp/local/keep.yaml\napp/logo.png\n");
}

TEST_F(PackDirectoryTest, HeadersAreNormalizedAndSorted) {
  const std::string src = tmp_ + "/src";
  ASSERT_TRUE(WriteFile(src + "/b/x.yaml", "x").ok());
  ASSERT_TRUE(WriteFile(src + "/a.yaml", "a").ok());
  ASSERT_TRUE(WriteFile(src + "/b.yaml", "b").ok());
  ASSERT_TRUE(WriteFile(src + "/run.sh", "#!/bin/sh\n").ok());
  ASSERT_EQ(chmod((src + "/run.sh").c_str(), 0751), 0);
  ASSERT_EQ(chmod((src + "/a.yaml").c_str(), 0666), 0);
  auto packed = PackDirectory(src, IgnoreMatcher(), tmp_ + "/out.tar.gz");
  ASSERT_TRUE(packed.ok()) << packed.status();

  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_filename(a, (tmp_ + "/out.tar.gz").c_str(), 10240), ARCHIVE_OK);
  std::vector<std::string> names;
  std::map<std::string, int> modes;
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    names.push_back(name);
    modes[name] = archive_entry_perm(e);
    EXPECT_EQ(archive_entry_uid(e), 0) << name;
    EXPECT_EQ(archive_entry_gid(e), 0) << name;
    EXPECT_EQ(archive_entry_mtime(e), 0) << name;
    const char* uname = archive_entry_uname(e);
    EXPECT_TRUE(uname == nullptr || *uname == '\0') << name;
    const char* gname = archive_entry_gname(e);
    EXPECT_TRUE(gname == nullptr || *gname == '\0') << name;
  }
  archive_read_free(a);
  // filepath.Walk order: "b" sorts before "b.yaml", and b's contents follow it.
  EXPECT_EQ(names, (std::vector<std::string>{"a.yaml", "b/", "b/x.yaml", "b.yaml", "run.sh"}));
  EXPECT_EQ(modes["a.yaml"], 0600);
  EXPECT_EQ(modes["b/"], 0750);
  EXPECT_EQ(modes["run.sh"], 0700);

  // The gzip header carries no mtime and no name; OS byte 255 like Go.
  std::string bytes = ReadAll(tmp_ + "/out.tar.gz");
  ASSERT_GT(bytes.size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0x8b);
  EXPECT_EQ(bytes[3], 0) << "no FNAME/FEXTRA flags";
  EXPECT_EQ(bytes.substr(4, 4), std::string(4, '\0')) << "zero mtime";
  EXPECT_EQ(static_cast<unsigned char>(bytes[9]), 0xff);
}

TEST_F(PackDirectoryTest, EmptyTreeIsAValidArchive) {
  const std::string src = tmp_ + "/src";
  ASSERT_EQ(mkdir(src.c_str(), 0755), 0);
  auto packed = PackDirectory(src, IgnoreMatcher(), tmp_ + "/out.tar.gz");
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_EQ(packed->files, 0);
  auto listing = RunCommand({"tar", "-tzf", tmp_ + "/out.tar.gz"});
  ASSERT_TRUE(listing.ok()) << listing.status();
  EXPECT_EQ(*listing, "");
}

TEST_F(PackDirectoryTest, MissingRootIsNotFoundAndLeavesNoOutput) {
  auto packed = PackDirectory(tmp_ + "/absent", IgnoreMatcher(), tmp_ + "/out.tar.gz");
  EXPECT_EQ(packed.status().code(), absl::StatusCode::kNotFound);
  struct stat st;
  EXPECT_NE(stat((tmp_ + "/out.tar.gz").c_str(), &st), 0);
}

TEST_F(PackDirectoryTest, UnwritableOutputFails) {
  const std::string src = tmp_ + "/src";
  ASSERT_TRUE(WriteFile(src + "/a.yaml", "a").ok());
  auto packed = PackDirectory(src, IgnoreMatcher(), tmp_ + "/no/such/dir/out.tar.gz");
  EXPECT_FALSE(packed.ok());
}

// spec.timeout covers packing too (issue 17): past the deadline the pack
// stops with DeadlineExceeded and leaves no output file.
TEST_F(PackDirectoryTest, PackingStopsAtTheDeadline) {
  WriteTree(tmp_ + "/src", SampleTree(), /*reverse=*/false, 0644, 0755);
  PackOptions options;
  options.deadline = absl::Now() - absl::Seconds(1);
  options.timeout = absl::Seconds(10);
  auto packed = PackDirectory(tmp_ + "/src", IgnoreMatcher(), tmp_ + "/out.tar.gz", options);
  ASSERT_FALSE(packed.ok());
  EXPECT_EQ(packed.status().code(), absl::StatusCode::kDeadlineExceeded) << packed.status();
  EXPECT_TRUE(absl::StrContains(packed.status().message(), "timed out after 10s"))
      << packed.status();
  struct stat st;
  EXPECT_NE(::stat((tmp_ + "/out.tar.gz").c_str(), &st), 0) << "partial artifact left";
}

}  // namespace
}  // namespace gitops::source
