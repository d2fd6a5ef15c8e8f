#include "common/yaml/yaml.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace gitops::common {
namespace {

constexpr int kMaxDepth = 200;

bool IsDocumentMarker(absl::string_view line) {
  if (line.size() < 3) return false;
  absl::string_view head = line.substr(0, 3);
  if (head != "---" && head != "...") return false;
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r';
}

nlohmann::json ResolvePlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  static const char* kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                "on",   "On",   "ON",   "y",   "Y"};
  static const char* kFalse[] = {"false", "False", "FALSE", "no", "No", "NO",
                                 "off",   "Off",   "OFF",   "n",  "N"};
  for (const char* t : kTrue) {
    if (s == t) return true;
  }
  for (const char* f : kFalse) {
    if (s == f) return false;
  }
  static const std::regex kInt("[-+]?(0|[1-9][0-9_]*)");
  static const std::regex kHex("0x[0-9a-fA-F_]+");
  static const std::regex kFloat(
      "[-+]?([0-9][0-9_]*)?\\.[0-9_]*([eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+");
  if (std::regex_match(s, kInt)) {
    std::string digits;
    for (char c : s) {
      if (c != '_') digits.push_back(c);
    }
    errno = 0;
    long long v = std::strtoll(digits.c_str(), nullptr, 10);
    if (errno == 0) return v;
    return std::strtod(digits.c_str(), nullptr);
  }
  if (std::regex_match(s, kHex)) return std::strtoll(s.c_str(), nullptr, 16);
  if (std::regex_match(s, kFloat) && s != "." && s != "+." && s != "-.") {
    return std::strtod(s.c_str(), nullptr);
  }
  if (s == ".inf" || s == ".Inf" || s == "+.inf") return std::numeric_limits<double>::infinity();
  if (s == "-.inf" || s == "-.Inf") return -std::numeric_limits<double>::infinity();
  return s;
}

absl::StatusOr<nlohmann::json> ToJson(const YAML::Node& node, int depth) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("nesting deeper than ", kMaxDepth, " levels at line ", node.Mark().line + 1));
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      // yaml-cpp tags non-plain (quoted, block) scalars with "!".
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return node.Scalar();
      return ResolvePlainScalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : node) {
        auto v = ToJson(item, depth + 1);
        if (!v.ok()) return v.status();
        arr.push_back(std::move(*v));
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return absl::InvalidArgumentError(
              absl::StrCat("non-scalar mapping key at line ", kv.first.Mark().line + 1));
        }
        auto v = ToJson(kv.second, depth + 1);
        if (!v.ok()) return v.status();
        obj[kv.first.Scalar()] = std::move(*v);
      }
      return obj;
    }
  }
  return nullptr;
}

}  // namespace

std::vector<YamlDocument> SplitYamlDocuments(absl::string_view stream) {
  std::vector<YamlDocument> docs;
  YamlDocument current;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= stream.size()) {
    size_t end = stream.find('\n', pos);
    if (end == absl::string_view::npos) end = stream.size();
    absl::string_view line = stream.substr(pos, end - pos);
    ++line_no;
    if (IsDocumentMarker(line)) {
      docs.push_back(std::move(current));
      current = YamlDocument{};
      current.first_line = line_no + 1;
      // "--- key: value" keeps the content after the marker.
      if (line.size() > 4 && line.substr(0, 3) == "---") {
        current.text.append(std::string(4, ' '));
        current.text.append(line.data() + 4, line.size() - 4);
        current.text.push_back('\n');
        current.first_line = line_no;
      }
    } else {
      current.text.append(line.data(), line.size());
      current.text.push_back('\n');
    }
    pos = end + 1;
  }
  docs.push_back(std::move(current));
  std::vector<YamlDocument> non_empty;
  for (auto& d : docs) {
    bool blank = true;
    size_t p = 0;
    while (p < d.text.size()) {
      size_t e = d.text.find('\n', p);
      if (e == std::string::npos) e = d.text.size();
      absl::string_view l = absl::StripAsciiWhitespace(absl::string_view(d.text).substr(p, e - p));
      if (!l.empty() && l[0] != '#') {
        blank = false;
        break;
      }
      p = e + 1;
    }
    if (!blank) non_empty.push_back(std::move(d));
  }
  return non_empty;
}

absl::StatusOr<std::vector<nlohmann::json>> ParseYamlDocuments(absl::string_view stream,
                                                               absl::string_view source) {
  std::vector<nlohmann::json> out;
  for (const auto& doc : SplitYamlDocuments(stream)) {
    YAML::Node node;
    try {
      node = YAML::Load(doc.text);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", doc.first_line + e.mark.line, ": invalid YAML: ", e.msg));
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": invalid YAML: ", e.what()));
    }
    auto json = ToJson(node, 0);
    if (!json.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", json.status().message()));
    }
    if (json->is_null()) continue;
    out.push_back(std::move(*json));
  }
  return out;
}

std::string StringField(const nlohmann::json& obj, const char* key, const std::string& fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

std::string StringAt(const nlohmann::json& obj, std::initializer_list<const char*> path) {
  const nlohmann::json* at = &obj;
  for (const char* key : path) {
    if (!at->is_object()) return std::string();
    auto it = at->find(key);
    if (it == at->end()) return std::string();
    at = &*it;
  }
  return at->is_string() ? at->get<std::string>() : std::string();
}

int64_t IntField(const nlohmann::json& obj, const char* key, int64_t fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return fallback;
  return it->get<int64_t>();
}

}  // namespace gitops::common
