#include "source-controller/git/libgit2_fetcher.h"

#include <fcntl.h>
#include <git2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "source-controller/git/deadline_stream.h"
#include "source-controller/git/git_ref.h"
#include "source-controller/git/git_url.h"
#include "source-controller/git/known_hosts.h"
#include "source-controller/git/pack_compaction.h"
#include "source-controller/git/proxy.h"
#include "source-controller/git/sparse_checkout.h"
#include "source-controller/git/submodules.h"
#include "source-controller/git/x509_verify.h"

namespace gitops::source {
namespace {

using internal::NetworkOperation;
using internal::ProxyRoute;
using internal::ScopedNetworkOperation;

// go-git's (and so Flux's) default submodule recursion depth.
constexpr int kMaxSubmoduleDepth = 10;
// A .gitmodules larger than this is refused.
constexpr size_t kMaxGitmodulesSize = 1 << 20;

// RAII for libgit2 objects.
struct RemoteFree {
  void operator()(git_remote* r) const { git_remote_free(r); }
};
struct RepoFree {
  void operator()(git_repository* r) const { git_repository_free(r); }
};
struct ObjectFree {
  void operator()(git_object* o) const { git_object_free(o); }
};
struct ReferenceFree {
  void operator()(git_reference* r) const { git_reference_free(r); }
};
using RemotePtr = std::unique_ptr<git_remote, RemoteFree>;
using RepoPtr = std::unique_ptr<git_repository, RepoFree>;
using ObjectPtr = std::unique_ptr<git_object, ObjectFree>;

std::string OidHex(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof(buf), oid);
  return buf;
}

bool ParseOid(const std::string& hex, git_oid* out) {
  return git_oid_fromstr(out, hex.c_str()) == 0;
}

// Everything one libgit2 network call needs from its callbacks.
struct CallbackState {
  const GitFetchOptions* options = nullptr;
  GitUrl url;
  NetworkOperation* op = nullptr;
  // The proxy the remote is reached through; null for none.
  const ProxyEndpoint* proxy = nullptr;
  int userpass_attempts = 0;
  int ssh_key_attempts = 0;
  int proxy_attempts = 0;
  // Set once the remote redirected to another origin: the rest of the
  // operation runs without the credentials, as go-git's does.
  bool credentials_withheld = false;
  std::string redirect_target;  // "host:port" redirected to
  // First error raised inside a callback; it explains a failing call better
  // than libgit2's message.
  absl::Status callback_error;

  void Fail(absl::Status status) {
    if (callback_error.ok()) callback_error = std::move(status);
  }
};

int AcquireCredentials(git_credential** out, const char* url, const char* username_from_url,
                       unsigned int allowed, void* payload) {
  auto* state = static_cast<CallbackState*>(payload);
  const GitCredentials& creds = state->options->credentials;
  std::string user = username_from_url != nullptr && *username_from_url != '\0'
                         ? username_from_url
                         : (state->url.username.empty() ? "git" : state->url.username);
  if (allowed & GIT_CREDENTIAL_SSH_KEY) {
    if (creds.ssh_identity.empty()) {
      state->Fail(absl::UnauthenticatedError(
          "ssh authentication required but no identity (private key) given"));
      return GIT_EAUTH;
    }
    if (++state->ssh_key_attempts > 1) {
      state->Fail(absl::UnauthenticatedError(
          absl::StrCat("ssh authentication failed: key for user '", user, "' rejected")));
      return GIT_EAUTH;
    }
    const char* passphrase =
        creds.ssh_identity_passphrase.empty() ? nullptr : creds.ssh_identity_passphrase.c_str();
    int rc = git_credential_ssh_key_memory_new(out, user.c_str(), nullptr,
                                               creds.ssh_identity.c_str(), passphrase);
    if (rc != 0) {
      state->Fail(absl::UnauthenticatedError("ssh identity could not be used"));
      return GIT_EAUTH;
    }
    return 0;
  }
  if (allowed & GIT_CREDENTIAL_USERNAME) {
    return git_credential_username_new(out, user.c_str());
  }
  if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
    if (state->credentials_withheld) {
      state->Fail(absl::UnauthenticatedError(
          absl::StrCat("authentication required after a redirect to ", state->redirect_target,
                       ", another origin than ", UrlOrigin(state->url),
                       ": credentials are only sent to the url's origin")));
      return GIT_EAUTH;
    }
    if (creds.username.empty() && creds.password.empty()) {
      state->Fail(absl::UnauthenticatedError(
          creds.bearer_token.empty() ? "authentication required but no username/password given"
                                     : "authentication failed: bearer token rejected"));
      return GIT_EAUTH;
    }
    if (++state->userpass_attempts > 1) {
      // A user name from the url may be a token: not named.
      state->Fail(absl::UnauthenticatedError(
          creds.username == state->url.username
              ? std::string("authentication failed: wrong username or password (from the url)")
              : absl::StrCat("authentication failed: wrong username or password for user '",
                             creds.username, "'")));
      return GIT_EAUTH;
    }
    return git_credential_userpass_plaintext_new(out, creds.username.c_str(),
                                                 creds.password.c_str());
  }
  state->Fail(absl::UnauthenticatedError("server asks for an unsupported authentication method"));
  return GIT_EAUTH;
}

int CheckCertificate(git_cert* cert, int valid, const char* host, void* payload) {
  auto* state = static_cast<CallbackState*>(payload);
  const GitCredentials& creds = state->options->credentials;
  if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
    auto* key = reinterpret_cast<git_cert_hostkey*>(cert);
    if (!(key->type & GIT_CERT_SSH_RAW)) {
      state->Fail(absl::PermissionDeniedError("ssh host key not available for verification"));
      return GIT_ECERTIFICATE;
    }
    absl::Status s = CheckKnownHosts(creds.ssh_known_hosts, host, EffectivePort(state->url),
                                     absl::string_view(key->hostkey, key->hostkey_len));
    if (!s.ok()) {
      state->Fail(std::move(s));
      return GIT_ECERTIFICATE;
    }
    return 0;
  }
  if (cert->cert_type == GIT_CERT_X509) {
    if (valid) return 0;
    if (creds.ca_pem.empty()) {
      state->Fail(absl::PermissionDeniedError(absl::StrCat(
          "tls certificate of ", host, " not trusted by the system (no ca.crt given)")));
      return GIT_ECERTIFICATE;
    }
    auto* x509 = reinterpret_cast<git_cert_x509*>(cert);
    absl::Status s = VerifyCertificateWithCa(
        absl::string_view(static_cast<const char*>(x509->data), x509->len), creds.ca_pem, host);
    if (!s.ok()) {
      state->Fail(std::move(s));
      return GIT_ECERTIFICATE;
    }
    return 0;
  }
  return valid ? 0 : GIT_ECERTIFICATE;
}

int AcquireProxyCredentials(git_credential** out, const char* url, const char* username_from_url,
                            unsigned int allowed, void* payload) {
  auto* state = static_cast<CallbackState*>(payload);
  const ProxyEndpoint& proxy = *state->proxy;
  if (!(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT)) {
    state->Fail(absl::UnauthenticatedError(
        absl::StrCat("proxy ", proxy.Url(), " asks for an unsupported authentication method")));
    return GIT_EAUTH;
  }
  if (proxy.username.empty() && proxy.password.empty()) {
    state->Fail(absl::UnauthenticatedError(absl::StrCat(
        "proxy ", proxy.Url(), " requires authentication but no proxy username/password given")));
    return GIT_EAUTH;
  }
  if (++state->proxy_attempts > 1) {
    state->Fail(absl::UnauthenticatedError(
        absl::StrCat("proxy authentication failed: proxy ", proxy.Url(),
                     " rejected the username/password of proxy user '", proxy.username, "'")));
    return GIT_EAUTH;
  }
  return git_credential_userpass_plaintext_new(out, proxy.username.c_str(), proxy.password.c_str());
}

int CheckProxyCertificate(git_cert* cert, int valid, const char* host, void* payload) {
  auto* state = static_cast<CallbackState*>(payload);
  if (valid) return 0;
  state->Fail(absl::PermissionDeniedError(absl::StrCat(
      "tls certificate of proxy ", state->proxy->Url(), " not trusted by the system")));
  return GIT_ECERTIFICATE;
}

int CheckDeadline(CallbackState* state) {
  if (state->op->Expired()) {
    state->Fail(absl::DeadlineExceededError("timed out"));
    return GIT_EUSER;
  }
  return 0;
}

int OnTransferProgress(const git_indexer_progress* stats, void* payload) {
  return CheckDeadline(static_cast<CallbackState*>(payload));
}

int OnSidebandProgress(const char* str, int len, void* payload) {
  return CheckDeadline(static_cast<CallbackState*>(payload));
}

git_remote_callbacks MakeCallbacks(CallbackState* state) {
  git_remote_callbacks callbacks;
  git_remote_init_callbacks(&callbacks, GIT_REMOTE_CALLBACKS_VERSION);
  callbacks.credentials = AcquireCredentials;
  callbacks.certificate_check = CheckCertificate;
  callbacks.transfer_progress = OnTransferProgress;
  callbacks.sideband_progress = OnSidebandProgress;
  callbacks.payload = state;
  return callbacks;
}

// Extra HTTP headers (the bearer token) with storage for libgit2's strarray.
class CustomHeaders {
 public:
  // `proxy_authorization`: the value of a Proxy-Authorization header to send
  // with every request, or empty.
  CustomHeaders(const GitFetchOptions& options, absl::string_view proxy_authorization) {
    if (!options.credentials.bearer_token.empty()) {
      bearer_ = absl::StrCat("Authorization: Bearer ", options.credentials.bearer_token);
    }
    if (!proxy_authorization.empty()) {
      proxy_ = absl::StrCat("Proxy-Authorization: ", proxy_authorization);
    }
    Rebuild();
  }
  CustomHeaders(const CustomHeaders&) = delete;
  CustomHeaders& operator=(const CustomHeaders&) = delete;
  const git_strarray& array() const { return array_; }
  // Stops sending the bearer token.
  void DropBearer() {
    bearer_.clear();
    Rebuild();
  }

 private:
  void Rebuild() {
    pointers_.clear();
    for (std::string* h : {&bearer_, &proxy_}) {
      if (!h->empty()) pointers_.push_back(h->data());
    }
    array_.strings = pointers_.data();
    array_.count = pointers_.size();
  }

  std::string bearer_;
  std::string proxy_;
  std::vector<char*> pointers_;
  git_strarray array_{};
};

// Removes credentials from a message that came from libgit2: the URL's
// userinfo (a user name can be a token) and every secret we hold.
std::string Scrub(std::string message, const GitFetchOptions& options) {
  const GitCredentials& c = options.credentials;
  std::string redacted = RedactUrl(options.url);
  if (redacted != options.url) {
    absl::StrReplaceAll({{options.url, redacted}}, &message);
    // "userinfo@" wherever else it appears (e.g. "user@host:port").
    size_t sep = options.url.find("://");
    size_t at = options.url.size() - redacted.size() + sep + 3;  // one past the '@'
    absl::StrReplaceAll({{options.url.substr(sep + 3, at - sep - 3), ""}}, &message);
  }
  for (const std::string* secret :
       {&c.password, &c.bearer_token, &c.ssh_identity_passphrase, &options.proxy.password}) {
    if (secret->size() >= 3) absl::StrReplaceAll({{*secret, "***"}}, &message);
  }
  // A token given as the user name (long enough not to be a plain word).
  absl::StatusOr<GitUrl> url = ParseGitUrl(options.url);
  if (url.ok() && (url->scheme == "http" || url->scheme == "https") && url->username.size() >= 8) {
    absl::StrReplaceAll({{url->username, "***"}}, &message);
  }
  if (!options.proxy.password.empty()) {  // as sent in Proxy-Authorization
    std::string basic =
        absl::Base64Escape(absl::StrCat(options.proxy.username, ":", options.proxy.password));
    absl::StrReplaceAll({{basic, "***"}}, &message);
  }
  return message;
}

// Translates a failed libgit2 call, once, into a status with our codes.
absl::Status TranslateError(int code, const CallbackState& state) {
  const GitFetchOptions& options = *state.options;
  if (state.op != nullptr && state.op->timed_out()) {
    return absl::DeadlineExceededError(
        absl::StrCat("timed out after ", absl::FormatDuration(options.timeout)));
  }
  // A proxy that refused us explains everything after it (a rejected proxy
  // password can look like the remote asking for credentials).
  if (state.op != nullptr) {
    absl::Status proxy_error = state.op->proxy_error();
    if (!proxy_error.ok()) {
      return absl::Status(proxy_error.code(), Scrub(std::string(proxy_error.message()), options));
    }
  }
  if (!state.callback_error.ok()) return state.callback_error;
  if (state.op != nullptr && !state.credentials_withheld && !state.op->refused_target().empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "redirect to ", state.op->refused_target(), ", another origin than ", UrlOrigin(state.url),
        ", not followed: credentials are only sent to the url's origin"));
  }
  const git_error* err = git_error_last();
  std::string message = err != nullptr && err->message != nullptr ? err->message : "unknown error";
  message = Scrub(std::string(absl::StripTrailingAsciiWhitespace(message)), options);
  int klass = err != nullptr ? err->klass : GIT_ERROR_NONE;
  if (state.proxy != nullptr) {
    // Errors a proxy answers with (tinyproxy: 500/502/503 when it cannot
    // reach the remote) would otherwise look like the remote's own.
    if (absl::StrContains(message, "proxy returned unexpected status")) {
      return absl::UnavailableError(absl::StrCat(message, " (proxy ", state.proxy->Url(), ")"));
    }
    if (absl::StrContains(message, "status code: 50")) {
      return absl::UnavailableError(
          absl::StrCat(message, " (through proxy ", state.proxy->Url(), ")"));
    }
  }
  if (state.op != nullptr && state.op->connect_failed()) return absl::UnavailableError(message);
  // libssh2 fails by itself when the identity cannot be decrypted or used.
  if (code == GIT_EAUTH || absl::StrContains(message, "401") ||
      absl::StrContains(message, "authentication required") ||
      absl::StrContains(message, "Failed to authenticate SSH session")) {
    return absl::UnauthenticatedError(message);
  }
  if (code == GIT_ECERTIFICATE) return absl::PermissionDeniedError(message);
  // A missing repository: http 404, or the server-side git's complaint.
  if (code == GIT_ENOTFOUND || absl::StrContains(message, "status code: 404") ||
      absl::StrContains(message, "does not appear to be a git repository") ||
      absl::StrContains(message, "repository not exported") ||
      absl::StrContains(message, "could not find repository") ||
      absl::StrContains(message, "no such repository")) {
    return absl::NotFoundError(message);
  }
  if (klass == GIT_ERROR_NET || klass == GIT_ERROR_HTTP || klass == GIT_ERROR_SSH ||
      klass == GIT_ERROR_SSL || klass == GIT_ERROR_OS) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

absl::Status LibgitError(absl::string_view what) {
  const git_error* err = git_error_last();
  return absl::InternalError(
      absl::StrCat(what, ": ", err != nullptr && err->message ? err->message : "unknown error"));
}

// How one remote URL is reached through options.proxy.
struct ProxyPlan {
  std::optional<ProxyEndpoint> endpoint;
  ProxyMode mode = ProxyMode::kNone;
  std::string libgit2_url;  // for GIT_PROXY_SPECIFIED; no credentials
};

absl::StatusOr<ProxyPlan> PlanProxy(const GitProxy& proxy, const GitUrl& url) {
  ProxyPlan plan;
  if (proxy.address.empty()) return plan;
  ASSIGN_OR_RETURN(ProxyEndpoint endpoint, ParseProxy(proxy));
  ASSIGN_OR_RETURN(plan.mode, SelectProxyMode(url.scheme, &endpoint));
  if (plan.mode == ProxyMode::kNone) return plan;
  plan.libgit2_url = endpoint.Url();
  plan.endpoint = std::move(endpoint);
  return plan;
}

// For an http remote through an http proxy every request goes to the proxy:
// send its credentials up front, as Go's http client (and so Flux) does.
// (Waiting for the 407 challenge fails in libgit2 1.5 with proxies such as
// tinyproxy, whose 407 body ends with the connection.)
std::string ForwardProxyAuthorization(const ProxyPlan& plan) {
  if (plan.mode != ProxyMode::kForward || !plan.endpoint) return "";
  const ProxyEndpoint& p = *plan.endpoint;
  if (p.username.empty() && p.password.empty()) return "";
  return absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(p.username, ":", p.password)));
}

// Everything one network operation (an ls-remote, or an ls-remote followed by
// a download) needs: the deadline, the proxy route of our socket stream, the
// callbacks' state and the extra headers.
class NetworkSession {
 public:
  NetworkSession(const GitFetchOptions& options, const GitUrl& url, const ProxyPlan& plan,
                 absl::Time deadline)
      : op_(deadline),
        scope_(&op_),
        headers_(options, ForwardProxyAuthorization(plan)),
        plan_(plan) {
    state_.options = &options;
    state_.url = url;
    state_.op = &op_;
    if ((url.scheme == "http" || url.scheme == "https") &&
        HasHttpCredentials(options.credentials)) {
      op_.RestrictToOrigin(url.host, absl::StrCat(EffectivePort(url)));
    }
    if (plan_.endpoint) {
      state_.proxy = &*plan_.endpoint;
      ProxyRoute route;
      switch (plan_.mode) {
        case ProxyMode::kLibgit2:
          route.kind = ProxyRoute::Kind::kLibgit2;
          break;
        case ProxyMode::kForward:
          route.kind = ProxyRoute::Kind::kForward;
          break;
        case ProxyMode::kConnect:
          route.kind = ProxyRoute::Kind::kConnect;
          break;
        case ProxyMode::kSocks5:
          route.kind = ProxyRoute::Kind::kSocks5;
          break;
        case ProxyMode::kNone:
          break;
      }
      route.username = plan_.endpoint->username;
      route.password = plan_.endpoint->password;
      route.host = plan_.endpoint->host;
      route.port = absl::StrCat(plan_.endpoint->port);
      route.display = plan_.endpoint->Url();
      op_.set_proxy_route(std::move(route));
    }
  }

  git_remote_callbacks callbacks() { return MakeCallbacks(&state_); }
  const git_strarray& headers() const { return headers_.array(); }
  // After the stream refused a connection to another origin (a redirect):
  // drops every credential for the rest of the operation, so the redirect
  // can be followed without them, as go-git (and so Flux) does. False when
  // nothing was refused or they are dropped already.
  bool DropCredentialsAfterRedirect() {
    std::string target = op_.refused_target();
    if (target.empty() || state_.credentials_withheld) return false;
    state_.credentials_withheld = true;
    state_.redirect_target = std::move(target);
    state_.callback_error = absl::OkStatus();
    headers_.DropBearer();
    op_.Unrestrict();
    return true;
  }
  const std::string& redirect_target() const { return state_.redirect_target; }
  // libgit2's proxy options: only where libgit2 takes part in proxying.
  git_proxy_options proxy_options() {
    git_proxy_options proxy;
    git_proxy_options_init(&proxy, GIT_PROXY_OPTIONS_VERSION);
    if (plan_.mode == ProxyMode::kLibgit2 || plan_.mode == ProxyMode::kForward) {
      proxy.type = GIT_PROXY_SPECIFIED;
      proxy.url = plan_.libgit2_url.c_str();
      proxy.credentials = AcquireProxyCredentials;
      proxy.certificate_check = CheckProxyCertificate;
      proxy.payload = &state_;
    }
    return proxy;
  }
  absl::Status Translate(int code) const { return TranslateError(code, state_); }

 private:
  NetworkOperation op_;
  ScopedNetworkOperation scope_;
  CustomHeaders headers_;
  const ProxyPlan& plan_;
  CallbackState state_;
};

// Puts the session's callbacks, headers and proxy, and git's redirect rule,
// into libgit2's connect or fetch options (the same fields in both).
template <typename Options>
void ApplySession(NetworkSession& session, Options* o) {
  o->callbacks = session.callbacks();
  o->custom_headers = session.headers();
  o->proxy_opts = session.proxy_options();
  // git's and go-git's default, whatever a config says: redirects are
  // followed on the first request only.
  o->follow_redirects = GIT_REMOTE_REDIRECT_INITIAL;
}

// Connects `remote` for fetching and lists its refs.
absl::StatusOr<std::vector<RemoteRef>> ListRefs(git_remote* remote, NetworkSession& session,
                                                const GitFetchOptions& options) {
  auto connect_once = [&] {
    git_remote_connect_options connect;
    git_remote_connect_options_init(&connect, GIT_REMOTE_CONNECT_OPTIONS_VERSION);
    ApplySession(session, &connect);
    return git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &connect);
  };
  int rc = connect_once();
  if (rc != 0 && session.DropCredentialsAfterRedirect()) {
    // Redirected to another origin: go-git follows it without the
    // credentials (it drops them when host or port change); so do we, on a
    // connection that never held them.
    common::LogInfo("git server redirected to another origin; following without credentials",
                    {{"url", RedactUrl(options.url)}, {"target", session.redirect_target()}});
    git_remote_disconnect(remote);
    rc = connect_once();
  }
  if (rc != 0) return session.Translate(rc);
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  rc = git_remote_ls(&heads, &count, remote);
  if (rc != 0) return session.Translate(rc);
  std::vector<std::pair<std::string, std::string>> raw;
  raw.reserve(count);
  for (size_t i = 0; i < count; ++i) raw.emplace_back(heads[i]->name, OidHex(&heads[i]->oid));
  return MergePeeled(raw);
}

// The URL libgit2 gets: for http(s) without userinfo, whose credentials
// reach libgit2 only through our callback (libgit2 would answer any
// challenge with them, and name them in messages).
std::string Libgit2Url(const GitFetchOptions& options, const GitUrl& url) {
  return url.scheme == "http" || url.scheme == "https" ? RedactUrl(options.url) : options.url;
}

std::string Context(absl::string_view action, const GitFetchOptions& options) {
  return absl::StrCat(action, " ", RedactUrl(options.url), " ", DescribeReference(options.ref));
}

absl::Status ValidateOptions(const GitFetchOptions& options, GitUrl* url, ProxyPlan* plan) {
  auto parsed = ParseGitUrl(options.url);
  if (!parsed.ok()) return parsed.status();
  *url = *std::move(parsed);
  RETURN_IF_ERROR(ValidateReference(options.ref));
  ASSIGN_OR_RETURN(*plan, PlanProxy(options.proxy, *url));
  // libgit2 reports a missing local repository as an unsupported protocol.
  std::error_code ec;
  if (url->scheme == "file" && !std::filesystem::exists(url->path, ec)) {
    return absl::NotFoundError(absl::StrCat("repository ", url->path, " does not exist"));
  }
  return absl::OkStatus();
}

absl::Status EnsureEmptyDir(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    if (!std::filesystem::is_directory(dir, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkout dir ", dir, " is not a directory"));
    }
    if (!std::filesystem::is_empty(dir, ec)) {
      return absl::FailedPreconditionError(absl::StrCat("checkout dir ", dir, " is not empty"));
    }
    return absl::OkStatus();
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<RepoPtr> OpenOrInitBare(const std::string& dir) {
  git_repository* repo = nullptr;
  if (git_repository_open_bare(&repo, dir.c_str()) == 0) return RepoPtr(repo);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create cache dir ", dir, ": ", ec.message()));
  if (git_repository_init(&repo, dir.c_str(), /*is_bare=*/1) != 0) {
    return LibgitError(absl::StrCat("init cache repository ", dir));
  }
  return RepoPtr(repo);
}

bool ObjectExists(git_repository* repo, const std::string& hex) {
  git_oid oid;
  if (!ParseOid(hex, &oid)) return false;
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, repo) != 0) return false;
  bool exists = git_odb_exists(odb, &oid) == 1;
  git_odb_free(odb);
  return exists;
}

absl::Status SetRef(git_repository* repo, const std::string& name, const std::string& hex) {
  git_oid oid;
  if (!ParseOid(hex, &oid)) return absl::InternalError(absl::StrCat("bad oid ", hex));
  git_reference* ref = nullptr;
  if (git_reference_create(&ref, repo, name.c_str(), &oid, /*force=*/1, "gitops fetch") != 0) {
    return LibgitError(absl::StrCat("update ", name));
  }
  git_reference_free(ref);
  return absl::OkStatus();
}

// A submodule commit (gitlink) met while writing a tree.
struct Gitlink {
  std::string path;  // relative to the repository being written
  git_oid oid;
  // The sparse checkout dirs below the gitlink, relative to it; empty when
  // the whole submodule is wanted.
  std::vector<SparseDir> sparse;
};

// A symlink target longer than this is refused (Linux's PATH_MAX).
constexpr size_t kMaxSymlinkTarget = 4096;
// Blobs are written (and the deadline checked) this many bytes at a time.
constexpr size_t kWriteChunk = 1 << 20;

// What the checkout of one FetchAndCheckout call (the repository and its
// submodules) may still write, and until when. A git bomb (a small
// repository whose trees name one huge blob many times) wrote 6.3 GB past
// --artifact-max-size and spec.timeout before this existed (issue 17).
class CheckoutBudget {
 public:
  CheckoutBudget(int64_t limit, absl::Time deadline, absl::Duration timeout)
      : limit_(limit), deadline_(deadline), timeout_(timeout) {}

  // Charges `bytes` for the entry at `path`; ResourceExhausted (nothing
  // charged) when that would pass the limit.
  absl::Status Charge(int64_t bytes, absl::string_view path) {
    if (limit_ > 0 && (bytes > limit_ || used_ > limit_ - bytes)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("checkout stopped at '", path, "': the files add up to more than ", limit_,
                       " bytes (file contents plus ", kCheckoutEntryBytes, " bytes per entry)"));
    }
    used_ += bytes;
    return absl::OkStatus();
  }
  // DeadlineExceeded once the deadline has passed.
  absl::Status CheckDeadline(absl::string_view path) const {
    if (absl::Now() < deadline_) return absl::OkStatus();
    return absl::DeadlineExceededError(absl::StrCat(
        "timed out after ", absl::FormatDuration(timeout_), " while checking out '", path, "'"));
  }
  bool limited() const { return limit_ > 0; }

 private:
  int64_t limit_;
  int64_t used_ = 0;
  absl::Time deadline_;
  absl::Duration timeout_;
};

// Writes the tree of a commit into `root` (no .git): regular files (mode
// 0644, or 0755 when executable), symlinks as symlinks, submodules as empty
// directories (recorded in `gitlinks`). With `sparse` non-empty, only the
// entries at or below those dirs (and the directories leading to them) are
// written. Faster than git_checkout_tree (no index, no workdir diff) and
// refuses entry names that could escape `root`. Every entry is charged to
// `budget` before it is written; with `write` false nothing is written and
// blob sizes come from the object headers (nothing is inflated): the
// measuring pass before the real one.
struct TreeWriter {
  git_repository* repo;
  git_odb* odb;
  std::string root;
  const std::vector<SparseDir>* sparse;
  std::vector<bool> matched;  // per sparse dir: an entry with that path exists
  std::vector<Gitlink> gitlinks;
  absl::Status status;
  CheckoutBudget* budget;
  bool write;
  std::string location;  // the repository's path in the artifact, for messages
};

// Writes blob `id` to the new file `path` (`shown` in messages), kWriteChunk bytes
// at a time, checking the deadline in between. Loose objects are streamed;
// packed ones (libgit2 1.5 cannot stream them) are inflated whole, which the
// budget bounds: no blob larger than the limit gets this far.
absl::Status WriteBlob(TreeWriter* w, const git_oid* id, const std::string& path,
                       const std::string& shown, git_filemode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("write ", path, ": ", std::strerror(errno)));
  absl::Status status;
  auto write_all = [&](const char* data, size_t size) {
    while (size > 0) {
      ssize_t n = ::write(fd, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return absl::InternalError(absl::StrCat("write ", path, ": ", std::strerror(errno)));
      }
      data += n;
      size -= static_cast<size_t>(n);
    }
    return absl::OkStatus();
  };
  git_odb_stream* stream = nullptr;
  size_t stream_size = 0;
  git_object_t type = GIT_OBJECT_INVALID;
  if (git_odb_open_rstream(&stream, &stream_size, &type, w->odb, id) == 0) {
    std::vector<char> buf(kWriteChunk);
    while (status.ok()) {
      status = w->budget->CheckDeadline(shown);
      if (!status.ok()) break;
      int n = git_odb_stream_read(stream, buf.data(), buf.size());
      if (n < 0) {
        status = LibgitError(absl::StrCat("read blob ", shown));
      } else if (n == 0) {
        break;
      } else {
        status = write_all(buf.data(), static_cast<size_t>(n));
      }
    }
    git_odb_stream_free(stream);
  } else {
    git_error_clear();
    git_odb_object* obj = nullptr;
    if (git_odb_read(&obj, w->odb, id) != 0) {
      status = LibgitError(absl::StrCat("read blob ", shown));
    } else {
      const char* data = static_cast<const char*>(git_odb_object_data(obj));
      size_t size = git_odb_object_size(obj);
      while (status.ok() && size > 0) {
        status = w->budget->CheckDeadline(shown);
        if (!status.ok()) break;
        size_t n = std::min(size, kWriteChunk);
        status = write_all(data, n);
        data += n;
        size -= n;
      }
      git_odb_object_free(obj);
    }
  }
  if (::close(fd) != 0 && status.ok()) {
    status = absl::InternalError(absl::StrCat("write ", path, ": ", std::strerror(errno)));
  }
  return status;
}

bool SafeEntryName(absl::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != absl::string_view::npos) {
    return false;
  }
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower != ".git";
}

int WriteTreeEntry(const char* parent, const git_tree_entry* entry, void* payload) {
  auto* w = static_cast<TreeWriter*>(payload);
  const char* name = git_tree_entry_name(entry);
  if (!SafeEntryName(name)) {
    w->status = absl::DataLossError(absl::StrCat("refusing tree entry '", parent, name, "'"));
    return -1;
  }
  const std::string rel = absl::StrCat(parent, name);
  const std::string shown = absl::StrCat(w->location, rel);
  git_filemode_t mode = git_tree_entry_filemode(entry);
  SparseMatch match = SparseMatch::kInclude;
  if (!w->sparse->empty()) {
    for (size_t i = 0; i < w->sparse->size(); ++i) {
      if ((*w->sparse)[i].path == rel) w->matched[i] = true;
    }
    match = MatchSparse(*w->sparse, rel);
    if (match == SparseMatch::kExclude) return 1;  // skip it (and its subtree)
    if (match == SparseMatch::kAncestor && mode != GIT_FILEMODE_TREE &&
        mode != GIT_FILEMODE_COMMIT) {
      return 0;  // a file where a wanted dir should be: reported as missing
    }
  }
  // Charged before anything is read or written: the entry's tar header,
  // and a blob's size from its object header (not inflated).
  w->status = w->budget->CheckDeadline(shown);
  if (!w->status.ok()) return -1;
  int64_t charge = kCheckoutEntryBytes;
  size_t blob_size = 0;
  if (mode != GIT_FILEMODE_TREE && mode != GIT_FILEMODE_COMMIT) {
    git_object_t type = GIT_OBJECT_INVALID;
    if (git_odb_read_header(&blob_size, &type, w->odb, git_tree_entry_id(entry)) != 0) {
      w->status = LibgitError(absl::StrCat("read blob ", shown));
      return -1;
    }
    if (mode == GIT_FILEMODE_LINK && blob_size > kMaxSymlinkTarget) {
      w->status = absl::InvalidArgumentError(absl::StrCat(
          "refusing symlink '", shown, "': target longer than ", kMaxSymlinkTarget, " bytes"));
      return -1;
    }
    charge += static_cast<int64_t>(blob_size);
  }
  w->status = w->budget->Charge(charge, shown);
  if (!w->status.ok()) return -1;
  if (!w->write) {
    return mode == GIT_FILEMODE_COMMIT ? 1 : 0;  // a gitlink's tree is elsewhere
  }

  std::string path = absl::StrCat(w->root, "/", rel);
  if (mode == GIT_FILEMODE_TREE || mode == GIT_FILEMODE_COMMIT) {
    if (::mkdir(path.c_str(), 0755) != 0) {
      w->status = absl::InternalError(absl::StrCat("mkdir ", path, ": ", std::strerror(errno)));
      return -1;
    }
    if (mode == GIT_FILEMODE_TREE) return 0;
    Gitlink link{rel, *git_tree_entry_id(entry), {}};
    if (match == SparseMatch::kAncestor) {
      for (const SparseDir& dir : *w->sparse) {
        if (absl::StartsWith(dir.path, rel) && dir.path.size() > rel.size() &&
            dir.path[rel.size()] == '/') {
          link.sparse.push_back(SparseDir{dir.path.substr(rel.size() + 1), dir.spec});
        }
      }
    }
    w->gitlinks.push_back(std::move(link));
    return 1;  // a gitlink has no subtree in this repository
  }
  if (mode == GIT_FILEMODE_LINK) {
    git_odb_object* obj = nullptr;
    if (git_odb_read(&obj, w->odb, git_tree_entry_id(entry)) != 0) {
      w->status = LibgitError(absl::StrCat("read blob ", shown));
      return -1;
    }
    std::string target(static_cast<const char*>(git_odb_object_data(obj)),
                       git_odb_object_size(obj));
    git_odb_object_free(obj);
    if (::symlink(target.c_str(), path.c_str()) != 0) {
      w->status = absl::InternalError(absl::StrCat("symlink ", path, ": ", std::strerror(errno)));
      return -1;
    }
    return 0;
  }
  w->status = WriteBlob(w, git_tree_entry_id(entry), path, shown, mode);
  return w->status.ok() ? 0 : -1;
}

absl::StatusOr<ObjectPtr> CommitTree(git_repository* repo, const git_oid& commit) {
  git_object* obj = nullptr;
  if (git_object_lookup(&obj, repo, &commit, GIT_OBJECT_COMMIT) != 0) {
    return LibgitError("lookup commit");
  }
  ObjectPtr commit_obj(obj);
  git_object* tree = nullptr;
  if (git_object_peel(&tree, commit_obj.get(), GIT_OBJECT_TREE) != 0) {
    return LibgitError("read tree");
  }
  return ObjectPtr(tree);
}

// The .gitmodules of `tree`; empty when it has none.
absl::StatusOr<std::vector<SubmoduleConfig>> ReadGitmodules(git_repository* repo, git_tree* tree) {
  const git_tree_entry* entry = git_tree_entry_byname(tree, ".gitmodules");
  if (entry == nullptr || git_tree_entry_type(entry) != GIT_OBJECT_BLOB) {
    return std::vector<SubmoduleConfig>();
  }
  // Sized from the object header first: a huge .gitmodules is refused
  // without being inflated.
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, repo) != 0) return LibgitError("read .gitmodules");
  size_t size = 0;
  git_object_t type = GIT_OBJECT_INVALID;
  int rc = git_odb_read_header(&size, &type, odb, git_tree_entry_id(entry));
  git_odb_free(odb);
  if (rc != 0) return LibgitError("read .gitmodules");
  if (size > kMaxGitmodulesSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(".gitmodules is larger than ", kMaxGitmodulesSize, " bytes"));
  }
  git_blob* blob = nullptr;
  if (git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) != 0) {
    return LibgitError("read .gitmodules");
  }
  size = static_cast<size_t>(git_blob_rawsize(blob));
  std::string text(static_cast<const char*>(git_blob_rawcontent(blob)), size);
  git_blob_free(blob);
  return ParseGitmodules(text);
}

// The cache repository of a submodule URL: <root cache>/modules/<sha1 of url>.
std::string SubmoduleCacheDir(const std::string& cache_root, const std::string& url) {
  git_oid oid;
  git_odb_hash(&oid, url.data(), url.size(), GIT_OBJECT_BLOB);
  return absl::StrCat(cache_root, "/modules/", OidHex(&oid));
}

absl::Status CheckSparseMatched(const TreeWriter& writer, bool recurse,
                                absl::string_view location) {
  for (size_t i = 0; i < writer.sparse->size(); ++i) {
    if (writer.matched[i]) continue;
    const SparseDir& dir = (*writer.sparse)[i];
    std::string inside;
    for (const Gitlink& link : writer.gitlinks) {
      if (absl::StartsWith(dir.path, link.path) && dir.path.size() > link.path.size() &&
          dir.path[link.path.size()] == '/') {
        inside = link.path;
      }
    }
    if (!inside.empty() && recurse) continue;  // checked in the submodule
    std::string why;
    if (!inside.empty()) {
      why = absl::StrCat(" (it is inside submodule '", location, inside,
                         "' and recurseSubmodules is off)");
    }
    return absl::NotFoundError(
        absl::StrCat("sparse checkout dir '", dir.spec, "' does not exist in repository", why));
  }
  return absl::OkStatus();
}

// What the fetch of one repository (the GitRepository's or a submodule's)
// produced.
struct FetchedCommit {
  ResolvedRef target;
  git_oid commit;
  int64_t received_objects = 0;
  int64_t received_bytes = 0;
};

// For a local (file) remote libgit2's transport packs every wanted object
// in memory before the cache gets it (a 300 MB file cost 644 MB of RSS, past
// any deadline): measure the wanted tree in the source repository first,
// from the object headers, and refuse it there if it cannot fit. Anything
// this cannot open or resolve is left for the fetch to report.
absl::Status MeasureLocalSource(const GitUrl& url, const std::string& oid_hex,
                                const GitFetchOptions& options, absl::Time deadline) {
  git_oid oid;
  if (options.max_checkout_bytes <= 0 || !ParseOid(oid_hex, &oid)) return absl::OkStatus();
  absl::StatusOr<std::vector<SparseDir>> sparse = NormalizeSparseCheckout(options.sparse_checkout);
  if (!sparse.ok()) return absl::OkStatus();
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, url.path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) !=
      0) {
    git_error_clear();
    return absl::OkStatus();
  }
  RepoPtr source(raw);
  git_object* obj = nullptr;
  if (git_object_lookup(&obj, source.get(), &oid, GIT_OBJECT_ANY) != 0) {
    git_error_clear();
    return absl::OkStatus();
  }
  ObjectPtr object(obj);
  git_object* tree = nullptr;
  if (git_object_peel(&tree, object.get(), GIT_OBJECT_TREE) != 0) {
    git_error_clear();
    return absl::OkStatus();
  }
  ObjectPtr tree_obj(tree);
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, source.get()) != 0) return LibgitError("open object database");
  absl::Cleanup free_odb = [odb] { git_odb_free(odb); };
  CheckoutBudget budget(options.max_checkout_bytes, deadline, options.timeout);
  TreeWriter measuring{source.get(), odb, "",      &*sparse, std::vector<bool>(sparse->size()),
                       {},           {},  &budget, false,    ""};
  if (git_tree_walk(reinterpret_cast<git_tree*>(tree), GIT_TREEWALK_PRE, WriteTreeEntry,
                    &measuring) != 0) {
    if (!measuring.status.ok()) return measuring.status;
    return LibgitError("measure tree");
  }
  return absl::OkStatus();
}

// Fetches options.ref from options.url into `repo` (the cache) unless it is
// there already, and resolves the commit to check out.
absl::StatusOr<FetchedCommit> FetchInto(git_repository* repo, const GitFetchOptions& options,
                                        const GitUrl& url, const ProxyPlan& plan,
                                        absl::Time deadline) {
  FetchedCommit out;
  ResolvedRef& target = out.target;
  std::optional<ResolvedRef> offline = ResolveOffline(options.ref);
  if (offline && offline->refname.empty() && ObjectExists(repo, offline->commit)) {
    // A pinned commit already in the cache needs no network at all.
    target = *offline;
  } else {
    NetworkSession session(options, url, plan, deadline);
    git_remote* raw = nullptr;
    // Not git_remote_create_anonymous: its url.<base>.insteadOf lookup
    // compiles a regex through pcre2 that libgit2 1.5 never frees (~190 KB
    // per fetch, found by heaptrack). We apply no insteadOf rewriting and
    // use explicit refspecs anyway.
    git_remote_create_options create = GIT_REMOTE_CREATE_OPTIONS_INIT;
    create.repository = repo;
    create.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    if (git_remote_create_with_opts(&raw, Libgit2Url(options, url).c_str(), &create) != 0) {
      return absl::InvalidArgumentError(Scrub(LibgitError("create remote").ToString(), options));
    }
    RemotePtr remote(raw);
    ASSIGN_OR_RETURN(std::vector<RemoteRef> refs, ListRefs(remote.get(), session, options));
    ASSIGN_OR_RETURN(target, ResolveRef(options.ref, refs));

    // What to fetch: the one resolved ref, or for a commit-only ref every
    // branch and tag (the commit may be on any of them).
    std::vector<std::pair<std::string, std::string>> updates;  // ref -> oid
    if (!target.refname.empty()) {
      updates.emplace_back(target.refname, target.object_oid);
    } else {
      for (const RemoteRef& r : refs) {
        if (absl::StartsWith(r.name, "refs/heads/") || absl::StartsWith(r.name, "refs/tags/")) {
          updates.emplace_back(r.name, r.oid);
        }
      }
    }
    bool missing = false;
    for (const auto& [name, oid] : updates) missing = missing || !ObjectExists(repo, oid);
    if (missing && url.scheme == "file") {
      absl::Status fits = MeasureLocalSource(url, target.commit, options, deadline);
      if (absl::IsResourceExhausted(fits)) {
        fits.SetPayload(kRevisionPayload, absl::Cord(target.revision));
      }
      RETURN_IF_ERROR(fits);
    }
    if (missing) {
      std::vector<std::string> specs;
      for (const auto& [name, oid] : updates) specs.push_back(absl::StrCat("+", name, ":", name));
      std::vector<char*> spec_ptrs;
      for (std::string& s : specs) spec_ptrs.push_back(s.data());
      git_strarray refspecs{spec_ptrs.data(), spec_ptrs.size()};
      git_fetch_options fetch;
      git_fetch_options_init(&fetch, GIT_FETCH_OPTIONS_VERSION);
      ApplySession(session, &fetch);
      fetch.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
      fetch.prune = GIT_FETCH_NO_PRUNE;
      fetch.update_fetchhead = 0;
      int rc = git_remote_download(remote.get(), &refspecs, &fetch);
      if (rc != 0) return session.Translate(rc);
      const git_indexer_progress* stats = git_remote_stats(remote.get());
      out.received_objects = stats->received_objects;
      out.received_bytes = static_cast<int64_t>(stats->received_bytes);
    }
    git_remote_disconnect(remote.get());
    // Keep the fetched refs so the next fetch negotiates from them.
    for (const auto& [name, oid] : updates) {
      if (ObjectExists(repo, oid)) RETURN_IF_ERROR(SetRef(repo, name, oid));
    }
  }

  git_oid& commit = out.commit;
  if (!ParseOid(target.commit, &commit) || !ObjectExists(repo, target.commit)) {
    if (!options.ref.branch.empty() && SelectRefKind(options.ref) == RefKind::kCommit) {
      return absl::NotFoundError(absl::StrCat("commit '", target.commit, "' not found in branch '",
                                              options.ref.branch, "'"));
    }
    return absl::NotFoundError(absl::StrCat("commit '", target.commit, "' not found"));
  }
  {
    git_object* obj = nullptr;
    if (git_object_lookup(&obj, repo, &commit, GIT_OBJECT_ANY) != 0) {
      return absl::NotFoundError(absl::StrCat("commit '", target.commit, "' not found"));
    }
    ObjectPtr holder(obj);
    git_object* peeled = nullptr;
    if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) != 0) {
      return absl::NotFoundError(absl::StrCat("'", target.commit, "' is not a commit"));
    }
    git_oid_cpy(&commit, git_object_id(peeled));
    git_object_free(peeled);
    target.commit = OidHex(&commit);
  }
  if (SelectRefKind(options.ref) == RefKind::kCommit && !target.object_oid.empty()) {
    // A commit pinned on a branch must be reachable from that branch.
    git_oid tip;
    ParseOid(target.object_oid, &tip);
    if (!git_oid_equal(&tip, &commit) && git_graph_descendant_of(repo, &tip, &commit) != 1) {
      return absl::NotFoundError(absl::StrCat("commit '", target.commit, "' not found in branch '",
                                              options.ref.branch, "'"));
    }
  }
  return out;
}

// One FetchAndCheckout call: writes a commit's tree and, with
// recurse_submodules, its submodules' trees, recursively.
class Checkout {
 public:
  Checkout(const GitFetchOptions& options, std::string cache_root, absl::Time deadline)
      : options_(options),
        cache_root_(std::move(cache_root)),
        deadline_(deadline),
        budget_(options.max_checkout_bytes, deadline, options.timeout) {}

  int64_t received_objects() const { return received_objects_; }
  int64_t received_bytes() const { return received_bytes_; }

  // Writes `commit` of `repo` (fetched from `repo_url`) into `dir`, which
  // exists and is empty. `location` is the repository's path in the
  // artifact ("" for the root, "a/b/" for a submodule), for messages.
  absl::Status Write(git_repository* repo, const git_oid& commit, const std::string& repo_url,
                     const std::string& dir, const std::vector<SparseDir>& sparse,
                     const std::string& location, int depth) {
    ASSIGN_OR_RETURN(ObjectPtr tree_obj, CommitTree(repo, commit));
    auto* tree = reinterpret_cast<git_tree*>(tree_obj.get());
    git_odb* odb = nullptr;
    if (git_repository_odb(&odb, repo) != 0) return LibgitError("open object database");
    absl::Cleanup free_odb = [odb] { git_odb_free(odb); };
    auto walk = [&](TreeWriter& writer) -> absl::Status {
      if (git_tree_walk(tree, GIT_TREEWALK_PRE, WriteTreeEntry, &writer) != 0) {
        if (!writer.status.ok()) return writer.status;
        return LibgitError(absl::StrCat("checkout into ", dir));
      }
      return absl::OkStatus();
    };
    auto new_writer = [&](CheckoutBudget* budget, bool write) {
      return TreeWriter{repo, odb, dir,    &sparse, std::vector<bool>(sparse.size(), false),
                        {},   {},  budget, write,   location};
    };
    if (budget_.limited()) {
      // Sized from the object headers before anything is written: a tree
      // over the limit is refused with nothing on disk and no blob inflated.
      CheckoutBudget measure = budget_;
      TreeWriter measuring = new_writer(&measure, false);
      RETURN_IF_ERROR(walk(measuring));
    }
    TreeWriter writer = new_writer(&budget_, true);
    RETURN_IF_ERROR(walk(writer));
    RETURN_IF_ERROR(CheckSparseMatched(writer, options_.recurse_submodules, location));
    if (!options_.recurse_submodules || writer.gitlinks.empty()) return absl::OkStatus();

    absl::StatusOr<std::vector<SubmoduleConfig>> modules = ReadGitmodules(repo, tree);
    if (!modules.ok()) {
      return common::Annotate(
          modules.status(),
          absl::StrCat("submodules of '", location.empty() ? "/" : location, "'"));
    }
    for (const Gitlink& link : writer.gitlinks) {
      const SubmoduleConfig* config = nullptr;
      for (const SubmoduleConfig& m : *modules) {
        if (m.path == link.path) config = &m;
      }
      std::string where = absl::StrCat(location, link.path);
      if (config == nullptr || config->url.empty()) {
        // git and go-git leave such a gitlink alone, too.
        if (!link.sparse.empty()) {
          return absl::NotFoundError(absl::StrCat("sparse checkout dir '", link.sparse.front().spec,
                                                  "' is inside submodule '", where,
                                                  "', which has no url in .gitmodules"));
        }
        common::LogInfo("submodule has no url in .gitmodules; left empty",
                        {{"path", where}, {"url", RedactUrl(options_.url)}});
        continue;
      }
      if (depth + 1 > kMaxSubmoduleDepth) {
        return absl::FailedPreconditionError(absl::StrCat("submodule '", where,
                                                          "': submodules nested deeper than ",
                                                          kMaxSubmoduleDepth, " levels"));
      }
      absl::Status s = WriteSubmodule(link, *config, repo_url, absl::StrCat(dir, "/", link.path),
                                      where, depth + 1);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  absl::Status WriteSubmodule(const Gitlink& link, const SubmoduleConfig& config,
                              const std::string& parent_url, const std::string& dir,
                              const std::string& where, int depth) {
    auto context = [&](absl::string_view url) {
      return absl::StrCat("submodule '", where, "' (", RedactUrl(url), ")");
    };
    absl::StatusOr<std::string> url = ResolveSubmoduleUrl(parent_url, config.url);
    if (!url.ok()) return common::Annotate(url.status(), context(config.url));
    GitFetchOptions sub = options_;
    sub.url = *url;
    sub.ref = GitReference();
    sub.ref.commit = OidHex(&link.oid);
    sub.sparse_checkout.clear();
    GitUrl parsed;
    ProxyPlan plan;
    absl::Status valid = ValidateOptions(sub, &parsed, &plan);
    if (!valid.ok()) return common::Annotate(valid, context(*url));
    // The GitRepository's credentials go to its url's origin only: a
    // .gitmodules that names another host gets none (go-git would send them
    // anywhere). A submodule url's own userinfo still counts.
    absl::StatusOr<GitUrl> root = ParseGitUrl(options_.url);
    if (!root.ok() || UrlOrigin(*root) != UrlOrigin(parsed)) {
      sub.credentials.username.clear();
      sub.credentials.password.clear();
      sub.credentials.bearer_token.clear();
    }
    sub.credentials = WithUrlCredentials(parsed, std::move(sub.credentials));
    if (parsed.scheme == "file") {
      absl::StatusOr<GitUrl> parent = ParseGitUrl(parent_url);
      if (!parent.ok() || parent->scheme != "file") {
        // git refuses these too (protocol.file.allow=user): a remote
        // repository must not pull files of this machine into the artifact.
        return absl::InvalidArgumentError(
            absl::StrCat(context(*url),
                         ": local submodule urls are only allowed when the "
                         "repository itself is local"));
      }
    }
    absl::StatusOr<RepoPtr> repo = OpenOrInitBare(SubmoduleCacheDir(cache_root_, *url));
    if (!repo.ok()) return common::Annotate(repo.status(), context(*url));
    absl::StatusOr<FetchedCommit> fetched = FetchInto(repo->get(), sub, parsed, plan, deadline_);
    if (!fetched.ok()) return common::Annotate(fetched.status(), context(*url));
    received_objects_ += fetched->received_objects;
    received_bytes_ += fetched->received_bytes;
    return Write(repo->get(), fetched->commit, *url, dir, link.sparse, absl::StrCat(where, "/"),
                 depth);
  }

  const GitFetchOptions& options_;
  const std::string cache_root_;
  const absl::Time deadline_;
  CheckoutBudget budget_;
  int64_t received_objects_ = 0;
  int64_t received_bytes_ = 0;
};

// `options` with Flux's credentials from the url's userinfo filled in.
GitFetchOptions ApplyUrlCredentials(const GitFetchOptions& options) {
  GitFetchOptions out = options;
  absl::StatusOr<GitUrl> url = ParseGitUrl(options.url);
  if (url.ok()) out.credentials = WithUrlCredentials(*url, std::move(out.credentials));
  return out;
}

// Serializes calls on the same cache directory.
std::shared_ptr<absl::Mutex> CacheLock(const std::string& cache_dir) {
  static absl::Mutex registry_mu;
  static auto* locks = new std::map<std::string, std::shared_ptr<absl::Mutex>>();
  std::string key = std::filesystem::absolute(cache_dir).lexically_normal().string();
  absl::MutexLock lock(&registry_mu);
  auto& entry = (*locks)[key];
  if (!entry) entry = std::make_shared<absl::Mutex>();
  return entry;
}

class Libgit2Fetcher : public GitFetcher {
 public:
  explicit Libgit2Fetcher(Libgit2FetcherOptions options) : options_(options) {}

  absl::StatusOr<GitRevision> ResolveRemote(const GitFetchOptions& given) override {
    const GitFetchOptions options = ApplyUrlCredentials(given);
    absl::StatusOr<GitRevision> result = DoResolveRemote(options);
    if (!result.ok()) return common::Annotate(result.status(), Context("list refs of", options));
    return result;
  }

  absl::StatusOr<GitRevision> FetchAndCheckout(const GitFetchOptions& given,
                                               const std::string& cache_dir,
                                               const std::string& checkout_dir) override {
    const GitFetchOptions options = ApplyUrlCredentials(given);
    std::shared_ptr<absl::Mutex> mu = CacheLock(cache_dir);
    absl::MutexLock lock(mu.get());
    absl::StatusOr<GitRevision> result = DoFetchAndCheckout(options, cache_dir, checkout_dir);
    if (!result.ok()) return common::Annotate(result.status(), Context("fetch", options));
    return result;
  }

 private:
  static GitRevision ToRevision(const ResolvedRef& r) {
    GitRevision rev;
    rev.revision = r.revision;
    rev.commit = r.commit;
    rev.ref = r.refname;
    return rev;
  }

  absl::StatusOr<GitRevision> DoResolveRemote(const GitFetchOptions& options) {
    GitUrl url;
    ProxyPlan plan;
    RETURN_IF_ERROR(ValidateOptions(options, &url, &plan));
    if (auto offline = ResolveOffline(options.ref)) return ToRevision(*offline);
    NetworkSession session(options, url, plan, absl::Now() + options.timeout);
    git_remote* raw = nullptr;
    if (git_remote_create_detached(&raw, Libgit2Url(options, url).c_str()) != 0) {
      return absl::InvalidArgumentError(Scrub(LibgitError("create remote").ToString(), options));
    }
    RemotePtr remote(raw);
    ASSIGN_OR_RETURN(std::vector<RemoteRef> refs, ListRefs(remote.get(), session, options));
    git_remote_disconnect(remote.get());
    ASSIGN_OR_RETURN(ResolvedRef resolved, ResolveRef(options.ref, refs));
    return ToRevision(resolved);
  }

  absl::StatusOr<GitRevision> DoFetchAndCheckout(const GitFetchOptions& options,
                                                 const std::string& cache_dir,
                                                 const std::string& checkout_dir) {
    absl::Time deadline = absl::Now() + options.timeout;
    GitUrl url;
    ProxyPlan plan;
    RETURN_IF_ERROR(ValidateOptions(options, &url, &plan));
    ASSIGN_OR_RETURN(std::vector<SparseDir> sparse,
                     NormalizeSparseCheckout(options.sparse_checkout));
    RETURN_IF_ERROR(EnsureEmptyDir(checkout_dir));
    ASSIGN_OR_RETURN(RepoPtr repo, OpenOrInitBare(cache_dir));
    ASSIGN_OR_RETURN(FetchedCommit fetched, FetchInto(repo.get(), options, url, plan, deadline));
    Checkout checkout(options, cache_dir, deadline);
    absl::Status written =
        checkout.Write(repo.get(), fetched.commit, options.url, checkout_dir, sparse, "", 0);
    if (absl::IsResourceExhausted(written)) {
      // The caller may remember what it refused without asking the remote
      // again (it may have moved on meanwhile).
      written.SetPayload(kRevisionPayload, absl::Cord(fetched.target.revision));
    }
    RETURN_IF_ERROR(written);
    GitRevision rev = ToRevision(fetched.target);
    git_commit* commit = nullptr;
    if (git_commit_lookup(&commit, repo.get(), &fetched.commit) == 0) {
      const char* message = git_commit_message(commit);
      if (message != nullptr) rev.message = message;
      git_commit_free(commit);
    }
    rev.received_objects = fetched.received_objects + checkout.received_objects();
    rev.received_bytes = fetched.received_bytes + checkout.received_bytes();
    // The checkout is written: keep the cache fast for the next fetch. A
    // failure costs only speed, never this revision.
    absl::StatusOr<int> packs = CompactPacks(repo.get(), cache_dir, options_.max_packs_per_cache);
    if (!packs.ok()) {
      common::LogError("compact git cache", {{"url", RedactUrl(options.url)},
                                             {"error", std::string(packs.status().message())}});
    }
    return rev;
  }

  const Libgit2FetcherOptions options_;
};

}  // namespace

std::unique_ptr<GitFetcher> NewLibgit2Fetcher(Libgit2FetcherOptions options) {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    if (internal::RegisterDeadlineSocketStream() != 0) {
      common::LogError(
          "register libgit2 socket stream failed; git timeouts only apply during transfer");
    }
  });
  return std::make_unique<Libgit2Fetcher>(options);
}

}  // namespace gitops::source
