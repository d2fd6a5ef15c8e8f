#include "source-controller/git/git_url.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gitops::source {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX escapes decoded (Go's url.User.Username/Password); a malformed escape
// is kept as it is.
std::string PercentDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<GitUrl> ParseGitUrl(absl::string_view url) {
  if (url.empty()) return absl::InvalidArgumentError("empty git url");
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat("invalid git url \"", RedactUrl(url),
                                                     "\": whitespace or control character"));
    }
  }
  GitUrl out;
  if (url[0] == '/') {
    out.scheme = "file";
    out.path = std::string(url);
    out.local_path = true;
    return out;
  }
  size_t sep = url.find("://");
  if (sep == absl::string_view::npos) {
    size_t colon = url.find(':');
    if (colon != absl::string_view::npos && colon > 0 && url.find('/') > colon) {
      return absl::InvalidArgumentError(absl::StrCat("unsupported git url \"", RedactUrl(url),
                                                     "\": scp-like syntax, use ssh://host/path"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported git url \"", RedactUrl(url),
                     "\": want http, https, ssh, git or file scheme or an absolute path"));
  }
  out.scheme = absl::AsciiStrToLower(url.substr(0, sep));
  if (out.scheme != "http" && out.scheme != "https" && out.scheme != "ssh" && out.scheme != "git" &&
      out.scheme != "file") {
    return absl::InvalidArgumentError(absl::StrCat("unsupported git url scheme \"", out.scheme,
                                                   "\" in \"", RedactUrl(url),
                                                   "\": want http, https, ssh, git or file"));
  }
  absl::string_view rest = url.substr(sep + 3);
  if (out.scheme == "file") {
    if (rest.empty() || rest[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("invalid git url \"", RedactUrl(url),
                                                     "\": file urls need an absolute path"));
    }
    out.path = std::string(rest);
    return out;
  }
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  out.path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) {
    absl::string_view userinfo = authority.substr(0, at);
    size_t colon = userinfo.find(':');
    out.username = PercentDecode(userinfo.substr(0, colon));
    out.has_password = colon != absl::string_view::npos;
    if (out.has_password) out.password = PercentDecode(userinfo.substr(colon + 1));
    authority = authority.substr(at + 1);
  }
  absl::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid git url \"", RedactUrl(url), "\": unterminated ipv6 address"));
    }
    out.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid git url \"", RedactUrl(url), "\": bad host"));
      }
      port_text = after.substr(1);
      if (port_text.empty()) port_text = "x";
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) port_text = "x";
    }
  }
  if (out.host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid git url \"", RedactUrl(url), "\": missing host"));
  }
  if (!port_text.empty()) {
    int port = 0;
    if (!absl::SimpleAtoi(port_text, &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid git url \"", RedactUrl(url), "\": bad port"));
    }
    out.port = port;
  }
  return out;
}

std::string RedactUrl(absl::string_view url) {
  size_t sep = url.find("://");
  if (sep == absl::string_view::npos) return std::string(url);
  absl::string_view rest = url.substr(sep + 3);
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  size_t at = authority.rfind('@');
  if (at == absl::string_view::npos) return std::string(url);
  return absl::StrCat(url.substr(0, sep + 3), rest.substr(at + 1));
}

std::string UrlOrigin(const GitUrl& url) {
  if (url.scheme == "file") return "";
  std::string host = absl::AsciiStrToLower(url.host);
  if (host.find(':') != std::string::npos) host = absl::StrCat("[", host, "]");
  return absl::StrCat(url.scheme, "://", host, ":", EffectivePort(url));
}

int EffectivePort(const GitUrl& url) {
  if (url.port != 0) return url.port;
  if (url.scheme == "http") return 80;
  if (url.scheme == "https") return 443;
  if (url.scheme == "ssh") return 22;
  if (url.scheme == "git") return 9418;
  return 0;
}

GitCredentials WithUrlCredentials(const GitUrl& url, GitCredentials credentials) {
  if (url.scheme != "http" && url.scheme != "https") return credentials;
  if (credentials.username.empty()) credentials.username = url.username;
  if (credentials.password.empty()) credentials.password = url.password;
  return credentials;
}

bool HasHttpCredentials(const GitCredentials& credentials) {
  return !credentials.username.empty() || !credentials.password.empty() ||
         !credentials.bearer_token.empty();
}

}  // namespace gitops::source
