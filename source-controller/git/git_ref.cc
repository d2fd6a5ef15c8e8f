#include "source-controller/git/git_ref.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "source-controller/git/revision.h"
#include "source-controller/git/semver.h"

namespace gitops::source {
namespace {

const RemoteRef* Find(const std::vector<RemoteRef>& refs, absl::string_view name) {
  for (const RemoteRef& r : refs) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::string CommitOf(const RemoteRef& r) { return r.peeled.empty() ? r.oid : r.peeled; }

}  // namespace

RefKind SelectRefKind(const GitReference& ref) {
  if (!ref.commit.empty()) return RefKind::kCommit;
  if (!ref.name.empty()) return RefKind::kName;
  if (!ref.semver.empty()) return RefKind::kSemver;
  if (!ref.tag.empty()) return RefKind::kTag;
  return RefKind::kBranch;
}

absl::Status ValidateReference(const GitReference& ref) {
  switch (SelectRefKind(ref)) {
    case RefKind::kCommit:
      if (ref.commit.size() != 40 || !IsFullHexHash(ref.commit)) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid commit '", ref.commit, "': want 40 hex digits"));
      }
      break;
    case RefKind::kSemver: {
      auto c = SemverConstraint::Parse(ref.semver);
      if (!c.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid semver range '", ref.semver, "': ", c.status().message()));
      }
      break;
    }
    case RefKind::kName:
      if (!absl::StartsWith(ref.name, "refs/") && ref.name != "HEAD") {
        return absl::InvalidArgumentError(absl::StrCat(
            "invalid ref name '", ref.name, "': want a full ref such as refs/heads/main"));
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

std::string DescribeReference(const GitReference& ref) {
  switch (SelectRefKind(ref)) {
    case RefKind::kCommit:
      if (!ref.branch.empty()) {
        return absl::StrCat("branch '", ref.branch, "' commit '", ref.commit, "'");
      }
      return absl::StrCat("commit '", ref.commit, "'");
    case RefKind::kName:
      return absl::StrCat("ref '", ref.name, "'");
    case RefKind::kSemver:
      return absl::StrCat("semver '", ref.semver, "'");
    case RefKind::kTag:
      return absl::StrCat("tag '", ref.tag, "'");
    case RefKind::kBranch:
      return absl::StrCat("branch '", ref.branch.empty() ? kDefaultBranch : ref.branch, "'");
  }
  return "";
}

std::vector<RemoteRef> MergePeeled(const std::vector<std::pair<std::string, std::string>>& raw) {
  std::vector<RemoteRef> out;
  for (const auto& [name, oid] : raw) {
    absl::string_view base = name;
    if (absl::ConsumeSuffix(&base, "^{}")) continue;
    out.push_back(RemoteRef{name, oid, ""});
  }
  for (const auto& [name, oid] : raw) {
    absl::string_view base = name;
    if (!absl::ConsumeSuffix(&base, "^{}")) continue;
    for (RemoteRef& r : out) {
      if (r.name == base) r.peeled = oid;
    }
  }
  return out;
}

std::optional<ResolvedRef> ResolveOffline(const GitReference& ref) {
  if (SelectRefKind(ref) != RefKind::kCommit) return std::nullopt;
  ResolvedRef r;
  r.commit = absl::AsciiStrToLower(ref.commit);
  if (!ref.branch.empty()) r.refname = absl::StrCat("refs/heads/", ref.branch);
  r.revision = FormatRevision(ref.branch, r.commit);
  return r;
}

absl::StatusOr<ResolvedRef> ResolveRef(const GitReference& ref,
                                       const std::vector<RemoteRef>& refs) {
  if (absl::Status s = ValidateReference(ref); !s.ok()) return s;
  ResolvedRef out;
  switch (SelectRefKind(ref)) {
    case RefKind::kCommit: {
      out = *ResolveOffline(ref);
      if (!ref.branch.empty()) {
        const RemoteRef* r = Find(refs, out.refname);
        if (r == nullptr) {
          return absl::NotFoundError(absl::StrCat("branch '", ref.branch, "' not found"));
        }
        out.object_oid = r->oid;
      }
      return out;
    }
    case RefKind::kName: {
      const RemoteRef* r = Find(refs, ref.name);
      if (r == nullptr) return absl::NotFoundError(absl::StrCat("ref '", ref.name, "' not found"));
      out.refname = ref.name;
      out.object_oid = r->oid;
      out.commit = CommitOf(*r);
      out.revision = FormatRevision(ref.name, out.commit);
      return out;
    }
    case RefKind::kSemver: {
      auto constraint = SemverConstraint::Parse(ref.semver);
      std::vector<std::string> tags;
      for (const RemoteRef& r : refs) {
        absl::string_view name = r.name;
        if (absl::ConsumePrefix(&name, "refs/tags/")) tags.emplace_back(name);
      }
      auto best = HighestMatching(*constraint, tags);
      if (!best) {
        return absl::NotFoundError(absl::StrCat("no tag matches semver range '", ref.semver, "' (",
                                                tags.size(), " tags checked)"));
      }
      out.refname = absl::StrCat("refs/tags/", best->original());
      const RemoteRef* r = Find(refs, out.refname);
      out.object_oid = r->oid;
      out.commit = CommitOf(*r);
      out.revision = FormatRevision(best->original(), out.commit);
      return out;
    }
    case RefKind::kTag: {
      out.refname = absl::StrCat("refs/tags/", ref.tag);
      const RemoteRef* r = Find(refs, out.refname);
      if (r == nullptr) return absl::NotFoundError(absl::StrCat("tag '", ref.tag, "' not found"));
      out.object_oid = r->oid;
      out.commit = CommitOf(*r);
      out.revision = FormatRevision(ref.tag, out.commit);
      return out;
    }
    case RefKind::kBranch: {
      std::string branch = ref.branch.empty() ? kDefaultBranch : ref.branch;
      out.refname = absl::StrCat("refs/heads/", branch);
      const RemoteRef* r = Find(refs, out.refname);
      if (r == nullptr) return absl::NotFoundError(absl::StrCat("branch '", branch, "' not found"));
      out.object_oid = r->oid;
      out.commit = r->oid;
      out.revision = FormatRevision(branch, out.commit);
      return out;
    }
  }
  return absl::InternalError("unreachable");
}

}  // namespace gitops::source
