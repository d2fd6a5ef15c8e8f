#include "source-controller/verify/ssh.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/crypto/sha256.h"
#include "common/log/log.h"

extern char** environ;

namespace gitops::source {
namespace {

// Flux's (fluxcd/pkg git/signature) namespace for Git signatures, and the
// sentinel messages it joins after "no matching key" (hiddeco/sshsig and
// golang.org/x/crypto/ssh).
constexpr char kNamespace[] = "git";
constexpr char kNoMatchingKey[] =
    "unable to verify payload with any of the given authorized keys: no matching key";
constexpr char kPublicKeyMismatch[] = "public key does not match";
constexpr char kNamespaceMismatch[] = "namespace does not match";
constexpr char kSignatureDidNotVerify[] = "ssh: signature did not verify";
constexpr char kRsaVerificationError[] = "crypto/rsa: verification error";
constexpr char kNoKeyFound[] = "ssh: no key found";
// The principal of our allowed_signers line; any fixed name does.
constexpr char kPrincipal[] = "flux";
// ssh-keygen verifies in milliseconds; this only bounds a wedged child.
constexpr auto kSshKeygenTimeout = std::chrono::seconds(30);

// Public key algorithms OpenSSH 9 and golang.org/x/crypto/ssh parse.
bool IsKnownKeyType(absl::string_view type) {
  static const std::set<absl::string_view> kTypes = {
      "ssh-ed25519",
      "ssh-rsa",
      "ssh-dss",
      "ecdsa-sha2-nistp256",
      "ecdsa-sha2-nistp384",
      "ecdsa-sha2-nistp521",
      "sk-ssh-ed25519@openssh.com",
      "sk-ecdsa-sha2-nistp256@openssh.com",
      "ssh-ed25519-cert-v01@openssh.com",
      "ssh-rsa-cert-v01@openssh.com",
      "ssh-dss-cert-v01@openssh.com",
      "ecdsa-sha2-nistp256-cert-v01@openssh.com",
      "ecdsa-sha2-nistp384-cert-v01@openssh.com",
      "ecdsa-sha2-nistp521-cert-v01@openssh.com",
      "sk-ssh-ed25519-cert-v01@openssh.com",
      "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
  };
  return kTypes.count(type) > 0;
}

// Reads SSH wire-format values (RFC 4251 uint32 and string) from a buffer.
class WireReader {
 public:
  explicit WireReader(absl::string_view data) : data_(data) {}
  bool ReadUint32(uint32_t* out) {
    if (data_.size() < 4) return false;
    *out = (static_cast<uint32_t>(static_cast<unsigned char>(data_[0])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(data_[1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(data_[2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>(data_[3]));
    data_.remove_prefix(4);
    return true;
  }
  bool ReadString(absl::string_view* out) {
    uint32_t n = 0;
    if (!ReadUint32(&n) || data_.size() < n) return false;
    *out = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  bool ReadBytes(size_t n, absl::string_view* out) {
    if (data_.size() < n) return false;
    *out = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }

 private:
  absl::string_view data_;
};

// A public key: its wire blob and its algorithm name (the blob's first
// string).
struct PublicKey {
  std::string type;
  std::string blob;
};

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// "<type> <base64> [comment]": the key, if the base64 field decodes to a
// blob of a known algorithm (the text type is not trusted, as in Go's
// ssh.ParseAuthorizedKey).
bool ParseBareKey(absl::string_view text, PublicKey* out) {
  text = absl::StripLeadingAsciiWhitespace(text);
  size_t sp = text.find_first_of(" \t");
  if (sp == absl::string_view::npos) return false;
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(text.substr(sp));
  absl::string_view b64 = rest.substr(0, rest.find_first_of(" \t"));
  std::string blob;
  if (b64.empty() || !absl::Base64Unescape(b64, &blob)) return false;
  WireReader reader(blob);
  absl::string_view type;
  if (!reader.ReadString(&type) || !IsKnownKeyType(type)) return false;
  out->type = std::string(type);
  out->blob = std::move(blob);
  return true;
}

// One authorized_keys line: a bare key, or options (up to the first
// whitespace outside double quotes) followed by one.
bool ParseKeyLine(absl::string_view line, PublicKey* out) {
  if (ParseBareKey(line, out)) return true;
  bool quoted = false;
  size_t i = 0;
  for (; i < line.size(); ++i) {
    if (line[i] == '"' && (i == 0 || line[i - 1] != '\\')) quoted = !quoted;
    if (!quoted && IsSpace(line[i])) break;
  }
  if (i >= line.size()) return false;
  return ParseBareKey(line.substr(i), out);
}

// Flux's ParseAuthorizedKeys: every non-blank, non-comment line must be a
// key, or the whole value is refused.
absl::Status ParseAuthorizedKeys(const AuthorizedKeys& value, std::vector<PublicKey>* keys) {
  std::vector<PublicKey> out;
  for (absl::string_view line : absl::StrSplit(value.text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    PublicKey key;
    if (!ParseKeyLine(line, &key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unable to parse authorized keys '", value.name,
                       "': unable to parse authorized key: ", kNoKeyFound));
    }
    out.push_back(std::move(key));
  }
  keys->insert(keys->end(), out.begin(), out.end());
  return absl::OkStatus();
}

// The fields of an SSHSIG blob (OpenSSH PROTOCOL.sshsig) that matter here.
struct SshSig {
  std::string public_key;  // wire blob
  std::string name_space;
  std::string hash_algorithm;
};

absl::StatusOr<SshSig> Unarmor(absl::string_view armored) {
  constexpr absl::string_view kBegin = "-----BEGIN SSH SIGNATURE-----";
  constexpr absl::string_view kEnd = "-----END SSH SIGNATURE-----";
  auto unarmor_error = [](absl::string_view why) {
    return absl::PermissionDeniedError(absl::StrCat("unable to unarmor SSH signature: ", why));
  };
  size_t begin = armored.find(kBegin);
  size_t end = armored.find(kEnd);
  if (begin == absl::string_view::npos || end == absl::string_view::npos || end < begin) {
    return unarmor_error("invalid PEM block");
  }
  std::string b64;
  for (char c : armored.substr(begin + kBegin.size(), end - begin - kBegin.size())) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) b64.push_back(c);
  }
  std::string blob;
  if (!absl::Base64Unescape(b64, &blob)) return unarmor_error("invalid PEM block");
  WireReader reader(blob);
  absl::string_view magic, public_key, name_space, reserved, hash, signature;
  uint32_t version = 0;
  if (!reader.ReadBytes(6, &magic) || magic != "SSHSIG") {
    return unarmor_error("invalid magic preamble");
  }
  if (!reader.ReadUint32(&version)) return unarmor_error("ssh: short read");
  if (version != 1) {
    return unarmor_error(absl::StrCat("unsupported signature version ", version, ": expected 1"));
  }
  if (!reader.ReadString(&public_key) || !reader.ReadString(&name_space) ||
      !reader.ReadString(&reserved) || !reader.ReadString(&hash) ||
      !reader.ReadString(&signature)) {
    return unarmor_error("ssh: short read");
  }
  if (hash != "sha256" && hash != "sha512") {
    return unarmor_error(absl::StrCat("unsupported hash algorithm \"", hash,
                                      "\": must be \"sha256\" or \"sha512\""));
  }
  return SshSig{std::string(public_key), std::string(name_space), std::string(hash)};
}

// A fresh 0700 directory for one call.
absl::StatusOr<std::string> MakePrivateDir() {
  const char* tmp = ::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat((tmp != nullptr && *tmp != '\0') ? tmp : "/tmp", "/gitops-ssh-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("create temporary directory ", pattern, ": ", std::strerror(errno)));
  }
  return pattern;
}

absl::Status WriteFile(const std::string& path, absl::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("write ", path));
  return absl::OkStatus();
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return out;
}

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal
  std::string out;
  std::string err;
};

// Runs `argv` (found on $PATH, no shell) with stdin from `stdin_path` and
// stdout/stderr into files of `dir`. posix_spawn (vfork-like in glibc) is
// safe from a multi-threaded process, unlike fork + non-async-signal-safe
// code.
absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         const std::string& stdin_path, const std::string& dir) {
  const std::string out_path = dir + "/stdout";
  const std::string err_path = dir + "/stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  absl::Cleanup destroy_actions = [&actions] { posix_spawn_file_actions_destroy(&actions); };
  posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot run ", argv[0], " for SSH signature verification: ", std::strerror(rc)));
  }
  // Poll with a short backoff: the child usually exits within milliseconds.
  auto deadline = std::chrono::steady_clock::now() + kSshKeygenTimeout;
  auto pause = std::chrono::microseconds(200);
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("wait for ", argv[0], ": ", std::strerror(errno)));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return absl::UnavailableError(
          absl::StrCat(argv[0], " did not finish within ", kSshKeygenTimeout.count(), " s"));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20000));
  }
  ProcessResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = ReadSmallFile(out_path);
  result.err = ReadSmallFile(err_path);
  return result;
}

// `ssh-keygen -Y verify` of `signature` over `payload` with `key` as the
// only allowed signer. Returns the fingerprint ssh-keygen reports, or
// PermissionDenied (with ssh-keygen's complaint) when it does not verify.
absl::StatusOr<std::string> SshKeygenVerify(absl::string_view signature, absl::string_view payload,
                                            const PublicKey& key) {
  absl::StatusOr<std::string> dir = MakePrivateDir();
  if (!dir.ok()) return dir.status();
  absl::Cleanup remove_dir = [&dir] {
    std::error_code ec;
    std::filesystem::remove_all(*dir, ec);
    if (ec) {
      common::LogError("remove temporary directory failed",
                       {{"path", *dir}, {"error", ec.message()}});
    }
  };
  const std::string allowed = *dir + "/allowed_signers";
  const std::string sig = *dir + "/signature";
  const std::string msg = *dir + "/payload";
  if (auto s = WriteFile(allowed, absl::StrCat(kPrincipal, " ", key.type, " ",
                                               absl::Base64Escape(key.blob), "\n"));
      !s.ok()) {
    return s;
  }
  if (auto s = WriteFile(sig, absl::StrCat(absl::StripAsciiWhitespace(signature), "\n")); !s.ok()) {
    return s;
  }
  if (auto s = WriteFile(msg, payload); !s.ok()) return s;
  absl::StatusOr<ProcessResult> run = RunProcess(
      {"ssh-keygen", "-Y", "verify", "-f", allowed, "-I", kPrincipal, "-n", kNamespace, "-s", sig},
      msg, *dir);
  if (!run.ok()) return run.status();
  // stdout: Good "git" signature for flux with ED25519 key SHA256:...
  const std::string good =
      absl::StrCat("Good \"", kNamespace, "\" signature for ", kPrincipal, " with ");
  for (absl::string_view line : absl::StrSplit(run->out, '\n')) {
    if (run->exit_code != 0 || !absl::StartsWith(line, good)) continue;
    size_t at = line.rfind(" key SHA256:");
    if (at == absl::string_view::npos) continue;
    return std::string(absl::StripAsciiWhitespace(line.substr(at + 5)));
  }
  std::string why(absl::StripAsciiWhitespace(run->err));
  absl::StrReplaceAll({{"\n", "; "}}, &why);
  return absl::PermissionDeniedError(
      absl::StrCat("ssh-keygen exited with ", run->exit_code, ": ", why));
}

}  // namespace

std::string SshFingerprint(absl::string_view blob) {
  common::Sha256 hasher;
  hasher.Update(blob);
  const std::string digest = absl::HexStringToBytes(hasher.HexDigest());
  std::string b64 = absl::Base64Escape(digest);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return absl::StrCat("SHA256:", b64);
}

absl::StatusOr<std::string> VerifySshSignature(absl::string_view signature,
                                               absl::string_view payload,
                                               const std::vector<AuthorizedKeys>& authorized_keys) {
  if (authorized_keys.empty()) return absl::InvalidArgumentError("no authorized keys given");
  absl::StatusOr<SshSig> sig = Unarmor(signature);
  if (!sig.ok()) return sig.status();

  // Parse every value; like Flux, an unparseable one only matters when none
  // can be parsed.
  std::vector<PublicKey> keys;
  bool any_parsed = false;
  absl::Status first_error;
  for (const AuthorizedKeys& value : authorized_keys) {
    absl::Status parsed = ParseAuthorizedKeys(value, &keys);
    if (parsed.ok()) {
      any_parsed = true;
    } else if (first_error.ok()) {
      first_error = parsed;
    }
  }
  if (!any_parsed) return first_error;

  // Flux's sshsig.Verify per key: fingerprint, then namespace, then the
  // signature itself; the distinct causes are joined after "no matching
  // key", in the order first seen.
  const std::string signer = SshFingerprint(sig->public_key);
  std::vector<std::string> causes;
  auto add_cause = [&causes](std::string cause) {
    if (std::find(causes.begin(), causes.end(), cause) == causes.end()) {
      causes.push_back(std::move(cause));
    }
  };
  bool verified_once = false;
  for (const PublicKey& key : keys) {
    if (SshFingerprint(key.blob) != signer) {
      add_cause(kPublicKeyMismatch);
      continue;
    }
    if (sig->name_space != kNamespace) {
      add_cause(kNamespaceMismatch);
      continue;
    }
    // The same key listed twice gives the same verdict.
    if (verified_once) {
      add_cause(absl::StartsWith(key.type, "ssh-rsa") ? kRsaVerificationError
                                                      : kSignatureDidNotVerify);
      continue;
    }
    verified_once = true;
    absl::StatusOr<std::string> fingerprint = SshKeygenVerify(signature, payload, key);
    if (fingerprint.ok()) {
      if (*fingerprint != signer) {
        return absl::InternalError(
            absl::StrCat("ssh-keygen reported key ", *fingerprint, ", expected ", signer));
      }
      return fingerprint;
    }
    if (fingerprint.status().code() != absl::StatusCode::kPermissionDenied) {
      return fingerprint.status();
    }
    common::LogDebug("ssh-keygen did not verify the signature",
                     {{"key", signer}, {"error", std::string(fingerprint.status().message())}});
    add_cause(absl::StartsWith(key.type, "ssh-rsa") ? kRsaVerificationError
                                                    : kSignatureDidNotVerify);
  }
  std::string message = kNoMatchingKey;
  for (const std::string& cause : causes) absl::StrAppend(&message, "\n", cause);
  return absl::PermissionDeniedError(message);
}

}  // namespace gitops::source
