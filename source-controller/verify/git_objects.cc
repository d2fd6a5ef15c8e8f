#include "source-controller/verify/git_objects.h"

#include <git2.h>

#include <memory>
#include <mutex>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace gitops::source {
namespace {

struct RepoDeleter {
  void operator()(git_repository* r) const { git_repository_free(r); }
};
struct ReferenceDeleter {
  void operator()(git_reference* r) const { git_reference_free(r); }
};
struct ObjectDeleter {
  void operator()(git_object* o) const { git_object_free(o); }
};
struct OdbDeleter {
  void operator()(git_odb* o) const { git_odb_free(o); }
};
struct OdbObjectDeleter {
  void operator()(git_odb_object* o) const { git_odb_object_free(o); }
};
struct BufDisposer {
  void operator()(git_buf* b) const { git_buf_dispose(b); }
};
using RepoPtr = std::unique_ptr<git_repository, RepoDeleter>;
using ReferencePtr = std::unique_ptr<git_reference, ReferenceDeleter>;
using ObjectPtr = std::unique_ptr<git_object, ObjectDeleter>;
using OdbPtr = std::unique_ptr<git_odb, OdbDeleter>;
using OdbObjectPtr = std::unique_ptr<git_odb_object, OdbObjectDeleter>;

// Signature armors git recognizes at the start of a line (gpg-interface.c).
constexpr absl::string_view kSignaturePrefixes[] = {
    "-----BEGIN PGP SIGNATURE-----",
    "-----BEGIN PGP MESSAGE-----",
    "-----BEGIN SSH SIGNATURE-----",
    "-----BEGIN SIGNED MESSAGE-----",
};

void InitLibgit2() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

std::string OidHex(const git_oid* oid) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof(hex), oid);
  return hex;
}

std::string LastGitError() {
  const git_error* e = git_error_last();
  return e != nullptr && e->message != nullptr ? e->message : "unknown libgit2 error";
}

absl::StatusOr<RepoPtr> OpenRepo(const std::string& git_dir) {
  InitLibgit2();
  git_repository* raw = nullptr;
  int rc = git_repository_open_ext(&raw, git_dir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
  if (rc == GIT_ENOTFOUND) {
    return absl::NotFoundError(absl::StrCat("git repository '", git_dir, "' not found"));
  }
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("open git repository '", git_dir, "': ", LastGitError()));
  }
  return RepoPtr(raw);
}

// Offset of the last line of `raw` (from `from` on) that starts a signature
// block, or npos.
size_t FindSignatureStart(absl::string_view raw, size_t from) {
  size_t found = absl::string_view::npos;
  size_t line = from;
  while (line < raw.size()) {
    absl::string_view rest = raw.substr(line);
    for (absl::string_view prefix : kSignaturePrefixes) {
      if (absl::StartsWith(rest, prefix)) found = line;
    }
    size_t nl = raw.find('\n', line);
    if (nl == absl::string_view::npos) break;
    line = nl + 1;
  }
  return found;
}

}  // namespace

absl::StatusOr<SignedGitObject> ReadGitCommit(const std::string& git_dir,
                                              const std::string& commit_sha) {
  git_oid oid;
  if (commit_sha.size() != GIT_OID_HEXSZ ||
      git_oid_fromstrn(&oid, commit_sha.data(), commit_sha.size()) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid commit id '", commit_sha, "'"));
  }
  absl::StatusOr<RepoPtr> repo = OpenRepo(git_dir);
  if (!repo.ok()) return repo.status();

  git_object* obj = nullptr;
  if (git_object_lookup(&obj, repo->get(), &oid, GIT_OBJECT_COMMIT) != 0) {
    return absl::NotFoundError(absl::StrCat("commit '", commit_sha, "' not found"));
  }
  ObjectPtr commit(obj);

  SignedGitObject out;
  out.display = commit_sha;
  git_buf signature = GIT_BUF_INIT;
  git_buf signed_data = GIT_BUF_INIT;
  std::unique_ptr<git_buf, BufDisposer> sig_holder(&signature);
  std::unique_ptr<git_buf, BufDisposer> data_holder(&signed_data);
  int rc = git_commit_extract_signature(&signature, &signed_data, repo->get(), &oid, nullptr);
  if (rc == GIT_ENOTFOUND) {
    // Unsigned: the payload is the whole commit, for completeness.
    git_odb* raw_odb = nullptr;
    if (git_repository_odb(&raw_odb, repo->get()) != 0) {
      return absl::InternalError(absl::StrCat("open object database: ", LastGitError()));
    }
    OdbPtr odb(raw_odb);
    git_odb_object* raw_object = nullptr;
    if (git_odb_read(&raw_object, odb.get(), &oid) != 0) {
      return absl::NotFoundError(absl::StrCat("commit '", commit_sha, "' not found"));
    }
    OdbObjectPtr object(raw_object);
    out.payload.assign(static_cast<const char*>(git_odb_object_data(object.get())),
                       git_odb_object_size(object.get()));
    return out;
  }
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("read signature of commit '", commit_sha, "': ", LastGitError()));
  }
  out.signature.assign(signature.ptr, signature.size);
  out.payload.assign(signed_data.ptr, signed_data.size);
  return out;
}

absl::StatusOr<SignedGitObject> ReadGitTag(const std::string& git_dir, const std::string& tag) {
  if (tag.empty()) return absl::InvalidArgumentError("empty tag name");
  std::string refname = absl::StartsWith(tag, "refs/tags/") ? tag : absl::StrCat("refs/tags/", tag);
  std::string short_name = refname.substr(std::string("refs/tags/").size());
  absl::StatusOr<RepoPtr> repo = OpenRepo(git_dir);
  if (!repo.ok()) return repo.status();

  git_reference* raw_ref = nullptr;
  if (git_reference_lookup(&raw_ref, repo->get(), refname.c_str()) != 0) {
    return absl::NotFoundError(absl::StrCat("tag '", short_name, "' not found"));
  }
  ReferencePtr ref(raw_ref);
  git_reference* resolved_raw = nullptr;
  if (git_reference_resolve(&resolved_raw, ref.get()) != 0) {
    return absl::NotFoundError(absl::StrCat("tag '", short_name, "' not found"));
  }
  ReferencePtr resolved(resolved_raw);
  const git_oid* target = git_reference_target(resolved.get());
  if (target == nullptr)
    return absl::NotFoundError(absl::StrCat("tag '", short_name, "' not found"));

  git_object* raw_obj = nullptr;
  if (git_object_lookup(&raw_obj, repo->get(), target, GIT_OBJECT_ANY) != 0) {
    return absl::NotFoundError(
        absl::StrCat("object ", OidHex(target), " of tag '", short_name, "' not found"));
  }
  ObjectPtr obj(raw_obj);

  SignedGitObject out;
  if (git_object_type(obj.get()) != GIT_OBJECT_TAG) {
    // Lightweight: Flux names it by its short ref name alone.
    out.display = short_name;
    out.lightweight_tag = true;
    return out;
  }
  const char* name = git_tag_name(reinterpret_cast<git_tag*>(obj.get()));
  out.display = absl::StrCat(name != nullptr ? name : short_name, "@", OidHex(target));

  git_odb* raw_odb = nullptr;
  if (git_repository_odb(&raw_odb, repo->get()) != 0) {
    return absl::InternalError(absl::StrCat("open object database: ", LastGitError()));
  }
  OdbPtr odb(raw_odb);
  git_odb_object* raw_object = nullptr;
  if (git_odb_read(&raw_object, odb.get(), target) != 0) {
    return absl::NotFoundError(absl::StrCat("tag object ", OidHex(target), " not found"));
  }
  OdbObjectPtr object(raw_object);
  absl::string_view raw(static_cast<const char*>(git_odb_object_data(object.get())),
                        git_odb_object_size(object.get()));
  // The signature sits in the message, after the header's blank line.
  size_t body = raw.find("\n\n");
  size_t start =
      body == absl::string_view::npos ? absl::string_view::npos : FindSignatureStart(raw, body + 2);
  if (start == absl::string_view::npos) {
    out.payload = std::string(raw);
  } else {
    out.payload = std::string(raw.substr(0, start));
    out.signature = std::string(raw.substr(start));
  }
  return out;
}

}  // namespace gitops::source
