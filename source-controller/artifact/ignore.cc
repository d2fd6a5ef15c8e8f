#include "source-controller/artifact/ignore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/fs/confined.h"
#include "common/status/status_macros.h"

namespace gitops::source {
namespace {

// ---------------------------------------------------------------------------
// Glob matching for one path component, following Go's filepath.Match.

// Decodes one UTF-8 rune at s[*i] and advances *i. Invalid bytes decode as
// U+FFFD of width 1, as Go's utf8.DecodeRuneInString does.
char32_t DecodeRune(absl::string_view s, size_t* i) {
  const unsigned char c = static_cast<unsigned char>(s[*i]);
  auto cont = [&](size_t k) {
    return *i + k < s.size() && (static_cast<unsigned char>(s[*i + k]) & 0xC0) == 0x80;
  };
  auto at = [&](size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[*i + k])); };
  if (c < 0x80) {
    *i += 1;
    return c;
  }
  if (c >= 0xC2 && c <= 0xDF && cont(1)) {
    char32_t r = ((c & 0x1F) << 6) | (at(1) & 0x3F);
    *i += 2;
    return r;
  }
  if (c >= 0xE0 && c <= 0xEF && cont(1) && cont(2)) {
    char32_t r = ((c & 0x0F) << 12) | ((at(1) & 0x3F) << 6) | (at(2) & 0x3F);
    if (r >= 0x800 && (r < 0xD800 || r > 0xDFFF)) {
      *i += 3;
      return r;
    }
  }
  if (c >= 0xF0 && c <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    char32_t r =
        ((c & 0x07) << 18) | ((at(1) & 0x3F) << 12) | ((at(2) & 0x3F) << 6) | (at(3) & 0x3F);
    if (r >= 0x10000 && r <= 0x10FFFF) {
      *i += 4;
      return r;
    }
  }
  *i += 1;
  return 0xFFFD;
}

using internal::GlobToken;

// Reads one possibly escaped rune of a class; false when malformed.
bool ClassRune(absl::string_view p, size_t* i, char32_t* out) {
  if (*i >= p.size() || p[*i] == '-' || p[*i] == ']') return false;
  if (p[*i] == '\\') {
    ++*i;
    if (*i >= p.size()) return false;
  }
  *out = DecodeRune(p, i);
  return true;
}

// Parses a pattern into tokens; false when malformed (Go's ErrBadPattern).
bool ParseGlob(absl::string_view p, std::vector<GlobToken>* tokens) {
  size_t i = 0;
  while (i < p.size()) {
    GlobToken t;
    t.kind = GlobToken::kLiteral;
    switch (p[i]) {
      case '*':
        t.kind = GlobToken::kStar;
        ++i;
        break;
      case '?':
        t.kind = GlobToken::kAny;
        ++i;
        break;
      case '\\':
        ++i;
        if (i >= p.size()) return false;
        t.rune = DecodeRune(p, &i);
        break;
      case '[': {
        t.kind = GlobToken::kClass;
        ++i;
        if (i < p.size() && p[i] == '^') {
          t.negated = true;
          ++i;
        }
        while (true) {
          if (i < p.size() && p[i] == ']' && !t.ranges.empty()) {
            ++i;
            break;
          }
          char32_t lo, hi;
          if (!ClassRune(p, &i, &lo)) return false;
          hi = lo;
          if (i < p.size() && p[i] == '-') {
            ++i;
            if (!ClassRune(p, &i, &hi)) return false;
          }
          t.ranges.emplace_back(lo, hi);
        }
        break;
      }
      default:
        t.rune = DecodeRune(p, &i);
        break;
    }
    tokens->push_back(std::move(t));
  }
  return true;
}

bool TokenMatches(const GlobToken& t, char32_t r) {
  switch (t.kind) {
    case GlobToken::kLiteral:
      return t.rune == r;
    case GlobToken::kAny:
      return true;
    case GlobToken::kClass: {
      bool in = false;
      for (const auto& [lo, hi] : t.ranges) {
        if (lo <= r && r <= hi) in = true;
      }
      return in != t.negated;
    }
    case GlobToken::kStar:
      break;
  }
  return false;
}

// Wildcard matching with backtracking to the last star, rune by rune,
// without allocating.
bool MatchTokens(const std::vector<GlobToken>& tokens, absl::string_view s) {
  size_t ti = 0, si = 0;
  size_t star_t = std::string::npos, star_s = 0;
  while (si < s.size()) {
    if (ti < tokens.size() && tokens[ti].kind == GlobToken::kStar) {
      star_t = ti++;
      star_s = si;
      continue;
    }
    if (ti < tokens.size()) {
      size_t next = si;
      const char32_t r = DecodeRune(s, &next);
      if (TokenMatches(tokens[ti], r)) {
        ++ti;
        si = next;
        continue;
      }
    }
    if (star_t == std::string::npos) return false;
    ti = star_t + 1;
    DecodeRune(s, &star_s);  // the star takes one more rune
    si = star_s;
  }
  while (ti < tokens.size() && tokens[ti].kind == GlobToken::kStar) ++ti;
  return ti == tokens.size();
}

std::vector<std::string> SplitPath(absl::string_view path) {
  std::vector<std::string> out;
  if (path.empty()) return out;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (!part.empty()) out.emplace_back(part);
  }
  return out;
}

void AppendList(IgnoreMatcher& m, absl::string_view comma_list) {
  for (absl::string_view p : absl::StrSplit(comma_list, ',')) m.AddPatterns(p);
}

// Depth-first search for .sourceignore files, in the order Flux's
// sourceignore.LoadIgnorePatterns reads them (os.ReadDir is name-sorted).
// Directories are entered with openat(O_NOFOLLOW), so the walk never leaves
// the checkout through a symlink; ignore files are read only when they are
// regular files (a committed symlink to /proc/self/pagemap, a FIFO or a
// secret elsewhere is refused, not followed), up to a size bound.
absl::Status LoadSourceIgnoreFiles(int dir_fd, const std::string& rel, IgnoreMatcher& out,
                                   const IgnoreLoadOptions& options) {
  if (absl::Now() > options.deadline) {
    return absl::DeadlineExceededError(absl::StrCat(
        "reading ", kSourceIgnoreFile, " files took longer than spec.timeout (stopped at '",
        rel.empty() ? "." : rel, "')"));
  }
  const std::string file(kSourceIgnoreFile);
  const std::string display = rel.empty() ? file : absl::StrCat(rel, "/", file);
  struct stat st;
  if (fstatat(dir_fd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    // A directory of that name holds no patterns (Flux skips it too).
    if (!S_ISDIR(st.st_mode)) {
      auto text = common::ReadRegularFileAt(dir_fd, file, options.max_file_bytes, display);
      if (!text.ok()) {
        const absl::Status& e = text.status();
        if (!absl::IsFailedPrecondition(e) && !absl::IsResourceExhausted(e)) return e;
        return absl::Status(
            e.code(), absl::StrCat(e.message(), "; ignore files must be regular files in the ",
                                   "repository, of at most ", options.max_file_bytes, " bytes"));
      }
      out.AddPatterns(*text, rel);
    }
  } else if (errno != ENOENT) {
    return absl::InternalError(absl::StrCat("stat ", display, ": ", strerror(errno)));
  }

  int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  DIR* d = fd < 0 ? nullptr : fdopendir(fd);
  if (d == nullptr) {
    if (fd >= 0) close(fd);
    return absl::InternalError(
        absl::StrCat("read directory '", rel.empty() ? "." : rel, "': ", strerror(errno)));
  }
  std::vector<std::string> subdirs;
  while (struct dirent* e = readdir(d)) {
    absl::string_view name = e->d_name;
    if (name == "." || name == ".." || name == ".git") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat sub;
      is_dir = fstatat(dirfd(d), e->d_name, &sub, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sub.st_mode);
    }
    if (is_dir) subdirs.emplace_back(name);
  }
  closedir(d);
  std::sort(subdirs.begin(), subdirs.end());
  for (const std::string& sub : subdirs) {
    const std::string sub_rel = rel.empty() ? sub : rel + "/" + sub;
    common::UniqueFd sub_fd(
        openat(dir_fd, sub.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub_fd.valid()) {
      return absl::InternalError(absl::StrCat("open directory '", sub_rel, "': ", strerror(errno)));
    }
    RETURN_IF_ERROR(LoadSourceIgnoreFiles(sub_fd.get(), sub_rel, out, options));
  }
  return absl::OkStatus();
}

}  // namespace

bool GlobMatch(absl::string_view pattern, absl::string_view name) {
  std::vector<GlobToken> tokens;
  if (!ParseGlob(pattern, &tokens)) return false;
  return MatchTokens(tokens, name);
}

bool IgnoreMatcher::PartMatches(const Part& part, absl::string_view name) {
  if (!part.valid) return false;
  if (part.literal) return part.text == name;
  if (part.star_suffix) return absl::EndsWith(name, absl::string_view(part.text).substr(1));
  return MatchTokens(part.tokens, name);
}

void IgnoreMatcher::AddPatterns(absl::string_view text, absl::string_view domain) {
  const std::vector<std::string> domain_parts = SplitPath(domain);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    // bufio.ScanLines drops a trailing CR.
    absl::ConsumeSuffix(&line, "\r");
    if (absl::StartsWith(line, "#")) continue;
    if (absl::StripAsciiWhitespace(line).empty()) continue;

    Pattern p;
    p.domain = domain_parts;
    if (absl::ConsumePrefix(&line, "!")) p.inclusion = true;
    // Trailing spaces are dropped unless escaped with a backslash.
    if (!absl::EndsWith(line, "\\ ")) {
      while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
    }
    if (absl::ConsumeSuffix(&line, "/")) p.dir_only = true;
    p.is_glob = absl::StrContains(line, '/');
    for (absl::string_view text : absl::StrSplit(line, '/')) {
      Part part;
      part.text = std::string(text);
      part.literal = text.find_first_of("*?[\\") == absl::string_view::npos;
      if (!part.literal) part.valid = ParseGlob(text, &part.tokens);
      part.star_suffix = !part.literal && text.size() > 1 && text[0] == '*' &&
                         text.find_first_of("*?[\\", 1) == absl::string_view::npos;
      p.parts.push_back(std::move(part));
    }
    has_negations_ = has_negations_ || p.inclusion;
    patterns_.push_back(std::move(p));
  }
}

IgnoreMatcher::Result IgnoreMatcher::Match(const Pattern& p, const absl::string_view* full_path,
                                           size_t full_n, bool is_dir) {
  if (full_n <= p.domain.size()) return Result::kNoMatch;
  for (size_t i = 0; i < p.domain.size(); ++i) {
    if (full_path[i] != p.domain[i]) return Result::kNoMatch;
  }
  const size_t base = p.domain.size();
  const size_t n = full_n - base;
  auto at = [&](size_t i) { return full_path[base + i]; };
  bool matched = false;

  if (!p.is_glob) {
    // A pattern without '/' matches any component; a directory-only pattern
    // does not match a non-directory as the last component.
    for (size_t i = 0; i < n; ++i) {
      if (!PartMatches(p.parts[0], at(i))) continue;
      matched = !(p.dir_only && !is_dir && i == n - 1);
      break;
    }
  } else {
    // Anchored pattern: its components match a prefix of the path, with "**"
    // skipping to the first component that matches the next one.
    size_t pos = 0;
    bool can_traverse = false;
    bool failed = false;
    for (size_t k = 0; k < p.parts.size() && !failed; ++k) {
      const Part& part = p.parts[k];
      if (part.text.empty()) {
        can_traverse = false;
        continue;
      }
      if (part.text == "**") {
        if (k == p.parts.size() - 1) break;
        can_traverse = true;
        continue;
      }
      if (part.text.find("**") != std::string::npos || pos >= n) {
        failed = true;
        break;
      }
      if (can_traverse) {
        can_traverse = false;
        while (pos < n) {
          absl::string_view e = at(pos++);
          if (PartMatches(part, e)) {
            matched = true;
            break;
          }
          if (pos == n) matched = false;
        }
      } else {
        if (!PartMatches(part, at(pos))) {
          failed = true;
          break;
        }
        matched = true;
        ++pos;
      }
    }
    if (failed) matched = false;
    if (matched && p.dir_only && !is_dir && pos == n) matched = false;
  }
  if (!matched) return Result::kNoMatch;
  return p.inclusion ? Result::kInclude : Result::kExclude;
}

void IgnoreMatcher::Append(const IgnoreMatcher& other) {
  patterns_.insert(patterns_.end(), other.patterns_.begin(), other.patterns_.end());
  has_negations_ = has_negations_ || other.has_negations_;
}

bool IgnoreMatcher::Excluded(absl::string_view path, bool is_dir) const {
  absl::InlinedVector<absl::string_view, 16> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    parts.push_back(part);
  }
  if (parts.empty()) return false;
  for (auto it = patterns_.rbegin(); it != patterns_.rend(); ++it) {
    Result r = Match(*it, parts.data(), parts.size(), is_dir);
    if (r != Result::kNoMatch) return r == Result::kExclude;
  }
  return false;
}

absl::StatusOr<IgnoreMatcher> LoadIgnoreRules(const std::string& root,
                                              const std::optional<std::string>& spec_ignore) {
  return LoadIgnoreRules(root, spec_ignore, IgnoreLoadOptions{});
}

absl::StatusOr<IgnoreMatcher> LoadIgnoreRules(const std::string& root,
                                              const std::optional<std::string>& spec_ignore,
                                              const IgnoreLoadOptions& options) {
  common::UniqueFd root_fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return absl::NotFoundError(absl::StrCat("invalid dir path: ", root));
  IgnoreMatcher own;
  RETURN_IF_ERROR(common::Annotate(LoadSourceIgnoreFiles(root_fd.get(), "", own, options),
                                   "load .sourceignore files"));
  if (spec_ignore.has_value()) own.AddPatterns(*spec_ignore);

  // Flux (storage.SourceIgnoreFilter): VCS patterns always; the other
  // defaults only when the source has no patterns of its own.
  IgnoreMatcher rules;
  AppendList(rules, kExcludeVcs);
  if (own.size() == 0) {
    AppendList(rules, kExcludeExt);
    AppendList(rules, kExcludeCi);
    AppendList(rules, kExcludeExtra);
    return rules;
  }
  rules.Append(own);
  return rules;
}

}  // namespace gitops::source
