#include "source-controller/git/known_hosts.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace gitops::source {
namespace {

// Two fake ed25519 public key blobs in SSH wire format.
std::string Blob(char fill) {
  std::string b("\0\0\0\x0bssh-ed25519\0\0\0\x20", 19);
  b.append(32, fill);
  return b;
}

std::string Line(absl::string_view hosts, const std::string& blob) {
  return absl::StrCat(hosts, " ssh-ed25519 ", absl::Base64Escape(blob), "\n");
}

std::string Hashed(absl::string_view name) {
  std::string salt = "0123456789abcdefghij";
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), salt.data(), static_cast<int>(salt.size()),
       reinterpret_cast<const unsigned char*>(name.data()), name.size(), mac, &len);
  return absl::StrCat("|1|", absl::Base64Escape(salt), "|",
                      absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(mac), len)));
}

TEST(KnownHostsTest, AcceptsMatchingKeys) {
  const std::string key = Blob('k');
  struct Case {
    std::string name, known_hosts, host;
    int port;
  };
  const std::vector<Case> cases = {
      {"plain host port 22", Line("github.com", key), "github.com", 22},
      {"bracketed host and port", Line("[127.0.0.1]:2222", key), "127.0.0.1", 2222},
      {"comma list", Line("other,[localhost]:2222,x", key), "localhost", 2222},
      {"glob", Line("*.example.com", key), "git.example.com", 22},
      {"hashed", Line(Hashed("[127.0.0.1]:2200"), key), "127.0.0.1", 2200},
      {"second of two keys", Line("h", Blob('o')) + Line("h", key), "h", 22},
      {"comments and blanks", "# comment\n\n" + Line("h", key), "h", 22},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(CheckKnownHosts(c.known_hosts, c.host, c.port, key).ok());
  }
}

TEST(KnownHostsTest, RefusesUnknownAndMismatchedKeys) {
  const std::string key = Blob('k');
  struct Case {
    std::string name, known_hosts, host;
    int port;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"empty", "", "h", 22, "unknown ssh host key"},
      {"other host", Line("other", key), "h", 22, "unknown ssh host key"},
      {"port must match", Line("h", key), "h", 2222, "unknown ssh host key"},
      {"negated", Line("*,!h", key), "h", 22, "unknown ssh host key"},
      {"other key", Line("[h]:2222", Blob('x')), "h", 2222, "host key mismatch"},
      {"hashed other key", Line(Hashed("h"), Blob('x')), "h", 22, "host key mismatch"},
      {"revoked", "@revoked h ssh-ed25519 " + absl::Base64Escape(key) + "\n" + Line("h", key), "h",
       22, "revoked"},
      {"cert authority lines ignored",
       "@cert-authority h ssh-ed25519 " + absl::Base64Escape(key) + "\n", "h", 22,
       "unknown ssh host key"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::Status s = CheckKnownHosts(c.known_hosts, c.host, c.port, key);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_NE(s.message().find(c.message_part), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace gitops::source
