#include "source-controller/git/semver.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace gitops::source {
namespace {

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Dot-separated identifiers of [0-9A-Za-z-], none empty.
bool ValidIdentifiers(absl::string_view s) {
  if (s.empty()) return false;
  for (absl::string_view part : absl::StrSplit(s, '.')) {
    if (part.empty()) return false;
    for (char c : part) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

bool IsWildcard(absl::string_view s) { return s == "x" || s == "X" || s == "*"; }

int ComparePrerelease(absl::string_view a, absl::string_view b) {
  if (a == b) return 0;
  if (a.empty()) return 1;  // a release ranks above its prereleases
  if (b.empty()) return -1;
  std::vector<absl::string_view> pa = absl::StrSplit(a, '.');
  std::vector<absl::string_view> pb = absl::StrSplit(b, '.');
  for (size_t i = 0; i < pa.size() && i < pb.size(); ++i) {
    bool na = AllDigits(pa[i]), nb = AllDigits(pb[i]);
    if (na && nb) {
      uint64_t x = 0, y = 0;
      (void)absl::SimpleAtoi(pa[i], &x);
      (void)absl::SimpleAtoi(pb[i], &y);
      if (x != y) return x < y ? -1 : 1;
    } else if (na != nb) {
      return na ? -1 : 1;  // numeric identifiers rank lower
    } else if (pa[i] != pb[i]) {
      return pa[i] < pb[i] ? -1 : 1;
    }
  }
  if (pa.size() == pb.size()) return 0;
  return pa.size() < pb.size() ? -1 : 1;
}

// Splits "1.2.3-pre+meta" (after an optional "v") into the numeric part, the
// prerelease and the metadata. False when the separators are malformed.
bool SplitVersion(absl::string_view text, absl::string_view* core, absl::string_view* pre,
                  absl::string_view* meta) {
  *pre = *meta = "";
  size_t plus = text.find('+');
  if (plus != absl::string_view::npos) {
    *meta = text.substr(plus + 1);
    text = text.substr(0, plus);
    if (!ValidIdentifiers(*meta)) return false;
  }
  size_t dash = text.find('-');
  if (dash != absl::string_view::npos) {
    *pre = text.substr(dash + 1);
    text = text.substr(0, dash);
    if (!ValidIdentifiers(*pre)) return false;
  }
  *core = text;
  return true;
}

// Comparison functions, one per operator, with Masterminds v3 semantics.
using Term = SemverConstraint::Term;

bool TildeMatch(const SemVersion& v, const Term& t) {
  if (v < t.version) return false;
  const SemVersion& c = t.version;
  // "~0.0.0" (no wildcard) accepts everything at or above 0.0.0.
  if (c.major() == 0 && c.minor() == 0 && c.patch() == 0 && !t.minor_dirty && !t.patch_dirty) {
    return true;
  }
  if (v.major() != c.major()) return false;
  return t.minor_dirty || v.minor() == c.minor();
}

bool CaretMatch(const SemVersion& v, const Term& t) {
  const SemVersion& c = t.version;
  if (v < c) return false;
  if (c.major() > 0 || t.minor_dirty) return v.major() == c.major();
  if (v.major() > 0) return false;
  if (c.minor() > 0 || t.patch_dirty) return v.minor() == c.minor();
  if (v.minor() > 0) return false;
  return v.patch() == c.patch();
}

bool NotEqualMatch(const SemVersion& v, const Term& t) {
  const SemVersion& c = t.version;
  if (t.dirty) {
    if (c.major() != v.major()) return true;
    if (t.minor_dirty) return false;
    if (c.minor() != v.minor()) return true;
    if (!t.patch_dirty) {
      if (c.patch() != v.patch()) return true;
    } else {
      if (!v.prerelease().empty() || !c.prerelease().empty()) {
        return ComparePrerelease(v.prerelease(), c.prerelease()) != 0;
      }
      return false;
    }
  }
  return !(v == c);
}

bool GreaterMatch(const SemVersion& v, const Term& t) {
  const SemVersion& c = t.version;
  if (!t.dirty) return v.Compare(c) > 0;
  if (v.major() != c.major()) return v.major() > c.major();
  if (t.minor_dirty) return false;                  // ">1" needs 2.0.0 or later
  if (t.patch_dirty) return v.minor() > c.minor();  // ">1.2" needs 1.3.0 or later
  return v.Compare(c) > 0;
}

bool LessEqualMatch(const SemVersion& v, const Term& t) {
  const SemVersion& c = t.version;
  if (!t.dirty) return v.Compare(c) <= 0;
  if (v.major() > c.major()) return false;
  if (v.major() == c.major() && v.minor() > c.minor() && !t.minor_dirty) return false;
  return true;
}

bool TermMatches(const SemVersion& v, const Term& t) {
  // Prereleases only match terms that ask for prereleases.
  if (!v.prerelease().empty() && t.version.prerelease().empty()) return false;
  const std::string& op = t.op;
  if (op.empty() || op == "=") return t.dirty ? TildeMatch(v, t) : v == t.version;
  if (op == "!=") return NotEqualMatch(v, t);
  if (op == ">") return GreaterMatch(v, t);
  if (op == "<") return v.Compare(t.version) < 0;
  if (op == ">=" || op == "=>") return v.Compare(t.version) >= 0;
  if (op == "<=" || op == "=<") return LessEqualMatch(v, t);
  if (op == "~" || op == "~>") return TildeMatch(v, t);
  if (op == "^") return CaretMatch(v, t);
  return false;
}

// Parses one term "<op><version>" with wildcards.
absl::StatusOr<Term> ParseTerm(absl::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("improper constraint: ", text));
  };
  Term t;
  size_t i = 0;
  while (i < text.size() && (text[i] == '=' || text[i] == '!' || text[i] == '<' || text[i] == '>' ||
                             text[i] == '~' || text[i] == '^')) {
    ++i;
  }
  t.op = std::string(text.substr(0, i));
  static const char* const kOps[] = {
      "", "=", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^"};
  bool known = false;
  for (const char* op : kOps) known = known || t.op == op;
  if (!known) return bad();
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(text.substr(i));
  t.orig = std::string(rest);
  absl::ConsumePrefix(&rest, "v");
  absl::string_view core, pre, meta;
  if (!SplitVersion(rest, &core, &pre, &meta)) return bad();
  std::vector<absl::string_view> parts = absl::StrSplit(core, '.');
  if (parts.empty() || parts.size() > 3) return bad();
  for (absl::string_view p : parts) {
    if (!AllDigits(p) && !IsWildcard(p)) return bad();
  }
  std::string normalized;
  if (IsWildcard(parts[0])) {
    t.dirty = true;
    normalized = "0.0.0";
  } else if (parts.size() < 2 || IsWildcard(parts[1])) {
    t.dirty = t.minor_dirty = true;
    normalized = absl::StrCat(parts[0], ".0.0");
  } else if (parts.size() < 3 || IsWildcard(parts[2])) {
    t.dirty = t.patch_dirty = true;
    normalized = absl::StrCat(parts[0], ".", parts[1], ".0");
  } else {
    normalized = std::string(core);
  }
  if (!pre.empty()) absl::StrAppend(&normalized, "-", pre);
  auto version = SemVersion::Parse(normalized);
  if (!version.ok()) return bad();
  t.version = *std::move(version);
  return t;
}

bool IsOperatorOnly(absl::string_view token) {
  if (token.empty()) return false;
  for (char c : token) {
    if (c != '=' && c != '!' && c != '<' && c != '>' && c != '~' && c != '^') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<SemVersion> SemVersion::Parse(absl::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("invalid semantic version \"", text, "\""));
  };
  absl::string_view rest = text;
  absl::ConsumePrefix(&rest, "v");
  absl::string_view core, pre, meta;
  if (!SplitVersion(rest, &core, &pre, &meta)) return bad();
  std::vector<absl::string_view> parts = absl::StrSplit(core, '.');
  if (parts.empty() || parts.size() > 3) return bad();
  SemVersion v;
  uint64_t* fields[3] = {&v.major_, &v.minor_, &v.patch_};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!AllDigits(parts[i]) || !absl::SimpleAtoi(parts[i], fields[i])) return bad();
  }
  // Numeric prerelease identifiers must not have leading zeros (semver 2.0).
  if (!pre.empty()) {
    for (absl::string_view id : absl::StrSplit(pre, '.')) {
      if (AllDigits(id) && id.size() > 1 && id[0] == '0') return bad();
    }
  }
  v.prerelease_ = std::string(pre);
  v.metadata_ = std::string(meta);
  v.original_ = std::string(text);
  return v;
}

int SemVersion::Compare(const SemVersion& o) const {
  if (major_ != o.major_) return major_ < o.major_ ? -1 : 1;
  if (minor_ != o.minor_) return minor_ < o.minor_ ? -1 : 1;
  if (patch_ != o.patch_) return patch_ < o.patch_ ? -1 : 1;
  return ComparePrerelease(prerelease_, o.prerelease_);
}

absl::StatusOr<SemverConstraint> SemverConstraint::Parse(absl::string_view text) {
  SemverConstraint result;
  result.text_ = std::string(text);
  for (absl::string_view group : absl::StrSplit(text, "||")) {
    // Tokens separated by whitespace and commas; an operator may stand apart
    // from its version (">= 1.2"); "a - b" is a hyphen range.
    std::vector<std::string> tokens;
    for (absl::string_view piece :
         absl::StrSplit(group, absl::ByAnyChar(" \t\n,"), absl::SkipEmpty())) {
      tokens.emplace_back(piece);
    }
    if (tokens.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("improper constraint: \"", text, "\" has an empty range"));
    }
    std::vector<std::string> terms;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (IsOperatorOnly(tokens[i])) {
        if (i + 1 >= tokens.size() || IsOperatorOnly(tokens[i + 1]) || tokens[i + 1] == "-") {
          return absl::InvalidArgumentError(absl::StrCat("improper constraint: ", group));
        }
        terms.push_back(tokens[i] + tokens[i + 1]);
        ++i;
      } else if (tokens[i] == "-") {
        // Hyphen range: the previous term (a bare version) is the lower
        // bound, the next token the upper bound, both inclusive.
        if (terms.empty() || i + 1 >= tokens.size() || IsOperatorOnly(terms.back().substr(0, 1)) ||
            IsOperatorOnly(tokens[i + 1].substr(0, 1))) {
          return absl::InvalidArgumentError(absl::StrCat("improper constraint: ", group));
        }
        terms.back() = ">=" + terms.back();
        terms.push_back("<=" + tokens[i + 1]);
        ++i;
      } else {
        terms.push_back(tokens[i]);
      }
    }
    std::vector<Term> ands;
    for (const std::string& term : terms) {
      auto parsed = ParseTerm(term);
      if (!parsed.ok()) return parsed.status();
      ands.push_back(*std::move(parsed));
    }
    result.any_of_.push_back(std::move(ands));
  }
  return result;
}

bool SemverConstraint::Matches(const SemVersion& version) const {
  for (const auto& ands : any_of_) {
    bool all = true;
    for (const Term& t : ands) {
      if (!TermMatches(version, t)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

std::optional<SemVersion> HighestMatching(const SemverConstraint& constraint,
                                          const std::vector<std::string>& tags) {
  std::optional<SemVersion> best;
  for (const std::string& tag : tags) {
    auto v = SemVersion::Parse(tag);
    if (!v.ok() || !constraint.Matches(*v)) continue;
    if (!best || best->Compare(*v) < 0 ||
        (best->Compare(*v) == 0 && best->original() < v->original())) {
      best = *std::move(v);
    }
  }
  return best;
}

}  // namespace gitops::source
