#include "test/apiserver/selector.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace gitops::testing {
namespace {

std::vector<std::string> SplitTopLevel(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : text) {
    if (c == '(') depth++;
    if (c == ')') depth--;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string Trim(absl::string_view s) { return std::string(absl::StripAsciiWhitespace(s)); }

}  // namespace

absl::StatusOr<Selector> Selector::ParseLabels(const std::string& text) {
  Selector sel;
  for (const std::string& raw : SplitTopLevel(text)) {
    std::string part = Trim(raw);
    if (part.empty()) continue;
    Requirement req;
    size_t pos;
    if (part[0] == '!') {
      req.key = Trim(part.substr(1));
      req.op = Op::kNotExists;
    } else if ((pos = part.find("!=")) != std::string::npos) {
      req.key = Trim(part.substr(0, pos));
      req.op = Op::kNe;
      req.values.push_back(Trim(part.substr(pos + 2)));
    } else if ((pos = part.find("==")) != std::string::npos) {
      req.key = Trim(part.substr(0, pos));
      req.op = Op::kEq;
      req.values.push_back(Trim(part.substr(pos + 2)));
    } else if ((pos = part.find('=')) != std::string::npos) {
      req.key = Trim(part.substr(0, pos));
      req.op = Op::kEq;
      req.values.push_back(Trim(part.substr(pos + 1)));
    } else if ((pos = part.find(" notin ")) != std::string::npos ||
               (pos = part.find(" in ")) != std::string::npos) {
      bool notin = part.compare(pos, 7, " notin ") == 0;
      req.key = Trim(part.substr(0, pos));
      req.op = notin ? Op::kNotIn : Op::kIn;
      std::string rest = Trim(part.substr(pos + (notin ? 7 : 4)));
      if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') {
        return absl::InvalidArgumentError("unable to parse requirement: found '" + rest +
                                          "', expected: '('");
      }
      for (absl::string_view v : absl::StrSplit(rest.substr(1, rest.size() - 2), ',')) {
        req.values.push_back(Trim(v));
      }
    } else {
      req.key = part;
      req.op = Op::kExists;
    }
    if (req.key.empty() || req.key.find(' ') != std::string::npos) {
      return absl::InvalidArgumentError("unable to parse requirement: \"" + part + "\"");
    }
    sel.reqs_.push_back(std::move(req));
  }
  return sel;
}

absl::StatusOr<Selector> Selector::ParseFields(const std::string& text) {
  Selector sel;
  sel.fields_ = true;
  for (absl::string_view raw : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::string part = Trim(raw);
    Requirement req;
    size_t pos;
    if ((pos = part.find("!=")) != std::string::npos) {
      req.op = Op::kNe;
      req.key = part.substr(0, pos);
      req.values.push_back(part.substr(pos + 2));
    } else if ((pos = part.find("==")) != std::string::npos) {
      req.op = Op::kEq;
      req.key = part.substr(0, pos);
      req.values.push_back(part.substr(pos + 2));
    } else if ((pos = part.find('=')) != std::string::npos) {
      req.op = Op::kEq;
      req.key = part.substr(0, pos);
      req.values.push_back(part.substr(pos + 1));
    } else {
      return absl::InvalidArgumentError("invalid selector: '" + part + "'; can't understand '" +
                                        part + "'");
    }
    sel.reqs_.push_back(std::move(req));
  }
  return sel;
}

bool Selector::Matches(const nlohmann::json& obj) const {
  for (const auto& req : reqs_) {
    bool present = false;
    std::string value;
    if (fields_) {
      const nlohmann::json* node = &obj;
      for (absl::string_view seg : absl::StrSplit(req.key, '.')) {
        if (node == nullptr || !node->is_object()) {
          node = nullptr;
          break;
        }
        auto it = node->find(std::string(seg));
        node = it == node->end() ? nullptr : &*it;
      }
      if (node != nullptr) {
        present = true;
        value = node->is_string() ? node->get<std::string>() : node->dump();
      }
    } else {
      auto meta = obj.find("metadata");
      if (meta != obj.end() && meta->is_object()) {
        auto labels = meta->find("labels");
        if (labels != meta->end() && labels->is_object()) {
          auto it = labels->find(req.key);
          if (it != labels->end() && it->is_string()) {
            present = true;
            value = it->get<std::string>();
          }
        }
      }
    }
    bool in_values =
        present && std::find(req.values.begin(), req.values.end(), value) != req.values.end();
    switch (req.op) {
      case Op::kEq:
      case Op::kIn:
        if (!in_values) return false;
        break;
      case Op::kNe:
      case Op::kNotIn:
        if (in_values) return false;
        break;
      case Op::kExists:
        if (!present) return false;
        break;
      case Op::kNotExists:
        if (present) return false;
        break;
    }
  }
  return true;
}

}  // namespace gitops::testing
