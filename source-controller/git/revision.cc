#include "source-controller/git/revision.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace gitops::source {
namespace {

bool IsHex(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<ParsedRevision> ParseDigest(absl::string_view name, absl::string_view digest,
                                           absl::string_view original) {
  size_t colon = digest.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("malformed revision \"", original, "\""));
  }
  absl::string_view algo = digest.substr(0, colon);
  absl::string_view hex = digest.substr(colon + 1);
  size_t want = algo == "sha1" ? 40 : algo == "sha256" ? 64 : 0;
  if (want == 0 || hex.size() != want || !IsHex(hex)) {
    return absl::InvalidArgumentError(absl::StrCat("malformed revision \"", original, "\""));
  }
  return ParsedRevision{std::string(name), std::string(algo), absl::AsciiStrToLower(hex)};
}

}  // namespace

bool IsFullHexHash(absl::string_view hex) {
  return (hex.size() == 40 || hex.size() == 64) && IsHex(hex);
}

std::string FormatRevision(absl::string_view name, absl::string_view commit_hex) {
  if (name.empty()) return absl::StrCat("sha1:", commit_hex);
  return absl::StrCat(name, "@sha1:", commit_hex);
}

absl::StatusOr<ParsedRevision> ParseRevision(absl::string_view revision) {
  // The name may itself contain '@' (refs can), so split at the last one.
  size_t at = revision.rfind('@');
  if (at != absl::string_view::npos) {
    if (at == 0) {
      return absl::InvalidArgumentError(absl::StrCat("malformed revision \"", revision, "\""));
    }
    return ParseDigest(revision.substr(0, at), revision.substr(at + 1), revision);
  }
  if (absl::StartsWith(revision, "sha1:") || absl::StartsWith(revision, "sha256:")) {
    return ParseDigest("", revision, revision);
  }
  // Legacy "<branch>/<hex>" (Flux v1beta1) or a bare hash.
  size_t slash = revision.rfind('/');
  absl::string_view hex = slash == absl::string_view::npos ? revision : revision.substr(slash + 1);
  if (IsFullHexHash(hex)) {
    return ParsedRevision{
        slash == absl::string_view::npos ? "" : std::string(revision.substr(0, slash)),
        hex.size() == 40 ? "sha1" : "sha256", absl::AsciiStrToLower(hex)};
  }
  return absl::InvalidArgumentError(absl::StrCat("malformed revision \"", revision, "\""));
}

bool SameCommit(absl::string_view a, absl::string_view b) {
  auto pa = ParseRevision(a);
  auto pb = ParseRevision(b);
  return pa.ok() && pb.ok() && pa->algorithm == pb->algorithm && pa->hash == pb->hash;
}

std::string ShortRefName(absl::string_view full_ref) {
  for (absl::string_view prefix : {"refs/heads/", "refs/tags/"}) {
    if (absl::StartsWith(full_ref, prefix)) return std::string(full_ref.substr(prefix.size()));
  }
  return std::string(full_ref);
}

}  // namespace gitops::source
