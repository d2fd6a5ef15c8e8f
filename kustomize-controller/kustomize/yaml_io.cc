#include "kustomize-controller/kustomize/yaml_io.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace gitops::kustomize {
namespace {

using Kind = Node::Kind;

// ---------------------------------------------------------------------------
// Scalar resolution.

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string StripUnderscores(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c != '_') out += c;
  }
  return out;
}

// Go's strconv.ParseInt(s, 0, 64) / ParseUint(s, 0, 64). Returns false on
// syntax error or overflow. `text` receives the decimal form.
bool ParseGoInt(const std::string& s, std::string* text) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    neg = s[i] == '-';
    ++i;
  }
  if (i >= s.size()) return false;
  int base = 10;
  if (s[i] == '0' && i + 1 < s.size()) {
    char p = s[i + 1];
    if (p == 'x' || p == 'X') {
      base = 16;
      i += 2;
    } else if (p == 'o' || p == 'O') {
      base = 8;
      i += 2;
    } else if (p == 'b' || p == 'B') {
      base = 2;
      i += 2;
    } else {
      base = 8;
      i += 1;
    }
  }
  if (i >= s.size()) return false;
  unsigned __int128 v = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return false;
    }
    if (d >= base) return false;
    v = v * base + d;
    if (v > static_cast<unsigned __int128>(UINT64_MAX)) return false;
  }
  if (neg) {
    if (v > static_cast<unsigned __int128>(INT64_MAX) + 1) return false;
    if (v == 0) {
      *text = "0";
    } else {
      *text = "-" + std::to_string(static_cast<uint64_t>(v));
    }
    return true;
  }
  *text = std::to_string(static_cast<uint64_t>(v));
  return true;
}

// ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
bool IsYamlStyleFloat(absl::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
  } else {
    size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && IsDigit(s[i])) ++i;
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
  }
  return i == s.size();
}

// Go's strconv.FormatFloat(f, 'g', -1, 64).
std::string GoFormatG(double f) {
  if (std::isnan(f)) return ".nan";
  if (std::isinf(f)) return f > 0 ? ".inf" : "-.inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  // sci looks like "-1.2345e+06".
  bool neg = false;
  size_t p = 0;
  if (sci[0] == '-') {
    neg = true;
    p = 1;
  }
  size_t epos = sci.find('e');
  std::string digits;
  for (size_t i = p; i < epos; ++i) {
    if (sci[i] != '.') digits += sci[i];
  }
  int exp = std::atoi(sci.c_str() + epos + 1);
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 6) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exp < 0 ? "e-" : "e+";
    int a = std::abs(exp);
    if (a < 10) out += "0";
    out += std::to_string(a);
    return out;
  }
  if (exp < 0) {
    out += "0.";
    out.append(static_cast<size_t>(-exp - 1), '0');
    out += digits;
  } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
    out += digits;
    out.append(exp + 1 - digits.size(), '0');
  } else {
    out += digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
  }
  return out;
}

// The value after kustomize's JSON round trip and go-yaml v2's re-reading:
// integral floats that fit 64 bits become ints, the rest prints as Go's
// FormatFloat(f, 'g', -1).
Node FloatNode(double f) {
  if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 1e21) {
    if (f >= -9.2233720368547758e18 && f < 9.2233720368547758e18) {
      return Node::Scalar(Kind::kInt, std::to_string(static_cast<int64_t>(f)));
    }
    if (f >= 0 && f < 1.8446744073709552e19) {
      return Node::Scalar(Kind::kInt, std::to_string(static_cast<uint64_t>(f)));
    }
  }
  std::string g = GoFormatG(f);
  return Node::Scalar(Kind::kFloat, g);
}

// Plain dates and timestamps become RFC 3339 strings (kustomize decodes
// them to time.Time and JSON-encodes them).
bool ResolveTimestamp(absl::string_view s, std::string* out) {
  size_t i = 0;
  auto digits = [&](size_t min, size_t max, int* v) {
    size_t start = i;
    int val = 0;
    while (i < s.size() && IsDigit(s[i]) && i - start < max) val = val * 10 + (s[i++] - '0');
    *v = val;
    return i - start >= min;
  };
  int year, month, day;
  if (!digits(4, 4, &year) || i >= s.size() || s[i] != '-') return false;
  ++i;
  if (!digits(1, 2, &month) || i >= s.size() || s[i] != '-') return false;
  ++i;
  if (!digits(1, 2, &day)) return false;
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  char date[96];
  if (i == s.size()) {
    snprintf(date, sizeof(date), "%04d-%02d-%02dT00:00:00Z", year, month, day);
    *out = date;
    return true;
  }
  bool space = s[i] == ' ';
  if (s[i] != 'T' && s[i] != 't' && !space) return false;
  ++i;
  int hh, mm, ss;
  if (!digits(1, 2, &hh) || i >= s.size() || s[i] != ':') return false;
  ++i;
  if (!digits(1, 2, &mm) || i >= s.size() || s[i] != ':') return false;
  ++i;
  if (!digits(1, 2, &ss)) return false;
  if (hh > 23 || mm > 59 || ss > 59) return false;
  std::string frac;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && IsDigit(s[i])) frac += s[i++];
    if (i == start || frac.size() > 9) return false;
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
  }
  std::string zone;
  if (space) {
    if (i != s.size()) return false;
    zone = "Z";
  } else {
    if (i >= s.size()) return false;
    if (s[i] == 'Z') {
      zone = "Z";
      ++i;
    } else if (s[i] == '+' || s[i] == '-') {
      zone = std::string(s.substr(i, 6));
      if (zone.size() != 6 || !IsDigit(zone[1]) || !IsDigit(zone[2]) || zone[3] != ':' ||
          !IsDigit(zone[4]) || !IsDigit(zone[5])) {
        return false;
      }
      if (zone == "+00:00" || zone == "-00:00") zone = "Z";
      i += 6;
    } else {
      return false;
    }
    if (i != s.size()) return false;
  }
  snprintf(date, sizeof(date), "%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hh, mm, ss);
  *out = date;
  if (!frac.empty()) *out += "." + frac;
  *out += zone;
  return true;
}

// Resolves a plain (unquoted, untagged) scalar as kustomize's reader does,
// keeping the source text.
Node ResolvePlain(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    return Node::Scalar(Kind::kNull, s);
  }
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE") {
    return Node::Scalar(Kind::kBool, s);
  }
  char c = s[0];
  if (c == '.') {
    if (s == ".inf" || s == ".Inf" || s == ".INF" || s == ".nan" || s == ".NaN" || s == ".NAN") {
      return Node::Scalar(Kind::kFloat, s);
    }
    if (IsYamlStyleFloat(s)) return Node::Scalar(Kind::kFloat, s);
    return Node::String(s);
  }
  if (c == '+' || c == '-' || IsDigit(c)) {
    if (s == "+.inf" || s == "+.Inf" || s == "+.INF" || s == "-.inf" || s == "-.Inf" ||
        s == "-.INF") {
      return Node::Scalar(Kind::kFloat, s);
    }
    std::string ts;
    if (ResolveTimestamp(s, &ts)) return Node::Scalar(Kind::kTimestamp, s);
    std::string plain = StripUnderscores(s);
    std::string text;
    if (ParseGoInt(plain, &text)) return Node::Scalar(Kind::kInt, s);
    if (IsYamlStyleFloat(plain)) return Node::Scalar(Kind::kFloat, s);
  }
  return Node::String(s);
}

// ---------------------------------------------------------------------------
// Loading with yaml-cpp.

bool V2ResolvesAsString(const std::string& s);

struct Converter {
  size_t budget;
  std::string error;

  bool Convert(const YAML::Node& in, Node* out, int depth) {
    if (depth > 500) {
      error = "document nested too deeply";
      return false;
    }
    if (budget == 0) {
      error = "document too large (alias expansion?)";
      return false;
    }
    --budget;
    switch (in.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        *out = Node::Null();
        return true;
      case YAML::NodeType::Scalar: {
        const std::string& tag = in.Tag();
        if (tag == "?") {
          *out = ResolvePlain(in.Scalar());
          if (out->IsString()) {
            out->set_plain(true);
            if (!V2ResolvesAsString(out->scalar())) out->set_yaml11_non_string(true);
          }
        } else if (tag == "!" || tag == "tag:yaml.org,2002:str") {
          *out = Node::String(in.Scalar());
        } else if (tag == "tag:yaml.org,2002:null") {
          *out = Node::Null();
        } else {
          *out = ResolvePlain(in.Scalar());
          if (out->IsNull() && !in.Scalar().empty()) *out = Node::String(in.Scalar());
        }
        return true;
      }
      case YAML::NodeType::Sequence: {
        *out = Node::Seq();
        out->items().reserve(in.size());
        for (const YAML::Node& item : in) {
          out->items().emplace_back();
          if (!Convert(item, &out->items().back(), depth + 1)) return false;
        }
        return true;
      }
      case YAML::NodeType::Map: {
        *out = Node::Map();
        std::vector<YAML::Node> merges;
        for (const auto& kv : in) {
          const YAML::Node& k = kv.first;
          if (!k.IsScalar() && !k.IsNull()) {
            error = "mapping keys must be scalars";
            return false;
          }
          std::string key = k.IsNull() ? "null" : k.Scalar();
          if (key == "<<" && k.Tag() == "?") {
            merges.push_back(kv.second);
            continue;
          }
          if (out->Find(key) != nullptr) {
            error = absl::StrCat("mapping key \"", key, "\" already defined");
            return false;
          }
          out->entries().emplace_back(key, Node());
          if (!Convert(kv.second, &out->entries().back().second, depth + 1)) return false;
        }
        for (const YAML::Node& m : merges) {
          Node merged;
          if (!Convert(m, &merged, depth + 1)) return false;
          std::vector<Node> sources;
          if (merged.IsMap()) {
            sources.push_back(merged);
          } else if (merged.IsSeq()) {
            sources = merged.items();
          }
          for (const Node& src : sources) {
            for (const auto& e : src.entries()) {
              if (out->Find(e.first) == nullptr) out->entries().push_back(e);
            }
          }
        }
        return true;
      }
    }
    return true;
  }
};

struct RawDocument {
  std::string text;
  int first_line;  // 1-based line of the document's first line.
};

bool IsDocStart(absl::string_view line) {
  return line.size() >= 3 && line.substr(0, 3) == "---" &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
}

bool IsDocEnd(absl::string_view line) {
  return line.size() >= 3 && line.substr(0, 3) == "..." &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
}

std::vector<RawDocument> SplitDocuments(absl::string_view text) {
  std::vector<RawDocument> docs;
  docs.push_back({"", 1});
  bool ended = false;
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    absl::string_view line =
        nl == absl::string_view::npos ? text.substr(pos) : text.substr(pos, nl - pos);
    pos = nl == absl::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (IsDocStart(line)) {
      docs.push_back({"", line_no});
      ended = false;
      absl::string_view rest = line.substr(3);
      docs.back().text.append(rest.data(), rest.size());
      docs.back().text += '\n';
      continue;
    }
    if (IsDocEnd(line)) {
      ended = true;
      continue;
    }
    if (ended) continue;
    docs.back().text.append(line.data(), line.size());
    docs.back().text += '\n';
  }
  return docs;
}

// True when the document's only content is an explicit or implicit null.
bool IsNullText(absl::string_view s) {
  std::string content;
  for (absl::string_view line : absl::StrSplit(s, '\n')) {
    size_t hash = line.find('#');
    if (hash != absl::string_view::npos &&
        (hash == 0 || line[hash - 1] == ' ' || line[hash - 1] == '\t')) {
      line = line.substr(0, hash);
    }
    for (char c : line) {
      if (c != ' ' && c != '\t' && c != '\r') content += c;
    }
  }
  return content.empty() || content == "~" || content == "null" || content == "Null" ||
         content == "NULL" || content == "!!null" || content == "''" || content == "\"\"";
}

absl::StatusOr<Node> LoadOne(const RawDocument& doc, size_t* budget) {
  Converter conv{*budget, ""};
  Node out;
  try {
    YAML::Node root = YAML::Load(doc.text);
    if (root.IsNull() && !IsNullText(doc.text)) {
      // yaml-cpp reads stray flow indicators (",", "]") as an empty
      // document; go-yaml rejects them.
      return absl::InvalidArgumentError(
          absl::StrCat("yaml: line ", doc.first_line, ": did not find expected node content"));
    }
    if (!conv.Convert(root, &out, 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("yaml: document at line ", doc.first_line, ": ", conv.error));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("yaml: line ", doc.first_line + std::max(0, e.mark.line), ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("yaml: ", e.what()));
  }
  *budget = conv.budget;
  return out;
}

bool IsBlankText(absl::string_view s) {
  // A document made only of whitespace and comments.
  for (absl::string_view line : absl::StrSplit(s, '\n')) {
    size_t i = line.find_first_not_of(" \t\r");
    if (i == absl::string_view::npos) continue;
    if (line[i] == '#') continue;
    return false;
  }
  return true;
}

std::string Canonical(const Node& n) {
  const std::string& raw = n.scalar();
  switch (n.kind()) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return !raw.empty() && (raw[0] == 't' || raw[0] == 'T') ? "true" : "false";
    case Kind::kInt:
    case Kind::kFloat: {
      if (raw == ".inf" || raw == ".Inf" || raw == ".INF" || raw == "+.inf" || raw == "+.Inf" ||
          raw == "+.INF") {
        return ".inf";
      }
      if (raw == "-.inf" || raw == "-.Inf" || raw == "-.INF") return "-.inf";
      if (raw == ".nan" || raw == ".NaN" || raw == ".NAN") return ".nan";
      std::string plain = StripUnderscores(raw);
      std::string text;
      if (ParseGoInt(plain, &text)) return text;
      if (IsYamlStyleFloat(plain)) return FloatNode(std::strtod(plain.c_str(), nullptr)).scalar();
      return raw;
    }
    case Kind::kTimestamp: {
      std::string ts;
      if (ResolveTimestamp(raw, &ts)) return ts;
      return raw;
    }
    default:
      return raw;
  }
}

// ---------------------------------------------------------------------------
// Emitting like go-yaml v2.

int Utf8Width(unsigned char c) {
  if ((c & 0x80) == 0) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;
}

bool IsBreakAt(const std::string& s, size_t i) {
  if (i >= s.size()) return false;
  unsigned char c = s[i];
  if (c == '\r' || c == '\n') return true;
  if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x85) return true;
  if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
      (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
       static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
    return true;
  }
  return false;
}

bool IsSpaceAt(const std::string& s, size_t i) { return i < s.size() && s[i] == ' '; }
bool IsBlankAt(const std::string& s, size_t i) {
  return i < s.size() && (s[i] == ' ' || s[i] == '\t');
}

bool IsPrintableAt(const std::string& s, size_t i) {
  auto b = [&](size_t k) -> unsigned char { return k < s.size() ? s[k] : 0; };
  unsigned char c = b(i);
  return c == 0x0A || (c >= 0x20 && c <= 0x7E) || (c == 0xC2 && b(i + 1) >= 0xA0) ||
         (c > 0xC2 && c < 0xED) || (c == 0xED && b(i + 1) < 0xA0) || c == 0xEE ||
         (c == 0xEF && !(b(i + 1) == 0xBB && b(i + 2) == 0xBF) &&
          !(b(i + 1) == 0xBF && (b(i + 2) == 0xBE || b(i + 2) == 0xBF)));
}

// go-yaml's is_bom ignores the position: it looks at the start of the value,
// so a value that starts with a BOM has every character escaped.
bool IsBomAt(const std::string& s, size_t /*i*/) {
  return s.size() >= 3 && static_cast<unsigned char>(s[0]) == 0xEF &&
         static_cast<unsigned char>(s[1]) == 0xBB && static_cast<unsigned char>(s[2]) == 0xBF;
}

// Would go-yaml v2 read this plain text back as a string?
bool V2ResolvesAsString(const std::string& s) {
  if (s.empty()) return false;
  static const char* const kSpecial[] = {
      "y",    "Y",    "yes",   "Yes",   "YES",   "true",  "True",  "TRUE",  "on",    "On",
      "ON",   "n",    "N",     "no",    "No",    "NO",    "false", "False", "FALSE", "off",
      "Off",  "OFF",  "~",     "null",  "Null",  "NULL",  ".nan",  ".NaN",  ".NAN",  ".inf",
      ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<"};
  char c = s[0];
  bool hinted = c == '+' || c == '-' || c == '.' || IsDigit(c) || strchr("yYnNtTfFoO~", c);
  if (!hinted) return true;
  for (const char* sp : kSpecial) {
    if (s == sp) return false;
  }
  if (c == '.') return !IsYamlStyleFloat(s);
  if (c == '+' || c == '-' || IsDigit(c)) {
    std::string ts;
    if (ResolveTimestamp(s, &ts)) return false;
    std::string plain = StripUnderscores(s);
    std::string text;
    if (ParseGoInt(plain, &text)) return false;
    if (IsYamlStyleFloat(plain)) return false;
  }
  return true;
}

// ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
bool IsBase60Float(const std::string& s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i >= s.size() || !IsDigit(s[i])) return false;
  ++i;
  while (i < s.size() && (IsDigit(s[i]) || s[i] == '_')) ++i;
  int groups = 0;
  while (i < s.size() && s[i] == ':') {
    ++i;
    // [0-5]?[0-9]
    if (i + 1 < s.size() && s[i] >= '0' && s[i] <= '5' && IsDigit(s[i + 1])) {
      i += 2;
    } else if (i < s.size() && IsDigit(s[i])) {
      i += 1;
    } else {
      return false;
    }
    ++groups;
  }
  if (groups == 0) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && (IsDigit(s[i]) || s[i] == '_')) ++i;
  }
  return i == s.size();
}

struct ScalarAnalysis {
  bool multiline = false;
  bool block_plain_allowed = true;
  bool single_quoted_allowed = true;
  bool block_allowed = true;
};

ScalarAnalysis Analyze(const std::string& v) {
  ScalarAnalysis a;
  if (v.empty()) {
    a.block_plain_allowed = true;
    a.single_quoted_allowed = true;
    a.block_allowed = false;
    return a;
  }
  bool block_ind = false, flow_ind = false, line_breaks = false, special = false;
  bool leading_space = false, leading_break = false, trailing_space = false, trailing_break = false,
       break_space = false, space_break = false;
  bool prev_space = false, prev_break = false;
  if (v.size() >= 3 && (v.compare(0, 3, "---") == 0 || v.compare(0, 3, "...") == 0)) {
    block_ind = flow_ind = true;
  }
  bool preceded_by_ws = true;
  for (size_t i = 0, w = 0; i < v.size(); i += w) {
    w = Utf8Width(v[i]);
    bool followed_by_ws = i + w >= v.size() || IsBlankAt(v, i + w);
    char c = v[i];
    if (i == 0) {
      switch (c) {
        case '#':
        case ',':
        case '[':
        case ']':
        case '{':
        case '}':
        case '&':
        case '*':
        case '!':
        case '|':
        case '>':
        case '\'':
        case '"':
        case '%':
        case '@':
        case '`':
          flow_ind = block_ind = true;
          break;
        case '?':
        case ':':
          flow_ind = true;
          if (followed_by_ws) block_ind = true;
          break;
        case '-':
          if (followed_by_ws) flow_ind = block_ind = true;
          break;
        default:
          break;
      }
    } else {
      switch (c) {
        case ',':
        case '?':
        case '[':
        case ']':
        case '{':
        case '}':
          flow_ind = true;
          break;
        case ':':
          flow_ind = true;
          if (followed_by_ws) block_ind = true;
          break;
        case '#':
          if (preceded_by_ws) flow_ind = block_ind = true;
          break;
        default:
          break;
      }
    }
    if (!IsPrintableAt(v, i)) special = true;
    if (IsSpaceAt(v, i)) {
      if (i == 0) leading_space = true;
      if (i + w == v.size()) trailing_space = true;
      if (prev_break) break_space = true;
      prev_space = true;
      prev_break = false;
    } else if (IsBreakAt(v, i)) {
      line_breaks = true;
      if (i == 0) leading_break = true;
      if (i + w == v.size()) trailing_break = true;
      if (prev_space) space_break = true;
      prev_space = false;
      prev_break = true;
    } else {
      prev_space = prev_break = false;
    }
    preceded_by_ws = IsBlankAt(v, i) || IsBreakAt(v, i) || v[i] == '\0';
  }
  a.multiline = line_breaks;
  if (leading_space || leading_break || trailing_space || trailing_break) {
    a.block_plain_allowed = false;
  }
  if (trailing_space) a.block_allowed = false;
  if (break_space) {
    a.block_plain_allowed = false;
    a.single_quoted_allowed = false;
  }
  if (space_break || special) {
    a.block_plain_allowed = false;
    a.single_quoted_allowed = false;
    a.block_allowed = false;
  }
  if (line_breaks) a.block_plain_allowed = false;
  if (block_ind) a.block_plain_allowed = false;
  (void)flow_ind;
  return a;
}

enum class Style { kPlain, kSingle, kDouble, kLiteral };

class Emitter {
 public:
  std::string out;

  void EmitDocument(const Node& n) {
    EmitNode(n, /*sequence=*/false, /*mapping=*/false);
    // Document end: finish the last line.
    if (column_ > 0) PutBreak();
  }

 private:
  static constexpr int kBestWidth = 80;
  int column_ = 0;
  int indent_ = -1;
  bool whitespace_ = true;
  bool indention_ = true;
  std::vector<int> indents_;

  void IncreaseIndent(bool flow, bool indentless) {
    indents_.push_back(indent_);
    if (indent_ < 0) {
      indent_ = flow ? 2 : 0;
    } else if (!indentless) {
      indent_ += 2;
    }
  }
  void PopIndent() {
    indent_ = indents_.back();
    indents_.pop_back();
  }
  void Put(char c) {
    out += c;
    ++column_;
  }
  void PutBreak() {
    out += '\n';
    column_ = 0;
  }
  // Copies one UTF-8 character starting at *i.
  void Write(const std::string& s, size_t* i) {
    int w = Utf8Width(s[*i]);
    for (int k = 0; k < w && *i < s.size(); ++k) out += s[(*i)++];
    ++column_;
  }
  void WriteBreak(const std::string& s, size_t* i) {
    if (s[*i] == '\n') {
      PutBreak();
      ++*i;
    } else {
      int w = Utf8Width(s[*i]);
      for (int k = 0; k < w && *i < s.size(); ++k) out += s[(*i)++];
      column_ = 0;
    }
  }
  void WriteIndent() {
    int ind = indent_ < 0 ? 0 : indent_;
    if (!indention_ || column_ > ind || (column_ == ind && !whitespace_)) PutBreak();
    while (column_ < ind) Put(' ');
    whitespace_ = true;
    indention_ = true;
  }
  void WriteIndicator(absl::string_view ind, bool need_ws, bool is_ws, bool is_indention) {
    if (need_ws && !whitespace_) Put(' ');
    for (char c : ind) Put(c);
    whitespace_ = is_ws;
    indention_ = indention_ && is_indention;
  }

  void EmitNode(const Node& n, bool sequence, bool mapping) {
    switch (n.kind()) {
      case Kind::kMap:
        if (n.entries().empty()) {
          IncreaseIndent(true, false);
          WriteIndicator("{", true, true, false);
          WriteIndicator("}", false, false, false);
          PopIndent();
        } else {
          EmitBlockMapping(n);
        }
        return;
      case Kind::kSeq:
        if (n.items().empty()) {
          IncreaseIndent(true, false);
          WriteIndicator("[", true, true, false);
          WriteIndicator("]", false, false, false);
          PopIndent();
        } else {
          IncreaseIndent(false, mapping && !indention_);
          for (const Node& item : n.items()) {
            WriteIndent();
            WriteIndicator("-", true, false, true);
            EmitNode(item, true, false);
          }
          PopIndent();
        }
        return;
      case Kind::kString:
        EmitString(n.scalar(), /*simple_key=*/false);
        return;
      case Kind::kTimestamp:
        EmitString(Canonical(n), /*simple_key=*/false);
        return;
      default:
        EmitPlainText(Canonical(n));
        return;
    }
  }

  void EmitBlockMapping(const Node& n) {
    IncreaseIndent(false, false);
    std::vector<const Node::Entry*> sorted;
    sorted.reserve(n.entries().size());
    for (const Node::Entry& e : n.entries()) sorted.push_back(&e);
    std::sort(sorted.begin(), sorted.end(), [](const Node::Entry* a, const Node::Entry* b) {
      return YamlKeyLess(a->first, b->first);
    });
    for (const Node::Entry* e : sorted) {
      WriteIndent();
      const std::string& key = e->first;
      bool multiline = false;
      for (size_t i = 0; i < key.size(); ++i) multiline = multiline || IsBreakAt(key, i);
      if (key.size() <= 128 && !multiline) {
        EmitString(key, /*simple_key=*/true);
        WriteIndicator(":", false, false, false);
      } else {
        // libyaml writes long or multi-line keys as complex keys.
        WriteIndicator("?", true, false, true);
        EmitString(key, /*simple_key=*/false);
        WriteIndent();
        WriteIndicator(":", true, false, true);
      }
      EmitNode(e->second, false, true);
    }
    PopIndent();
  }

  void EmitPlainText(const std::string& text) {
    IncreaseIndent(true, false);
    WritePlain(text, true);
    PopIndent();
  }

  void EmitString(const std::string& s, bool simple_key) {
    Style style;
    if (s.find('\n') != std::string::npos) {
      style = Style::kLiteral;
    } else if (V2ResolvesAsString(s) && !IsBase60Float(s)) {
      style = Style::kPlain;
    } else {
      style = Style::kDouble;
    }
    ScalarAnalysis a = Analyze(s);
    if (style == Style::kPlain) {
      if (!a.block_plain_allowed) style = Style::kSingle;
      if (s.empty() && simple_key) style = Style::kSingle;
    }
    if (style == Style::kSingle && !a.single_quoted_allowed) style = Style::kDouble;
    if (style == Style::kLiteral && (!a.block_allowed || simple_key)) style = Style::kDouble;
    IncreaseIndent(true, false);
    switch (style) {
      case Style::kPlain:
        WritePlain(s, !simple_key);
        break;
      case Style::kSingle:
        WriteSingle(s, !simple_key);
        break;
      case Style::kDouble:
        WriteDouble(s, !simple_key);
        break;
      case Style::kLiteral:
        WriteLiteral(s);
        break;
    }
    PopIndent();
  }

  void WritePlain(const std::string& v, bool allow_breaks) {
    if (!whitespace_) Put(' ');
    bool spaces = false;
    bool breaks = false;
    for (size_t i = 0; i < v.size();) {
      if (IsSpaceAt(v, i)) {
        if (allow_breaks && !spaces && column_ > kBestWidth && !IsSpaceAt(v, i + 1)) {
          WriteIndent();
          i += 1;
        } else {
          Write(v, &i);
        }
        spaces = true;
      } else if (IsBreakAt(v, i)) {
        if (!breaks && v[i] == '\n') PutBreak();
        WriteBreak(v, &i);
        indention_ = true;
        breaks = true;
      } else {
        if (breaks) WriteIndent();
        Write(v, &i);
        indention_ = false;
        spaces = false;
        breaks = false;
      }
    }
    whitespace_ = false;
    indention_ = false;
  }

  void WriteSingle(const std::string& v, bool allow_breaks) {
    WriteIndicator("'", true, false, false);
    bool spaces = false;
    bool breaks = false;
    for (size_t i = 0; i < v.size();) {
      if (IsSpaceAt(v, i)) {
        if (allow_breaks && !spaces && column_ > kBestWidth && i > 0 && i < v.size() - 1 &&
            !IsSpaceAt(v, i + 1)) {
          WriteIndent();
          i += 1;
        } else {
          Write(v, &i);
        }
        spaces = true;
      } else if (IsBreakAt(v, i)) {
        if (!breaks && v[i] == '\n') PutBreak();
        WriteBreak(v, &i);
        indention_ = true;
        breaks = true;
      } else {
        if (breaks) WriteIndent();
        if (v[i] == '\'') Put('\'');
        Write(v, &i);
        indention_ = false;
        spaces = false;
        breaks = false;
      }
    }
    WriteIndicator("'", false, false, false);
  }

  void WriteDouble(const std::string& v, bool allow_breaks) {
    WriteIndicator("\"", true, false, false);
    bool spaces = false;
    for (size_t i = 0; i < v.size();) {
      unsigned char c = v[i];
      if (!IsPrintableAt(v, i) || IsBomAt(v, i) || IsBreakAt(v, i) || c == '"' || c == '\\') {
        int w = Utf8Width(c);
        uint32_t cp;
        if (w == 1) {
          cp = c & 0x7F;
        } else if (w == 2) {
          cp = c & 0x1F;
        } else if (w == 3) {
          cp = c & 0x0F;
        } else {
          cp = c & 0x07;
        }
        for (int k = 1; k < w; ++k) {
          unsigned char cc = i + k < v.size() ? v[i + k] : 0;
          cp = (cp << 6) + (cc & 0x3F);
        }
        i += w;
        Put('\\');
        switch (cp) {
          case 0x00:
            Put('0');
            break;
          case 0x07:
            Put('a');
            break;
          case 0x08:
            Put('b');
            break;
          case 0x09:
            Put('t');
            break;
          case 0x0A:
            Put('n');
            break;
          case 0x0B:
            Put('v');
            break;
          case 0x0C:
            Put('f');
            break;
          case 0x0D:
            Put('r');
            break;
          case 0x1B:
            Put('e');
            break;
          case 0x22:
            Put('"');
            break;
          case 0x5C:
            Put('\\');
            break;
          case 0x85:
            Put('N');
            break;
          case 0xA0:
            Put('_');
            break;
          case 0x2028:
            Put('L');
            break;
          case 0x2029:
            Put('P');
            break;
          default: {
            int digits;
            if (cp <= 0xFF) {
              Put('x');
              digits = 2;
            } else if (cp <= 0xFFFF) {
              Put('u');
              digits = 4;
            } else {
              Put('U');
              digits = 8;
            }
            for (int k = (digits - 1) * 4; k >= 0; k -= 4) {
              int d = (cp >> k) & 0x0F;
              Put(d < 10 ? '0' + d : 'A' + d - 10);
            }
          }
        }
        spaces = false;
      } else if (IsSpaceAt(v, i)) {
        if (allow_breaks && !spaces && column_ > kBestWidth && i > 0 && i < v.size() - 1) {
          WriteIndent();
          if (IsSpaceAt(v, i + 1)) Put('\\');
          i += 1;
        } else {
          Write(v, &i);
        }
        spaces = true;
      } else {
        Write(v, &i);
        spaces = false;
      }
    }
    WriteIndicator("\"", false, false, false);
  }

  void WriteLiteral(const std::string& v) {
    WriteIndicator("|", true, false, false);
    // Block scalar hints.
    if (IsSpaceAt(v, 0) || IsBreakAt(v, 0)) WriteIndicator("2", false, false, false);
    if (v.empty()) {
      WriteIndicator("-", false, false, false);
    } else {
      size_t i = v.size() - 1;
      while (i > 0 && (static_cast<unsigned char>(v[i]) & 0xC0) == 0x80) --i;
      if (!IsBreakAt(v, i)) {
        WriteIndicator("-", false, false, false);
      } else if (i == 0) {
        WriteIndicator("+", false, false, false);
      } else {
        --i;
        while (i > 0 && (static_cast<unsigned char>(v[i]) & 0xC0) == 0x80) --i;
        if (IsBreakAt(v, i)) WriteIndicator("+", false, false, false);
      }
    }
    PutBreak();
    indention_ = true;
    whitespace_ = true;
    bool breaks = true;
    for (size_t i = 0; i < v.size();) {
      if (IsBreakAt(v, i)) {
        WriteBreak(v, &i);
        indention_ = true;
        breaks = true;
      } else {
        if (breaks) WriteIndent();
        Write(v, &i);
        indention_ = false;
        breaks = false;
      }
    }
  }
};

bool IsLetterRune(uint32_t r) {
  if (r < 0x80) return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
  return r >= 0xAA;  // Approximation: treat non-ASCII as letters.
}

std::vector<uint32_t> Runes(const std::string& s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    int w = Utf8Width(c);
    uint32_t cp = w == 1 ? c : (w == 2 ? c & 0x1F : (w == 3 ? c & 0x0F : c & 0x07));
    for (int k = 1; k < w; ++k) {
      unsigned char cc = i + k < s.size() ? s[i + k] : 0;
      cp = (cp << 6) + (cc & 0x3F);
    }
    i += w;
    out.push_back(cp);
  }
  return out;
}

void AppendJsonString(const std::string& s, std::string* out) {
  static const char* kHex = "0123456789abcdef";
  *out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      case '<':
      case '>':
      case '&':
        *out += "\\u00";
        *out += kHex[c >> 4];
        *out += kHex[c & 0xF];
        break;
      default:
        if (c < 0x20) {
          *out += "\\u00";
          *out += kHex[c >> 4];
          *out += kHex[c & 0xF];
        } else if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
                    static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
          *out += static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
          i += 2;
        } else {
          *out += static_cast<char>(c);
        }
    }
  }
  *out += '"';
}

void AppendJson(const Node& n, std::string* out) {
  switch (n.kind()) {
    case Kind::kNull:
      *out += "null";
      return;
    case Kind::kString:
      AppendJsonString(n.scalar(), out);
      return;
    case Kind::kTimestamp:
      AppendJsonString(Canonical(n), out);
      return;
    case Kind::kMap: {
      std::vector<const Node::Entry*> sorted;
      for (const Node::Entry& e : n.entries()) sorted.push_back(&e);
      std::sort(sorted.begin(), sorted.end(),
                [](const Node::Entry* a, const Node::Entry* b) { return a->first < b->first; });
      *out += '{';
      bool first = true;
      for (const Node::Entry* e : sorted) {
        if (!first) *out += ',';
        first = false;
        AppendJsonString(e->first, out);
        *out += ':';
        AppendJson(e->second, out);
      }
      *out += '}';
      return;
    }
    case Kind::kSeq: {
      *out += '[';
      bool first = true;
      for (const Node& item : n.items()) {
        if (!first) *out += ',';
        first = false;
        AppendJson(item, out);
      }
      *out += ']';
      return;
    }
    default:
      *out += Canonical(n);
      return;
  }
}

}  // namespace

bool YamlKeyLess(const std::string& as, const std::string& bs) {
  // Fast path for plain ASCII lowercase keys without digits is the general
  // algorithm anyway; keep it exact.
  std::vector<uint32_t> ar = Runes(as), br = Runes(bs);
  for (size_t i = 0; i < ar.size() && i < br.size(); ++i) {
    if (ar[i] == br[i]) continue;
    bool al = IsLetterRune(ar[i]);
    bool bl = IsLetterRune(br[i]);
    if (al && bl) return ar[i] < br[i];
    if (al || bl) return bl;
    auto is_digit = [](uint32_t r) { return r >= '0' && r <= '9'; };
    int64_t an = 0, bn = 0;
    size_t ai, bi;
    if (ar[i] == '0' || br[i] == '0') {
      for (size_t j = i; j-- > 0 && is_digit(ar[j]);) {
        if (ar[j] != '0') {
          an = 1;
          bn = 1;
          break;
        }
      }
    }
    // Go's int64 arithmetic wraps on overflow; do the same without UB.
    auto step = [](int64_t v, uint32_t d) {
      return static_cast<int64_t>(static_cast<uint64_t>(v) * 10u + (d - '0'));
    };
    for (ai = i; ai < ar.size() && is_digit(ar[ai]); ++ai) an = step(an, ar[ai]);
    for (bi = i; bi < br.size() && is_digit(br[bi]); ++bi) bn = step(bn, br[bi]);
    if (an != bn) return an < bn;
    if (ai != bi) return ai < bi;
    return ar[i] < br[i];
  }
  return ar.size() < br.size();
}

absl::StatusOr<std::vector<Node>> ParseYamlStream(absl::string_view text,
                                                  const LoadLimits& limits) {
  std::vector<Node> out;
  size_t budget = limits.max_nodes;
  for (const RawDocument& doc : SplitDocuments(text)) {
    if (IsBlankText(doc.text)) continue;
    absl::StatusOr<Node> n = LoadOne(doc, &budget);
    if (!n.ok()) return n.status();
    if (n->IsNull()) continue;
    out.push_back(std::move(*n));
  }
  return out;
}

absl::StatusOr<Node> ParseYamlDocument(absl::string_view text, const LoadLimits& limits) {
  std::vector<RawDocument> docs = SplitDocuments(text);
  size_t budget = limits.max_nodes;
  Node result;
  bool found = false;
  for (const RawDocument& doc : docs) {
    if (IsBlankText(doc.text)) continue;
    if (found) return absl::InvalidArgumentError("yaml: expected a single document");
    absl::StatusOr<Node> n = LoadOne(doc, &budget);
    if (!n.ok()) return n.status();
    result = std::move(*n);
    found = true;
  }
  return result;
}

std::string EmitYaml(const Node& node) {
  Emitter e;
  e.EmitDocument(node);
  return std::move(e.out);
}

std::string CanonicalScalar(const Node& n) { return Canonical(n); }

bool ReadsAsStringInYaml11(const std::string& text) {
  return V2ResolvesAsString(text) && !IsBase60Float(text);
}

Node ResolvePlainScalar(const std::string& text) {
  Node n = ResolvePlain(text);
  if (n.IsString()) n.set_plain(true);
  return n;
}

std::string EmitJson(const Node& node) {
  std::string out;
  AppendJson(node, &out);
  return out;
}

}  // namespace gitops::kustomize
