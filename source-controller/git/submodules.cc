#include "source-controller/git/submodules.h"

#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "source-controller/git/git_url.h"

namespace gitops::source {
namespace {

bool IsKeyChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-'; }

// A cursor over the config text that tracks the line for messages.
class ConfigLexer {
 public:
  explicit ConfigLexer(absl::string_view text) : text_(text) {}
  bool done() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }
  char next() {
    char c = text_[pos_++];
    if (c == '\n') ++line_;
    return c;
  }
  int line() const { return line_; }
  void SkipBlanks() {
    while (!done() && (peek() == ' ' || peek() == '\t' || peek() == '\r')) next();
  }
  void SkipLine() {
    while (!done() && peek() != '\n') next();
    if (!done()) next();
  }
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(".gitmodules line ", line_, ": ", what));
  }

 private:
  absl::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
};

// Reads "[section]", "[section \"sub\"]" or "[section.sub]" after '['.
absl::Status ReadSectionHeader(ConfigLexer& lex, std::string* section, std::string* subsection,
                               bool* has_subsection) {
  section->clear();
  subsection->clear();
  *has_subsection = false;
  while (!lex.done() && (IsKeyChar(lex.peek()) || lex.peek() == '.')) {
    *section += static_cast<char>(absl::ascii_tolower(static_cast<unsigned char>(lex.next())));
  }
  if (section->empty()) return lex.Error("bad section header");
  size_t dot = section->find('.');
  if (dot != std::string::npos) {  // deprecated [section.sub]
    *subsection = section->substr(dot + 1);
    section->resize(dot);
    *has_subsection = true;
  }
  lex.SkipBlanks();
  if (!lex.done() && lex.peek() == '"') {
    if (*has_subsection) return lex.Error("bad section header");
    lex.next();
    *has_subsection = true;
    while (true) {
      if (lex.done() || lex.peek() == '\n') return lex.Error("unterminated subsection name");
      char c = lex.next();
      if (c == '"') break;
      if (c == '\\') {
        if (lex.done() || lex.peek() == '\n') return lex.Error("bad escape in subsection name");
        c = lex.next();
      }
      *subsection += c;
    }
  }
  if (lex.done() || lex.next() != ']') return lex.Error("bad section header");
  return absl::OkStatus();
}

// Reads a value after '=' up to the end of the line (not consuming it).
absl::StatusOr<std::string> ReadValue(ConfigLexer& lex) {
  std::string value;
  bool quoted = false;
  size_t keep = 0;  // length of value without trailing unquoted blanks
  lex.SkipBlanks();
  while (!lex.done()) {
    char c = lex.peek();
    if (c == '\n') break;
    lex.next();
    if (!quoted && (c == '#' || c == ';')) {
      while (!lex.done() && lex.peek() != '\n') lex.next();
      break;
    }
    if (c == '"') {
      quoted = !quoted;
      keep = value.size();
      continue;
    }
    if (c == '\\') {
      if (lex.done()) return lex.Error("bad escape at end of file");
      char e = lex.next();
      switch (e) {
        case '\n':
          continue;  // line continuation
        case '\r':
          if (!lex.done() && lex.peek() == '\n') {
            lex.next();
            continue;
          }
          return lex.Error("bad escape");
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'b':
          if (!value.empty()) value.pop_back();
          break;
        case '\\':
        case '"':
          value += e;
          break;
        default:
          return lex.Error(absl::StrCat("bad escape '\\", std::string(1, e), "'"));
      }
      keep = value.size();
      continue;
    }
    bool blank = c == ' ' || c == '\t' || c == '\r';
    // As git: unquoted blanks inside a value become single spaces each.
    value += blank && !quoted ? ' ' : c;
    if (quoted || !blank) keep = value.size();
  }
  if (quoted) return lex.Error("unterminated quoted value");
  value.resize(keep);
  return value;
}

}  // namespace

absl::StatusOr<std::vector<SubmoduleConfig>> ParseGitmodules(absl::string_view text) {
  std::vector<SubmoduleConfig> out;
  std::map<std::string, size_t> index;  // name -> position in out
  ConfigLexer lex(text);
  std::string section, subsection;
  bool has_subsection = false;
  bool in_section = false;
  while (!lex.done()) {
    lex.SkipBlanks();
    if (lex.done()) break;
    char c = lex.peek();
    if (c == '\n') {
      lex.next();
      continue;
    }
    if (c == '#' || c == ';') {
      lex.SkipLine();
      continue;
    }
    if (c == '[') {
      lex.next();
      if (absl::Status s = ReadSectionHeader(lex, &section, &subsection, &has_subsection);
          !s.ok()) {
        return s;
      }
      in_section = true;
      continue;  // a key may follow on the same line
    }
    if (!absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      return lex.Error("expected a section, a key or a comment");
    }
    if (!in_section) return lex.Error("key outside of a section");
    std::string key;
    while (!lex.done() && IsKeyChar(lex.peek())) {
      key += static_cast<char>(absl::ascii_tolower(static_cast<unsigned char>(lex.next())));
    }
    lex.SkipBlanks();
    std::string value;
    if (!lex.done() && lex.peek() == '=') {
      lex.next();
      absl::StatusOr<std::string> v = ReadValue(lex);
      if (!v.ok()) return v.status();
      value = *std::move(v);
    } else if (!lex.done() && lex.peek() != '\n' && lex.peek() != '#' && lex.peek() != ';') {
      return lex.Error(absl::StrCat("bad key '", key, "'"));
    } else if (!lex.done() && lex.peek() != '\n') {
      lex.SkipLine();
    }
    if (section != "submodule" || !has_subsection) continue;
    auto [it, inserted] = index.emplace(subsection, out.size());
    if (inserted) out.push_back(SubmoduleConfig{subsection, "", ""});
    SubmoduleConfig& sub = out[it->second];
    if (key == "path") sub.path = value;
    if (key == "url") sub.url = value;
  }
  return out;
}

absl::StatusOr<std::string> ResolveSubmoduleUrl(absl::string_view parent_url,
                                                absl::string_view url) {
  if (url.empty()) return absl::InvalidArgumentError("empty submodule url");
  if (url[0] == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("submodule url \"", RedactUrl(url), "\" starts with '-'"));
  }
  if (!absl::StartsWith(url, "./") && !absl::StartsWith(url, "../")) {
    if (url.find("://") == absl::string_view::npos && url[0] != '/') {
      // scp-like user@host:path (a ':' before any '/').
      size_t colon = url.find(':');
      if (colon != absl::string_view::npos && colon > 0 && url.find('/') > colon) {
        absl::string_view path = url.substr(colon + 1);
        while (absl::ConsumePrefix(&path, "/")) {
        }
        return absl::StrCat("ssh://", url.substr(0, colon), "/", path);
      }
    }
    return std::string(url);
  }
  // Split the parent into "scheme://authority" and its path components.
  absl::string_view parent = parent_url;
  while (parent.size() > 1 && absl::EndsWith(parent, "/")) parent.remove_suffix(1);
  std::string prefix;
  absl::string_view path = parent;
  size_t sep = parent.find("://");
  if (sep != absl::string_view::npos) {
    size_t slash = parent.find('/', sep + 3);
    prefix = std::string(parent.substr(0, slash));
    path = slash == absl::string_view::npos ? absl::string_view() : parent.substr(slash);
  }
  bool absolute = absl::StartsWith(path, "/");
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  absl::string_view rest = url;
  while (true) {
    if (absl::ConsumePrefix(&rest, "./")) continue;
    if (absl::ConsumePrefix(&rest, "../")) {
      if (parts.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("relative submodule url \"", url,
                                                       "\" climbs above the root of \"",
                                                       RedactUrl(parent_url), "\""));
      }
      parts.pop_back();
      continue;
    }
    break;
  }
  while (absl::ConsumePrefix(&rest, "/")) {
  }
  if (!rest.empty()) parts.push_back(std::string(rest));
  std::string joined = absl::StrJoin(parts, "/");
  if (absolute || !prefix.empty()) joined = absl::StrCat("/", joined);
  return absl::StrCat(prefix, joined);
}

}  // namespace gitops::source
