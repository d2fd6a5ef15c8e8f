#include "source-controller/git/libgit2_fetcher.h"

#include <fcntl.h>
#include <git2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
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
#include "source-controller/git/x509_verify.h"

namespace gitops::source {
namespace {

using internal::NetworkOperation;
using internal::ScopedNetworkOperation;

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
  int userpass_attempts = 0;
  int ssh_key_attempts = 0;
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
    if (creds.username.empty() && creds.password.empty()) {
      state->Fail(absl::UnauthenticatedError(
          creds.bearer_token.empty() ? "authentication required but no username/password given"
                                     : "authentication failed: bearer token rejected"));
      return GIT_EAUTH;
    }
    if (++state->userpass_attempts > 1) {
      state->Fail(absl::UnauthenticatedError(absl::StrCat(
          "authentication failed: wrong username or password for user '", creds.username, "'")));
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
  explicit CustomHeaders(const GitFetchOptions& options) {
    if (!options.credentials.bearer_token.empty()) {
      headers_.push_back(absl::StrCat("Authorization: Bearer ", options.credentials.bearer_token));
    }
    for (std::string& h : headers_) pointers_.push_back(h.data());
    array_.strings = pointers_.data();
    array_.count = pointers_.size();
  }
  const git_strarray& array() const { return array_; }

 private:
  std::vector<std::string> headers_;
  std::vector<char*> pointers_;
  git_strarray array_{};
};

// Removes credentials from a message that came from libgit2.
std::string Scrub(std::string message, const GitFetchOptions& options) {
  const GitCredentials& c = options.credentials;
  std::string redacted = RedactUrl(options.url);
  if (redacted != options.url) absl::StrReplaceAll({{options.url, redacted}}, &message);
  for (const std::string* secret : {&c.password, &c.bearer_token, &c.ssh_identity_passphrase}) {
    if (secret->size() >= 3) absl::StrReplaceAll({{*secret, "***"}}, &message);
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
  if (!state.callback_error.ok()) return state.callback_error;
  const git_error* err = git_error_last();
  std::string message = err != nullptr && err->message != nullptr ? err->message : "unknown error";
  message = Scrub(std::string(absl::StripTrailingAsciiWhitespace(message)), options);
  int klass = err != nullptr ? err->klass : GIT_ERROR_NONE;
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

// Connects `remote` for fetching and lists its refs.
absl::StatusOr<std::vector<RemoteRef>> ListRefs(git_remote* remote, CallbackState& state,
                                                const CustomHeaders& headers) {
  git_remote_connect_options connect;
  git_remote_connect_options_init(&connect, GIT_REMOTE_CONNECT_OPTIONS_VERSION);
  connect.callbacks = MakeCallbacks(&state);
  connect.custom_headers = headers.array();
  int rc = git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &connect);
  if (rc != 0) return TranslateError(rc, state);
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  rc = git_remote_ls(&heads, &count, remote);
  if (rc != 0) return TranslateError(rc, state);
  std::vector<std::pair<std::string, std::string>> raw;
  raw.reserve(count);
  for (size_t i = 0; i < count; ++i) raw.emplace_back(heads[i]->name, OidHex(&heads[i]->oid));
  return MergePeeled(raw);
}

std::string Context(absl::string_view action, const GitFetchOptions& options) {
  return absl::StrCat(action, " ", RedactUrl(options.url), " ", DescribeReference(options.ref));
}

absl::Status ValidateOptions(const GitFetchOptions& options, GitUrl* url) {
  auto parsed = ParseGitUrl(options.url);
  if (!parsed.ok()) return parsed.status();
  *url = *std::move(parsed);
  RETURN_IF_ERROR(ValidateReference(options.ref));
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

// Writes the tree of `commit` into `dir` (no .git): regular files (mode 0644,
// or 0755 when executable), symlinks as symlinks, submodules as empty
// directories. Faster than git_checkout_tree (no index, no workdir diff) and
// refuses entry names that could escape `dir`.
struct TreeWriter {
  git_repository* repo;
  std::string root;
  absl::Status status;
};

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
  std::string path = absl::StrCat(w->root, "/", parent, name);
  git_filemode_t mode = git_tree_entry_filemode(entry);
  if (mode == GIT_FILEMODE_TREE || mode == GIT_FILEMODE_COMMIT) {
    if (::mkdir(path.c_str(), 0755) != 0) {
      w->status = absl::InternalError(absl::StrCat("mkdir ", path, ": ", std::strerror(errno)));
      return -1;
    }
    return mode == GIT_FILEMODE_COMMIT ? 1 : 0;  // 1: do not descend
  }
  git_blob* blob = nullptr;
  if (git_blob_lookup(&blob, w->repo, git_tree_entry_id(entry)) != 0) {
    w->status = LibgitError(absl::StrCat("read blob ", parent, name));
    return -1;
  }
  const char* data = static_cast<const char*>(git_blob_rawcontent(blob));
  size_t size = static_cast<size_t>(git_blob_rawsize(blob));
  if (mode == GIT_FILEMODE_LINK) {
    std::string target(data, size);
    git_blob_free(blob);
    if (::symlink(target.c_str(), path.c_str()) != 0) {
      w->status = absl::InternalError(absl::StrCat("symlink ", path, ": ", std::strerror(errno)));
      return -1;
    }
    return 0;
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644);
  bool ok = fd >= 0;
  while (ok && size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) {
      data += n;
      size -= static_cast<size_t>(n);
    }
  }
  int saved = errno;
  if (fd >= 0) ok = ::close(fd) == 0 && ok;
  git_blob_free(blob);
  if (!ok) {
    w->status = absl::InternalError(absl::StrCat("write ", path, ": ", std::strerror(saved)));
    return -1;
  }
  return 0;
}

absl::Status CheckoutTree(git_repository* repo, const git_oid& commit, const std::string& dir) {
  git_object* obj = nullptr;
  if (git_object_lookup(&obj, repo, &commit, GIT_OBJECT_COMMIT) != 0) {
    return LibgitError("lookup commit");
  }
  ObjectPtr commit_obj(obj);
  git_object* tree = nullptr;
  if (git_object_peel(&tree, commit_obj.get(), GIT_OBJECT_TREE) != 0) {
    return LibgitError("read tree");
  }
  ObjectPtr tree_obj(tree);
  TreeWriter writer{repo, dir, absl::OkStatus()};
  if (git_tree_walk(reinterpret_cast<git_tree*>(tree_obj.get()), GIT_TREEWALK_PRE, WriteTreeEntry,
                    &writer) != 0) {
    if (!writer.status.ok()) return writer.status;
    return LibgitError(absl::StrCat("checkout into ", dir));
  }
  return absl::OkStatus();
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
  absl::StatusOr<GitRevision> ResolveRemote(const GitFetchOptions& options) override {
    absl::StatusOr<GitRevision> result = DoResolveRemote(options);
    if (!result.ok()) return common::Annotate(result.status(), Context("list refs of", options));
    return result;
  }

  absl::StatusOr<GitRevision> FetchAndCheckout(const GitFetchOptions& options,
                                               const std::string& cache_dir,
                                               const std::string& checkout_dir) override {
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
    RETURN_IF_ERROR(ValidateOptions(options, &url));
    if (auto offline = ResolveOffline(options.ref)) return ToRevision(*offline);
    NetworkOperation op(absl::Now() + options.timeout);
    ScopedNetworkOperation scope(&op);
    CallbackState state;
    state.options = &options;
    state.url = url;
    state.op = &op;
    CustomHeaders headers(options);
    git_remote* raw = nullptr;
    if (git_remote_create_detached(&raw, options.url.c_str()) != 0) {
      return absl::InvalidArgumentError(Scrub(LibgitError("create remote").ToString(), options));
    }
    RemotePtr remote(raw);
    ASSIGN_OR_RETURN(std::vector<RemoteRef> refs, ListRefs(remote.get(), state, headers));
    git_remote_disconnect(remote.get());
    ASSIGN_OR_RETURN(ResolvedRef resolved, ResolveRef(options.ref, refs));
    return ToRevision(resolved);
  }

  absl::StatusOr<GitRevision> DoFetchAndCheckout(const GitFetchOptions& options,
                                                 const std::string& cache_dir,
                                                 const std::string& checkout_dir) {
    GitUrl url;
    RETURN_IF_ERROR(ValidateOptions(options, &url));
    RETURN_IF_ERROR(EnsureEmptyDir(checkout_dir));
    ASSIGN_OR_RETURN(RepoPtr repo, OpenOrInitBare(cache_dir));

    GitRevision out;
    ResolvedRef target;
    std::optional<ResolvedRef> offline = ResolveOffline(options.ref);
    if (offline && offline->refname.empty() && ObjectExists(repo.get(), offline->commit)) {
      // A pinned commit already in the cache needs no network at all.
      target = *offline;
    } else {
      NetworkOperation op(absl::Now() + options.timeout);
      ScopedNetworkOperation scope(&op);
      CallbackState state;
      state.options = &options;
      state.url = url;
      state.op = &op;
      CustomHeaders headers(options);
      git_remote* raw = nullptr;
      if (git_remote_create_anonymous(&raw, repo.get(), options.url.c_str()) != 0) {
        return absl::InvalidArgumentError(Scrub(LibgitError("create remote").ToString(), options));
      }
      RemotePtr remote(raw);
      ASSIGN_OR_RETURN(std::vector<RemoteRef> refs, ListRefs(remote.get(), state, headers));
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
      for (const auto& [name, oid] : updates) missing = missing || !ObjectExists(repo.get(), oid);
      if (missing) {
        std::vector<std::string> specs;
        for (const auto& [name, oid] : updates) specs.push_back(absl::StrCat("+", name, ":", name));
        std::vector<char*> spec_ptrs;
        for (std::string& s : specs) spec_ptrs.push_back(s.data());
        git_strarray refspecs{spec_ptrs.data(), spec_ptrs.size()};
        git_fetch_options fetch;
        git_fetch_options_init(&fetch, GIT_FETCH_OPTIONS_VERSION);
        fetch.callbacks = MakeCallbacks(&state);
        fetch.custom_headers = headers.array();
        fetch.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
        fetch.prune = GIT_FETCH_NO_PRUNE;
        fetch.update_fetchhead = 0;
        int rc = git_remote_download(remote.get(), &refspecs, &fetch);
        if (rc != 0) return TranslateError(rc, state);
        const git_indexer_progress* stats = git_remote_stats(remote.get());
        out.received_objects = stats->received_objects;
        out.received_bytes = static_cast<int64_t>(stats->received_bytes);
      }
      git_remote_disconnect(remote.get());
      // Keep the fetched refs so the next fetch negotiates from them.
      for (const auto& [name, oid] : updates) {
        if (ObjectExists(repo.get(), oid)) RETURN_IF_ERROR(SetRef(repo.get(), name, oid));
      }
    }

    git_oid commit;
    if (!ParseOid(target.commit, &commit) || !ObjectExists(repo.get(), target.commit)) {
      if (!options.ref.branch.empty() && SelectRefKind(options.ref) == RefKind::kCommit) {
        return absl::NotFoundError(absl::StrCat(
            "commit '", target.commit, "' not found in branch '", options.ref.branch, "'"));
      }
      return absl::NotFoundError(absl::StrCat("commit '", target.commit, "' not found"));
    }
    {
      git_object* obj = nullptr;
      if (git_object_lookup(&obj, repo.get(), &commit, GIT_OBJECT_ANY) != 0) {
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
      if (!git_oid_equal(&tip, &commit) &&
          git_graph_descendant_of(repo.get(), &tip, &commit) != 1) {
        return absl::NotFoundError(absl::StrCat(
            "commit '", target.commit, "' not found in branch '", options.ref.branch, "'"));
      }
    }
    RETURN_IF_ERROR(CheckoutTree(repo.get(), commit, checkout_dir));
    GitRevision rev = ToRevision(target);
    rev.received_objects = out.received_objects;
    rev.received_bytes = out.received_bytes;
    return rev;
  }
};

}  // namespace

std::unique_ptr<GitFetcher> NewLibgit2Fetcher() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    if (internal::RegisterDeadlineSocketStream() != 0) {
      common::LogError(
          "register libgit2 socket stream failed; git timeouts only apply during transfer");
    }
  });
  return std::make_unique<Libgit2Fetcher>();
}

}  // namespace gitops::source
