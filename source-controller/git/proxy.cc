#include "source-controller/git/proxy.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace gitops::source {

std::string ProxyEndpoint::Url() const {
  bool v6 = host.find(':') != std::string::npos;
  return absl::StrCat(scheme, "://", v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
}

absl::StatusOr<ProxyEndpoint> ParseProxy(const GitProxy& proxy) {
  absl::string_view address = proxy.address;
  // Never repeat the address in messages past its userinfo.
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("invalid proxy address: ", why));
  };
  for (char c : address) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return bad("whitespace or control character");
    }
  }
  size_t sep = address.find("://");
  if (sep == absl::string_view::npos) {
    return bad("want scheme://host:port with scheme http, https or socks5");
  }
  ProxyEndpoint out;
  out.scheme = absl::AsciiStrToLower(address.substr(0, sep));
  if (out.scheme != "http" && out.scheme != "https" && !out.socks()) {
    return bad(absl::StrCat("unsupported scheme \"", out.scheme, "\", want http, https or socks5"));
  }
  absl::string_view authority = address.substr(sep + 3);
  absl::ConsumeSuffix(&authority, "/");
  if (authority.find('/') != absl::string_view::npos) return bad("unexpected path");
  size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) {
    absl::string_view userinfo = authority.substr(0, at);
    size_t colon = userinfo.find(':');
    out.username = std::string(userinfo.substr(0, colon));
    if (colon != absl::string_view::npos) out.password = std::string(userinfo.substr(colon + 1));
    authority = authority.substr(at + 1);
  }
  if (!proxy.username.empty() || !proxy.password.empty()) {
    out.username = proxy.username;
    out.password = proxy.password;
  }
  absl::string_view port_text;
  if (absl::StartsWith(authority, "[")) {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) return bad("unterminated ipv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (!absl::ConsumePrefix(&after, ":")) return bad("bad host");
      port_text = after.empty() ? "x" : after;
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) port_text = "x";
    }
  }
  if (out.host.empty()) return bad("missing host");
  if (!port_text.empty()) {
    if (!absl::SimpleAtoi(port_text, &out.port) || out.port <= 0 || out.port > 65535) {
      return bad("bad port");
    }
  } else {
    out.port = out.scheme == "http" ? 80 : out.scheme == "https" ? 443 : 1080;
  }
  return out;
}

absl::StatusOr<ProxyMode> SelectProxyMode(absl::string_view url_scheme,
                                          const ProxyEndpoint* proxy) {
  if (proxy == nullptr || url_scheme == "file") return ProxyMode::kNone;
  if (proxy->socks()) return ProxyMode::kSocks5;
  if (url_scheme == "https") {
    return proxy->scheme == "https" ? ProxyMode::kLibgit2 : ProxyMode::kConnect;
  }
  if (url_scheme == "http") {
    if (proxy->scheme == "https") {
      return absl::InvalidArgumentError(
          absl::StrCat("proxy ", proxy->Url(),
                       ": an https proxy cannot be used for an http:// url; use an "
                       "http:// or socks5:// proxy address"));
    }
    return ProxyMode::kForward;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "proxy ", proxy->Url(), ": ", url_scheme,
      ":// urls can only go through a socks5:// proxy (http and https proxies carry only "
      "http(s) git urls)"));
}

}  // namespace gitops::source
