#include "source-controller/git/known_hosts.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace gitops::source {
namespace {

// Glob with '*' and '?', as OpenSSH host patterns.
bool Glob(absl::string_view pattern, absl::string_view text) {
  size_t p = 0, t = 0, star = absl::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool HashedMatch(absl::string_view entry, absl::string_view name) {
  // |1|base64(salt)|base64(hmac-sha1(salt, name))
  std::vector<absl::string_view> parts = absl::StrSplit(entry, '|');
  if (parts.size() != 4 || parts[1] != "1") return false;
  std::string salt, want;
  if (!absl::Base64Unescape(parts[2], &salt) || !absl::Base64Unescape(parts[3], &want)) {
    return false;
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha1(), salt.data(), static_cast<int>(salt.size()),
           reinterpret_cast<const unsigned char*>(name.data()), name.size(), mac,
           &mac_len) == nullptr) {
    return false;
  }
  return want == absl::string_view(reinterpret_cast<const char*>(mac), mac_len);
}

// True when the comma-separated host field names `name`.
bool HostFieldMatches(absl::string_view field, absl::string_view name) {
  if (absl::StartsWith(field, "|")) return HashedMatch(field, name);
  bool matched = false;
  for (absl::string_view pattern : absl::StrSplit(field, ',')) {
    bool negate = absl::ConsumePrefix(&pattern, "!");
    if (Glob(pattern, name)) {
      if (negate) return false;
      matched = true;
    }
  }
  return matched;
}

}  // namespace

absl::Status CheckKnownHosts(absl::string_view known_hosts, absl::string_view host, int port,
                             absl::string_view key_blob) {
  std::string name =
      port == 22 || port == 0 ? std::string(host) : absl::StrCat("[", host, "]:", port);
  bool host_seen = false;
  bool match = false;
  for (absl::string_view line : absl::StrSplit(known_hosts, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    std::string marker;
    if (!fields.empty() && fields[0][0] == '@') {
      marker = std::string(fields[0]);
      fields.erase(fields.begin());
    }
    if (fields.size() < 3 || marker == "@cert-authority") continue;
    if (!HostFieldMatches(fields[0], name)) continue;
    std::string blob;
    if (!absl::Base64Unescape(fields[2], &blob)) continue;
    if (marker == "@revoked") {
      if (blob == key_blob) {
        return absl::PermissionDeniedError(absl::StrCat("host key for ", name, " is revoked"));
      }
      continue;
    }
    host_seen = true;
    if (blob == key_blob) match = true;
  }
  if (match) return absl::OkStatus();
  if (host_seen) {
    return absl::PermissionDeniedError(
        absl::StrCat("ssh host key mismatch for ", name, ": the key in known_hosts differs"));
  }
  if (absl::StripAsciiWhitespace(known_hosts).empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("unknown ssh host key for ", name, ": no known_hosts given"));
  }
  return absl::PermissionDeniedError(
      absl::StrCat("unknown ssh host key for ", name, ": not in known_hosts"));
}

}  // namespace gitops::source
