// Signature verification of commits and tags with real GnuPG keys, a real git
// history signed by `git commit -S` / `git tag -s`, served by `git daemon`
// and fetched by the Libgit2Fetcher: verification runs on exactly what the
// fetcher stores in its cache directory.
#include "source-controller/verify/verify.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

using testing::RunCommand;

constexpr char kNoMatch[] =
    "unable to verify payload with any of the given key rings: no matching key";
constexpr char kSshNoMatch[] =
    "unable to verify payload with any of the given authorized keys: no matching key";

// One signer: a GnuPG home with its secret key, the armored public key and
// the primary key's ID / fingerprint.
struct Signer {
  std::string home;
  std::string fingerprint;
  std::string key_id;
  std::string armored;
};

absl::StatusOr<std::string> Gpg(const std::string& home, std::vector<std::string> args) {
  std::vector<std::string> argv = {"gpg", "--homedir", home, "--batch", "--passphrase", ""};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, absl::Seconds(60));
}

// gpg --quick-gen-key without passphrase; with `signing_subkey` the key gets
// an ed25519 signing subkey, which gpg then signs with.
absl::StatusOr<Signer> MakeSigner(const std::string& home, const std::string& uid,
                                  const std::string& algo, bool signing_subkey) {
  std::filesystem::create_directories(home);
  std::filesystem::permissions(home, std::filesystem::perms::owner_all);
  if (auto s = Gpg(home, {"--quick-gen-key", uid, algo, "sign", "never"}); !s.ok()) {
    return s.status();
  }
  auto colons = Gpg(home, {"--with-colons", "--list-keys", uid});
  if (!colons.ok()) return colons.status();
  Signer signer;
  signer.home = home;
  for (absl::string_view line : absl::StrSplit(*colons, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ':');
    if (f.size() > 9 && f[0] == "pub") signer.key_id = f[4];
    if (f.size() > 9 && f[0] == "fpr" && signer.fingerprint.empty()) signer.fingerprint = f[9];
  }
  if (signer.key_id.empty() || signer.fingerprint.empty()) {
    return absl::InternalError(absl::StrCat("no key listed: ", *colons));
  }
  if (signing_subkey) {
    auto s = Gpg(home, {"--quick-add-key", signer.fingerprint, "ed25519", "sign", "never"});
    if (!s.ok()) return s.status();
  }
  auto armored = RunCommand({"gpg", "--homedir", home, "--armor", "--export", signer.fingerprint});
  if (!armored.ok()) return armored.status();
  signer.armored = *armored;
  return signer;
}

// git with a fixed identity and the signer's GnuPG home.
absl::StatusOr<std::string> SignedGit(const std::string& gnupg_home, const std::string& dir,
                                      const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"env",
                                   absl::StrCat("GNUPGHOME=", gnupg_home),
                                   "git",
                                   "-C",
                                   dir,
                                   "-c",
                                   "user.name=Gitops Test",
                                   "-c",
                                   "user.email=test@example.com",
                                   "-c",
                                   "gpg.program=gpg"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto out = RunCommand(argv, absl::Seconds(60));
  if (!out.ok()) return out.status();
  return std::string(absl::StripTrailingAsciiWhitespace(*out));
}

// Everything the tests share: keys, the signed history, the daemon and the
// fetched cache directories. Built once per test program (key generation and
// signing cost a second or two).
struct World {
  std::string root;
  Signer alice;  // ed25519 primary + ed25519 signing subkey
  Signer bob;    // rsa2048, signs with the primary key
  // SSH keys (authorized_keys lines) and their `ssh-keygen -l` SHA256
  // fingerprints: the signer's and one that signs nothing.
  std::string ssh_public_key, ssh_fingerprint;
  std::string ssh_other_public_key, ssh_other_fingerprint;
  // Commits: alice-signed, bob-signed, unsigned, altered copy of alice's,
  // SSH-signed, altered copy of the SSH-signed one.
  std::string c_alice, c_bob, c_unsigned, c_tampered, c_ssh, c_ssh_tampered;
  // Tag object ids (tag_ssh: SSH-signed annotated tag v4.0.0-ssh).
  std::string tag_v1, tag_bob, tag_plain, tag_ssh;
  std::unique_ptr<testing::GitDaemon> daemon;
  // Fetched caches: by branch name (alice, bob, main, tampered, ssh,
  // ssh-tampered) and "tag-v1" (ref.tag v1.0.0), "tag-light", "tag-plain",
  // "tag-bob", "tag-ssh".
  std::map<std::string, std::string> caches;
  std::map<std::string, GitRevision> revisions;
};

World* world = nullptr;

absl::Status BuildWorld(World& w) {
  w.root = testing::MakeTempDir("verify");
  auto alice = MakeSigner(w.root + "/gnupg-alice", "Alice <alice@example.com>", "ed25519", true);
  if (!alice.ok()) return alice.status();
  w.alice = *alice;
  auto bob = MakeSigner(w.root + "/gnupg-bob", "Bob <bob@example.com>", "rsa2048", false);
  if (!bob.ok()) return bob.status();
  w.bob = *bob;
  std::string ssh_key = w.root + "/ssh/id_ed25519";
  std::filesystem::create_directories(w.root + "/ssh");
  for (auto [key, pub, fingerprint] :
       {std::tuple{ssh_key, &w.ssh_public_key, &w.ssh_fingerprint},
        std::tuple{w.root + "/ssh/other", &w.ssh_other_public_key, &w.ssh_other_fingerprint}}) {
    if (auto s = RunCommand({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key}); !s.ok()) {
      return s.status();
    }
    auto text = testing::ReadFile(key + ".pub");
    if (!text.ok()) return text.status();
    *pub = *text;
    // "256 SHA256:... comment (ED25519)"
    auto listed = RunCommand({"ssh-keygen", "-lf", key + ".pub"});
    if (!listed.ok()) return listed.status();
    std::vector<std::string> fields = absl::StrSplit(*listed, ' ');
    if (fields.size() < 2 || !absl::StartsWith(fields[1], "SHA256:")) {
      return absl::InternalError(absl::StrCat("ssh-keygen -l: ", *listed));
    }
    *fingerprint = fields[1];
  }

  const std::string work = w.root + "/work";
  // git in the work tree; with a signer, its GnuPG home and signing key.
  auto git = [&](const Signer* signer, std::vector<std::string> args) {
    if (signer != nullptr) {
      args.insert(args.begin(), {"-c", "user.signingkey=" + signer->fingerprint});
    }
    return SignedGit(signer != nullptr ? signer->home : w.root, work, args);
  };
  // Adds a file and commits it, signed (-S) when `signer` is set. Returns
  // the commit id.
  auto commit = [&](const Signer* signer, const std::string& file) -> absl::StatusOr<std::string> {
    if (auto s = testing::WriteFile(work + "/" + file, file + "\n"); !s.ok()) return s;
    if (auto s = git(nullptr, {"add", file}); !s.ok()) return s.status();
    std::vector<std::string> args = {"commit", "--quiet", "-m", file};
    if (signer != nullptr) args.push_back("-S");
    if (auto s = git(signer, args); !s.ok()) return s.status();
    return git(nullptr, {"rev-parse", "HEAD"});
  };
  auto assign = [](absl::StatusOr<std::string> v, std::string* out) {
    if (v.ok()) *out = *v;
    return v.status();
  };

  if (auto s = RunCommand({"git", "init", "--quiet", "-b", "alice", work}); !s.ok()) {
    return s.status();
  }
  // alice: a commit signed by Alice's subkey, annotated tag v1.0.0 signed by
  // Alice.
  if (auto s = assign(commit(&w.alice, "alice.txt"), &w.c_alice); !s.ok()) return s;
  if (auto s = git(&w.alice, {"tag", "-s", "v1.0.0", "-m", "release v1.0.0"}); !s.ok()) {
    return s.status();
  }
  // bob: a commit and a tag signed by Bob.
  if (auto s = git(nullptr, {"checkout", "--quiet", "-b", "bob"}); !s.ok()) return s.status();
  if (auto s = assign(commit(&w.bob, "bob.txt"), &w.c_bob); !s.ok()) return s;
  if (auto s = git(&w.bob, {"tag", "-s", "v2.0.0-bob", "-m", "bob's release"}); !s.ok()) {
    return s.status();
  }
  // main: an unsigned commit with a lightweight tag and an unsigned
  // annotated tag.
  if (auto s = git(nullptr, {"checkout", "--quiet", "-b", "main"}); !s.ok()) return s.status();
  if (auto s = assign(commit(nullptr, "plain.txt"), &w.c_unsigned); !s.ok()) return s;
  if (auto s = git(nullptr, {"tag", "v3.0.0-light"}); !s.ok()) return s.status();
  if (auto s = git(nullptr, {"tag", "-a", "v3.0.0-plain", "-m", "unsigned release"}); !s.ok()) {
    return s.status();
  }
  // ssh: a commit signed with an SSH key (gpg.format=ssh).
  if (auto s = git(nullptr, {"checkout", "--quiet", "-b", "ssh"}); !s.ok()) return s.status();
  if (auto s = testing::WriteFile(work + "/ssh.txt", "ssh\n"); !s.ok()) return s;
  if (auto s = git(nullptr, {"add", "ssh.txt"}); !s.ok()) return s.status();
  if (auto s = git(nullptr, {"-c", "gpg.format=ssh", "-c", "user.signingkey=" + ssh_key + ".pub",
                             "commit", "--quiet", "-S", "-m", "ssh"});
      !s.ok()) {
    return s.status();
  }
  if (auto s = assign(git(nullptr, {"rev-parse", "HEAD"}), &w.c_ssh); !s.ok()) return s;
  // v4.0.0-ssh: an annotated tag signed with the same SSH key.
  if (auto s = git(nullptr, {"-c", "gpg.format=ssh", "-c", "user.signingkey=" + ssh_key + ".pub",
                             "tag", "-s", "v4.0.0-ssh", "-m", "ssh release"});
      !s.ok()) {
    return s.status();
  }
  // An altered copy of a signed commit, signature kept, on branch `branch`.
  auto alter = [&](const std::string& commit_sha, const std::string& message,
                   const std::string& branch, std::string* out) -> absl::Status {
    auto raw = git(nullptr, {"cat-file", "commit", commit_sha});
    if (!raw.ok()) return raw.status();
    std::string original = *raw + "\n";
    std::string altered = absl::StrReplaceAll(
        original, {{absl::StrCat("\n", message, "\n"), absl::StrCat("\n", message, "!\n")}});
    if (altered == original) return absl::InternalError("commit message not found");
    const std::string file = absl::StrCat(w.root, "/altered-", branch);
    if (auto s = testing::WriteFile(file, altered); !s.ok()) return s;
    if (auto s = assign(git(nullptr, {"hash-object", "-t", "commit", "-w", file}), out); !s.ok()) {
      return s;
    }
    return git(nullptr, {"branch", branch, *out}).status();
  };
  if (auto s = alter(w.c_ssh, "ssh", "ssh-tampered", &w.c_ssh_tampered); !s.ok()) return s;
  // tampered: Alice's commit with its message changed and her signature kept.
  if (auto s = alter(w.c_alice, "alice.txt", "tampered", &w.c_tampered); !s.ok()) return s;
  for (auto [tag, out] :
       {std::pair{"v1.0.0", &w.tag_v1}, std::pair{"v2.0.0-bob", &w.tag_bob},
        std::pair{"v3.0.0-plain", &w.tag_plain}, std::pair{"v4.0.0-ssh", &w.tag_ssh}}) {
    if (auto s = assign(git(nullptr, {"rev-parse", absl::StrCat("refs/tags/", tag)}), out);
        !s.ok()) {
      return s;
    }
  }

  // Serve it with git daemon and fetch every ref the tests use.
  const std::string serve = w.root + "/srv";
  if (auto s = testing::InitBareRepo(serve + "/repo.git"); !s.ok()) return s;
  if (auto s = git(nullptr, {"push", "--quiet", serve + "/repo.git", "refs/heads/*:refs/heads/*",
                             "refs/tags/*:refs/tags/*"});
      !s.ok()) {
    return s.status();
  }
  auto daemon = testing::GitDaemon::Start(serve);
  if (!daemon.ok()) return daemon.status();
  w.daemon = *std::move(daemon);
  std::unique_ptr<GitFetcher> fetcher = NewLibgit2Fetcher();
  struct Fetch {
    std::string name;
    GitReference ref;
  };
  std::vector<Fetch> fetches;
  for (const char* branch : {"alice", "bob", "main", "tampered", "ssh", "ssh-tampered"}) {
    fetches.push_back({branch, {branch, "", "", "", ""}});
  }
  fetches.push_back({"tag-v1", {"", "v1.0.0", "", "", ""}});
  fetches.push_back({"tag-bob", {"", "v2.0.0-bob", "", "", ""}});
  fetches.push_back({"tag-light", {"", "v3.0.0-light", "", "", ""}});
  fetches.push_back({"tag-plain", {"", "v3.0.0-plain", "", "", ""}});
  fetches.push_back({"tag-ssh", {"", "v4.0.0-ssh", "", "", ""}});
  for (const Fetch& f : fetches) {
    GitFetchOptions options;
    options.url = w.daemon->Url("repo.git");
    options.ref = f.ref;
    options.timeout = absl::Seconds(30);
    std::string cache = absl::StrCat(w.root, "/cache-", f.name);
    auto rev = fetcher->FetchAndCheckout(options, cache, absl::StrCat(w.root, "/co-", f.name));
    if (!rev.ok()) return rev.status();
    w.caches[f.name] = cache;
    w.revisions[f.name] = *rev;
  }
  return absl::OkStatus();
}

class VerifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world = new World();
    absl::Status s = BuildWorld(*world);
    ASSERT_TRUE(s.ok()) << s;
  }
  static void TearDownTestSuite() {
    // Key generation and signing started a gpg-agent per signer home.
    for (const std::string& home : {world->alice.home, world->bob.home}) {
      if (!home.empty()) (void)RunCommand({"gpgconf", "--homedir", home, "--kill", "gpg-agent"});
    }
    world->daemon.reset();
    testing::RemoveTree(world->root);
    delete world;
    world = nullptr;
  }
  void SetUp() override { ASSERT_EQ(world->caches.size(), 11u) << "test world not built"; }

  static const std::string& Cache(const std::string& name) { return world->caches.at(name); }
  static VerificationKeys Keys(
      std::initializer_list<std::pair<const std::string, std::string>> keys) {
    return VerificationKeys(keys);
  }
  static VerificationKeys Alice() { return Keys({{"alice.asc", world->alice.armored}}); }
  static VerificationKeys Ssh() { return Keys({{"id.sshpub", world->ssh_public_key}}); }
};

TEST_F(VerifyTest, CommitSignedBySubkeyReportsPrimaryKeyId) {
  ASSERT_EQ(world->revisions["alice"].commit, world->c_alice);
  auto v = VerifyCommit(Cache("alice"), world->c_alice, Alice());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->key_id, world->alice.key_id);
  EXPECT_EQ(v->object, world->c_alice);
  // The subkey, not the primary key, made the signature: the signature's
  // issuer is not the reported key ID.
  auto packets = RunCommand(
      {"sh", "-c",
       absl::StrCat(
           "git -C ", Cache("alice"), " cat-file commit ", world->c_alice,
           " | sed -n '/BEGIN PGP/,/END PGP/p' | sed 's/^gpgsig //; s/^ //' | gpg --homedir ",
           world->alice.home, " --list-packets")});
  ASSERT_TRUE(packets.ok()) << packets.status();
  EXPECT_TRUE(absl::StrContains(*packets, "keyid ")) << *packets;
  EXPECT_FALSE(absl::StrContains(*packets, world->alice.key_id)) << *packets;
}

TEST_F(VerifyTest, CommitSignedWithRsaKeyAmongSeveralKeys) {
  auto v = VerifyCommit(Cache("bob"), world->c_bob,
                        Keys({{"alice.asc", world->alice.armored}, {"bob", world->bob.armored}}));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->key_id, world->bob.key_id);
  // One Secret value may hold several keys.
  auto both = VerifyCommit(Cache("bob"), world->c_bob,
                           Keys({{"team.asc", world->alice.armored + world->bob.armored}}));
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->key_id, world->bob.key_id);
}

TEST_F(VerifyTest, CommitSignedByKeyOutsideTheSecretIsPermissionDenied) {
  auto v = VerifyCommit(Cache("bob"), world->c_bob, Alice());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(v.status().message(),
            absl::StrCat("signature verification of commit '", world->c_bob,
                         "' failed: unable to verify Git commit: ", kNoMatch));
}

TEST_F(VerifyTest, AlteredCommitDoesNotVerify) {
  // Same signature header as Alice's good commit, different message.
  auto v = VerifyCommit(Cache("tampered"), world->c_tampered, Alice());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kPermissionDenied) << v.status();
  EXPECT_TRUE(absl::StrContains(v.status().message(), kNoMatch)) << v.status();
}

TEST_F(VerifyTest, UnsignedCommitIsFailedPrecondition) {
  auto v = VerifyCommit(Cache("main"), world->c_unsigned, Alice());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(v.status().message(),
            absl::StrCat("signature verification of commit '", world->c_unsigned,
                         "' failed: unsupported signature type: empty"));
}

TEST_F(VerifyTest, GarbageKeyIsInvalidArgumentNamingTheDataKey) {
  const std::string armored_garbage =
      "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5\n=AAAA\n"
      "-----END PGP PUBLIC KEY BLOCK-----\n";
  for (const std::string& garbage : {std::string("not a key"), armored_garbage}) {
    SCOPED_TRACE(garbage);
    auto v = VerifyCommit(Cache("alice"), world->c_alice, Keys({{"broken.asc", garbage}}));
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(v.status().message(),
                                 absl::StrCat("signature verification of commit '", world->c_alice,
                                              "' failed: unable to verify Git commit: unable to "
                                              "read armored key ring 'broken.asc': ")))
        << v.status();
  }
}

TEST_F(VerifyTest, UnreadableKeyNextToReadableOnesIsSkippedAsInFlux) {
  auto good =
      VerifyCommit(Cache("alice"), world->c_alice,
                   Keys({{"a-broken.asc", "garbage"}, {"alice.asc", world->alice.armored}}));
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->key_id, world->alice.key_id);
  // No key matches: "no matching key" wins over the unreadable entry.
  auto none = VerifyCommit(Cache("alice"), world->c_alice,
                           Keys({{"a-broken.asc", "garbage"}, {"bob.asc", world->bob.armored}}));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kPermissionDenied) << none.status();
}

TEST_F(VerifyTest, SecretWithoutKeysOfTheSignatureTypeIsInvalidArgument) {
  // Flux: ".sshpub" values are SSH keys, never OpenPGP key rings.
  auto pgp =
      VerifyCommit(Cache("alice"), world->c_alice, Keys({{"id.sshpub", world->ssh_public_key}}));
  ASSERT_FALSE(pgp.ok());
  EXPECT_EQ(pgp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pgp.status().message(),
            absl::StrCat("signature verification of commit '", world->c_alice,
                         "' failed: PGP signature detected but no PGP public keys found in secret "
                         "(keys with .asc suffix)"));
  auto ssh = VerifyCommit(Cache("ssh"), world->c_ssh, Alice());
  ASSERT_FALSE(ssh.ok());
  EXPECT_EQ(ssh.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ssh.status().message(),
            absl::StrCat("signature verification of commit '", world->c_ssh,
                         "' failed: SSH signature detected but no SSH public keys found in secret "
                         "(keys with .sshpub suffix)"));
}

TEST_F(VerifyTest, SshSignedCommitReportsTheKeyFingerprint) {
  ASSERT_EQ(world->revisions["ssh"].commit, world->c_ssh);
  auto v = VerifyCommit(Cache("ssh"), world->c_ssh, Ssh());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->key_id, world->ssh_fingerprint);
  EXPECT_EQ(v->object, world->c_ssh);
  // An authorized_keys value: comments, blank lines, options, other keys
  // first; OpenPGP keys next to it do not matter.
  const std::string keys = absl::StrCat("# deploy keys\n\n", world->ssh_other_public_key,
                                        "no-pty,command=\"echo a b\" ", world->ssh_public_key);
  auto several = VerifyCommit(Cache("ssh"), world->c_ssh,
                              Keys({{"alice.asc", world->alice.armored}, {"keys.sshpub", keys}}));
  ASSERT_TRUE(several.ok()) << several.status();
  EXPECT_EQ(several->key_id, world->ssh_fingerprint);
  // git agrees, with the same key as an allowed signer.
  const std::string allowed = world->root + "/allowed_signers";
  ASSERT_TRUE(testing::WriteFile(allowed, "test@example.com " + world->ssh_public_key).ok());
  auto git_verify =
      RunCommand({"git", "-C", Cache("ssh"), "-c", "gpg.ssh.allowedSignersFile=" + allowed,
                  "verify-commit", world->c_ssh});
  EXPECT_TRUE(git_verify.ok()) << git_verify.status();
}

TEST_F(VerifyTest, SshCommitSignedByAnotherKeyIsPermissionDenied) {
  auto v = VerifyCommit(Cache("ssh"), world->c_ssh,
                        Keys({{"other.sshpub", world->ssh_other_public_key}}));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(v.status().message(),
            absl::StrCat("signature verification of commit '", world->c_ssh,
                         "' failed: unable to verify Git commit SSH signature: ", kSshNoMatch,
                         "\npublic key does not match"));
}

TEST_F(VerifyTest, AlteredSshCommitDoesNotVerify) {
  auto v = VerifyCommit(Cache("ssh-tampered"), world->c_ssh_tampered, Ssh());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(v.status().message(),
            absl::StrCat("signature verification of commit '", world->c_ssh_tampered,
                         "' failed: unable to verify Git commit SSH signature: ", kSshNoMatch,
                         "\nssh: signature did not verify"));
  // Both causes, in the order of the keys.
  auto both = VerifyCommit(
      Cache("ssh-tampered"), world->c_ssh_tampered,
      Keys({{"a.sshpub", world->ssh_other_public_key}, {"b.sshpub", world->ssh_public_key}}));
  ASSERT_FALSE(both.ok());
  EXPECT_TRUE(absl::EndsWith(
      both.status().message(),
      absl::StrCat(kSshNoMatch, "\npublic key does not match\nssh: signature did not verify")))
      << both.status();
}

TEST_F(VerifyTest, GarbageSshKeyIsInvalidArgumentNamingTheDataKey) {
  for (const std::string& garbage : {std::string("not a key"), std::string("ssh-ed25519 AAAA!!!"),
                                     absl::StrCat(world->ssh_public_key, "ssh-ed25519\n")}) {
    SCOPED_TRACE(garbage);
    auto v = VerifyCommit(Cache("ssh"), world->c_ssh, Keys({{"bad.sshpub", garbage}}));
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(v.status().message(),
              absl::StrCat("signature verification of commit '", world->c_ssh,
                           "' failed: unable to verify Git commit SSH signature: unable to parse "
                           "authorized keys 'bad.sshpub': unable to parse authorized key: ssh: no "
                           "key found"));
    EXPECT_FALSE(absl::StrContains(v.status().message(), "AAAA")) << v.status();
  }
  // As in Flux, a bad value next to a good one is skipped.
  auto skipped =
      VerifyCommit(Cache("ssh"), world->c_ssh,
                   Keys({{"a-bad.sshpub", "garbage"}, {"b.sshpub", world->ssh_public_key}}));
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(skipped->key_id, world->ssh_fingerprint);
}

TEST_F(VerifyTest, SshSignedTagVerifies) {
  const std::string& cache = Cache("tag-ssh");
  EXPECT_EQ(world->revisions["tag-ssh"].commit, world->c_ssh);
  auto v = VerifyTag(cache, "refs/tags/v4.0.0-ssh", Ssh());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->key_id, world->ssh_fingerprint);
  EXPECT_EQ(v->object, absl::StrCat("v4.0.0-ssh@", world->tag_ssh));
  auto bad = VerifyTag(cache, "v4.0.0-ssh", Keys({{"other.sshpub", world->ssh_other_public_key}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(bad.status().message(),
            absl::StrCat("signature verification of tag 'v4.0.0-ssh@", world->tag_ssh,
                         "' failed: unable to verify Git tag SSH signature: ", kSshNoMatch,
                         "\npublic key does not match"));
}

TEST_F(VerifyTest, VerifySourceWithSshKeysGivesFluxMessages) {
  const std::string& fp = world->ssh_fingerprint;
  SourceVerification head =
      VerifySource(Cache("ssh"), VerificationMode::kHead, world->c_ssh, "", Ssh());
  EXPECT_TRUE(head.status.ok()) << head.status;
  EXPECT_EQ(head.reason, "Succeeded");
  EXPECT_EQ(head.message, absl::StrCat("verified signature of\n\t- commit '", world->c_ssh,
                                       "' with key '", fp, "'"));
  SourceVerification both = VerifySource(Cache("tag-ssh"), VerificationMode::kTagAndHead,
                                         world->c_ssh, "refs/tags/v4.0.0-ssh", Ssh());
  EXPECT_TRUE(both.status.ok()) << both.status;
  EXPECT_EQ(both.message, absl::StrCat("verified signature of\n\t- tag 'v4.0.0-ssh@",
                                       world->tag_ssh, "' with key '", fp, "'\n\t- commit '",
                                       world->c_ssh, "' with key '", fp, "'"));
  SourceVerification bad = VerifySource(Cache("ssh-tampered"), VerificationMode::kHead,
                                        world->c_ssh_tampered, "", Ssh());
  EXPECT_FALSE(bad.status.ok());
  EXPECT_EQ(bad.reason, "InvalidCommitSignature");
  EXPECT_FALSE(bad.stalled);
}

TEST_F(VerifyTest, SignedAnnotatedTagFetchedByTagRefVerifies) {
  // The fetcher stores the annotated tag object for a ref.tag fetch.
  const std::string& cache = Cache("tag-v1");
  auto type = testing::Git(cache, {"cat-file", "-t", world->tag_v1});
  ASSERT_TRUE(type.ok()) << type.status();
  EXPECT_EQ(*type, "tag");
  EXPECT_EQ(world->revisions["tag-v1"].commit, world->c_alice);
  for (const std::string& name : {std::string("v1.0.0"), std::string("refs/tags/v1.0.0")}) {
    SCOPED_TRACE(name);
    auto v = VerifyTag(cache, name, Alice());
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->key_id, world->alice.key_id);
    EXPECT_EQ(v->object, absl::StrCat("v1.0.0@", world->tag_v1));
  }
  // And the commit it points to, from the same cache.
  auto commit = VerifyCommit(cache, world->revisions["tag-v1"].commit, Alice());
  ASSERT_TRUE(commit.ok()) << commit.status();
  // git agrees about the tag in the cache.
  auto git_verify = RunCommand(
      {"env", "GNUPGHOME=" + world->alice.home, "git", "-C", cache, "verify-tag", "v1.0.0"});
  EXPECT_TRUE(git_verify.ok()) << git_verify.status();
}

TEST_F(VerifyTest, TagSignedByKeyOutsideTheSecretIsPermissionDenied) {
  auto v = VerifyTag(Cache("tag-bob"), "v2.0.0-bob", Alice());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(v.status().message(),
            absl::StrCat("signature verification of tag 'v2.0.0-bob@", world->tag_bob,
                         "' failed: unable to verify Git tag: ", kNoMatch));
  auto ok = VerifyTag(Cache("tag-bob"), "v2.0.0-bob", Keys({{"bob.asc", world->bob.armored}}));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->key_id, world->bob.key_id);
}

TEST_F(VerifyTest, LightweightAndUnsignedTagsAreNotSigned) {
  auto light = VerifyTag(Cache("tag-light"), "v3.0.0-light", Alice());
  ASSERT_FALSE(light.ok());
  EXPECT_EQ(light.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(light.status().message(),
            "cannot verify signature of tag 'v3.0.0-light' since it is not signed");
  auto plain = VerifyTag(Cache("tag-plain"), "refs/tags/v3.0.0-plain", Alice());
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(plain.status().message(), absl::StrCat("cannot verify signature of tag 'v3.0.0-plain@",
                                                   world->tag_plain, "' since it is not signed"));
}

TEST_F(VerifyTest, MissingObjectsAreNotFound) {
  auto tag = VerifyTag(Cache("alice"), "v9.9.9", Alice());
  EXPECT_EQ(tag.status().code(), absl::StatusCode::kNotFound) << tag.status();
  auto commit = VerifyCommit(Cache("alice"), std::string(40, 'a'), Alice());
  EXPECT_EQ(commit.status().code(), absl::StatusCode::kNotFound) << commit.status();
  auto repo = VerifyCommit(world->root + "/no-such-repo", world->c_alice, Alice());
  EXPECT_EQ(repo.status().code(), absl::StatusCode::kNotFound) << repo.status();
  auto bad = VerifyCommit(Cache("alice"), "HEAD", Alice());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
}

TEST_F(VerifyTest, VerifySourceFollowsTheModeWithFluxMessages) {
  const std::string tag_display = absl::StrCat("v1.0.0@", world->tag_v1);
  const std::string& a = world->alice.key_id;
  struct Case {
    std::string name;
    std::string cache;
    VerificationMode mode;
    std::string commit;
    std::string tag_ref;
    bool ok;
    std::string reason;
    std::string message;
    bool stalled;
  };
  const std::vector<Case> cases = {
      {"HEAD", "alice", VerificationMode::kHead, world->c_alice, "", true, "Succeeded",
       absl::StrCat("verified signature of\n\t- commit '", world->c_alice, "' with key '", a, "'"),
       false},
      {"Tag", "tag-v1", VerificationMode::kTag, world->c_alice, "refs/tags/v1.0.0", true,
       "Succeeded",
       absl::StrCat("verified signature of\n\t- tag '", tag_display, "' with key '", a, "'"),
       false},
      {"TagAndHEAD", "tag-v1", VerificationMode::kTagAndHead, world->c_alice, "refs/tags/v1.0.0",
       true, "Succeeded",
       absl::StrCat("verified signature of\n\t- tag '", tag_display, "' with key '", a,
                    "'\n\t- commit '", world->c_alice, "' with key '", a, "'"),
       false},
      {"Tag mode does not look at the commit", "tag-v1", VerificationMode::kTag, world->c_unsigned,
       "refs/tags/v1.0.0", true, "Succeeded",
       absl::StrCat("verified signature of\n\t- tag '", tag_display, "' with key '", a, "'"),
       false},
      {"Tag without a tag ref", "alice", VerificationMode::kTag, world->c_alice, "", false,
       "InvalidVerificationMode",
       "cannot verify tag object's signature if a tag reference is not specified", true},
      {"TagAndHEAD on a lightweight tag", "tag-light", VerificationMode::kTagAndHead,
       world->c_unsigned, "refs/tags/v3.0.0-light", false, "InvalidGitObject",
       "cannot verify signature of tag 'v3.0.0-light' since it is not signed", false},
      {"Tag signed by another key", "tag-bob", VerificationMode::kTag, world->c_bob,
       "refs/tags/v2.0.0-bob", false, "InvalidTagSignature",
       absl::StrCat("signature verification of tag 'v2.0.0-bob@", world->tag_bob,
                    "' failed: unable to verify Git tag: ", kNoMatch),
       false},
      {"HEAD unsigned", "main", VerificationMode::kHead, world->c_unsigned, "", false,
       "InvalidCommitSignature",
       absl::StrCat("signature verification of commit '", world->c_unsigned,
                    "' failed: unsupported signature type: empty"),
       false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SourceVerification v = VerifySource(Cache(c.cache), c.mode, c.commit, c.tag_ref, Alice());
    EXPECT_EQ(v.status.ok(), c.ok) << v.status;
    EXPECT_EQ(v.reason, c.reason);
    EXPECT_EQ(v.message, c.message);
    EXPECT_EQ(v.stalled, c.stalled);
  }
}

// Entries of `dir` named like our temporary GnuPG homes.
std::vector<std::string> GnupgHomesIn(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (absl::StartsWith(name, "gitops-gpg-") || absl::StartsWith(name, "gitops-ssh-")) {
      out.push_back(name);
    }
  }
  return out;
}

// Command lines of processes that mention `needle` (e.g. a gpg-agent left
// behind for a temporary home).
std::vector<std::string> ProcessesMentioning(const std::string& needle) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    auto cmdline = testing::ReadFile(e.path().string() + "/cmdline");
    if (!cmdline.ok()) continue;
    std::string text = *cmdline;
    for (char& ch : text) {
      if (ch == '\0') ch = ' ';
    }
    if (absl::StrContains(text, needle)) out.push_back(text);
  }
  return out;
}

TEST_F(VerifyTest, ConcurrentVerificationsAreIndependentAndLeaveNothingBehind) {
  // Every call makes its GnuPG home under $TMPDIR; point it at a fresh dir
  // (before any thread starts) to see that each one is removed.
  const std::string tmp = world->root + "/tmp";
  std::filesystem::create_directories(tmp);
  const char* old_tmp = ::getenv("TMPDIR");
  std::string saved = old_tmp != nullptr ? old_tmp : "";
  ::setenv("TMPDIR", tmp.c_str(), 1);

  constexpr int kThreads = 4;
  constexpr int kRounds = 6;
  std::vector<std::vector<std::string>> failures(kThreads);
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < kRounds; ++i) {
        // Alternate signers and key sets: a call must never see the keys of
        // another call.
        bool alice = (t + i) % 2 == 0;
        const std::string& commit = alice ? world->c_alice : world->c_bob;
        const std::string& cache = world->caches.at(alice ? "alice" : "bob");
        VerificationKeys own = {{"k.asc", alice ? world->alice.armored : world->bob.armored}};
        VerificationKeys other = {{"k.asc", alice ? world->bob.armored : world->alice.armored}};
        auto good = VerifyCommit(cache, commit, own);
        if (!good.ok() || good->key_id != (alice ? world->alice.key_id : world->bob.key_id)) {
          failures[t].push_back(absl::StrCat("good: ", good.status().ToString()));
        }
        auto bad = VerifyCommit(cache, commit, other);
        if (bad.ok() || bad.status().code() != absl::StatusCode::kPermissionDenied) {
          failures[t].push_back(absl::StrCat("bad: ", bad.status().ToString()));
        }
        // SSH: each call runs its own ssh-keygen on its own allowed_signers.
        VerificationKeys ssh = {{"k.sshpub", world->ssh_public_key}};
        auto ssh_good = VerifyCommit(world->caches.at("ssh"), world->c_ssh, ssh);
        if (!ssh_good.ok() || ssh_good->key_id != world->ssh_fingerprint) {
          failures[t].push_back(absl::StrCat("ssh good: ", ssh_good.status().ToString()));
        }
        auto ssh_bad = VerifyCommit(world->caches.at("ssh-tampered"), world->c_ssh_tampered, ssh);
        if (ssh_bad.ok() || ssh_bad.status().code() != absl::StatusCode::kPermissionDenied) {
          failures[t].push_back(absl::StrCat("ssh bad: ", ssh_bad.status().ToString()));
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (saved.empty()) {
    ::unsetenv("TMPDIR");
  } else {
    ::setenv("TMPDIR", saved.c_str(), 1);
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(failures[t].empty())
        << failures[t].size() << " failures, first: " << failures[t][0];
  }
  EXPECT_TRUE(GnupgHomesIn(tmp).empty());
  std::vector<std::string> leftovers = ProcessesMentioning(tmp + "/gitops-gpg-");
  EXPECT_TRUE(leftovers.empty()) << leftovers[0];
  constexpr int kCalls = kThreads * kRounds * 4;
  std::cout << "[   INFO   ] " << kCalls << " verifications on " << kThreads << " threads: " << ms
            << " ms wall, " << ms * kThreads / kCalls << " ms per verification per thread\n";
}

TEST_F(VerifyTest, SequentialVerificationCost) {
  // Not a benchmark: prints the cost of one verification (one key ring)
  // so the report has a number; asserts only success.
  constexpr int kCalls = 10;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) {
    auto v = VerifyCommit(Cache("alice"), world->c_alice, Alice());
    ASSERT_TRUE(v.ok()) << v.status();
  }
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[   INFO   ] sequential VerifyCommit: " << ms / kCalls << " ms each\n";
  for (const char* kind : {"SSH", "SSH tag", "SSH other key"}) {
    start = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) {
      if (absl::string_view(kind) == "SSH") {
        auto v = VerifyCommit(Cache("ssh"), world->c_ssh, Ssh());
        ASSERT_TRUE(v.ok()) << v.status();
      } else if (absl::string_view(kind) == "SSH tag") {
        auto v = VerifyTag(Cache("tag-ssh"), "v4.0.0-ssh", Ssh());
        ASSERT_TRUE(v.ok()) << v.status();
      } else {
        auto v = VerifyCommit(Cache("ssh"), world->c_ssh,
                              Keys({{"o.sshpub", world->ssh_other_public_key}}));
        ASSERT_FALSE(v.ok());
      }
    }
    ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cout << "[   INFO   ] sequential " << kind << " verification: " << ms / kCalls
              << " ms each\n";
  }
}

TEST(ParseVerificationModeTest, AcceptsFluxValues) {
  EXPECT_EQ(*ParseVerificationMode(""), VerificationMode::kHead);
  EXPECT_EQ(*ParseVerificationMode("HEAD"), VerificationMode::kHead);
  EXPECT_EQ(*ParseVerificationMode("head"), VerificationMode::kHead);
  EXPECT_EQ(*ParseVerificationMode("Tag"), VerificationMode::kTag);
  EXPECT_EQ(*ParseVerificationMode("TagAndHEAD"), VerificationMode::kTagAndHead);
  auto bad = ParseVerificationMode("tag");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "spec.verify.mode")) << bad.status();
}

}  // namespace
}  // namespace gitops::source
