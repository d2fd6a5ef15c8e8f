#include "test/apiserver/schema.h"

#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;

const json* Sub(const json& schema, const char* key) {
  if (!schema.is_object()) return nullptr;
  auto it = schema.find(key);
  return it == schema.end() ? nullptr : &*it;
}

bool PreservesUnknown(const json& schema) {
  const json* p = Sub(schema, "x-kubernetes-preserve-unknown-fields");
  return p != nullptr && p->is_boolean() && p->get<bool>();
}

// The schema for a member of an object: properties[key] or additionalProperties.
const json* MemberSchema(const json& schema, const std::string& key) {
  const json* props = Sub(schema, "properties");
  if (props != nullptr && props->is_object() && props->contains(key)) return &(*props)[key];
  const json* ap = Sub(schema, "additionalProperties");
  if (ap != nullptr && ap->is_object()) return ap;
  return nullptr;
}

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

void DefaultsImpl(json& obj, const json& schema) {
  if (obj.is_object()) {
    const json* props = Sub(schema, "properties");
    if (props != nullptr && props->is_object()) {
      for (auto it = props->begin(); it != props->end(); ++it) {
        const json* def = Sub(it.value(), "default");
        if (def != nullptr && !obj.contains(it.key())) obj[it.key()] = *def;
      }
    }
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const json* sub = MemberSchema(schema, it.key());
      if (sub != nullptr) DefaultsImpl(it.value(), *sub);
    }
  } else if (obj.is_array()) {
    const json* items = Sub(schema, "items");
    if (items != nullptr) {
      for (auto& e : obj) DefaultsImpl(e, *items);
    }
  }
}

void PruneImpl(json& obj, const json& schema, const std::string& path,
               std::vector<std::string>* unknown) {
  if (PreservesUnknown(schema) && !Sub(schema, "properties")) return;
  if (obj.is_object()) {
    const json* ap = Sub(schema, "additionalProperties");
    bool open = PreservesUnknown(schema) || (ap != nullptr && (ap->is_object() || *ap == true));
    std::vector<std::string> drop;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const json* sub = MemberSchema(schema, it.key());
      if (sub == nullptr) {
        if (!open) drop.push_back(it.key());
        continue;
      }
      PruneImpl(it.value(), *sub, Join(path, it.key()), unknown);
    }
    for (const auto& k : drop) {
      if (unknown != nullptr) unknown->push_back(Join(path, k));
      obj.erase(k);
    }
  } else if (obj.is_array()) {
    const json* items = Sub(schema, "items");
    if (items != nullptr) {
      for (size_t i = 0; i < obj.size(); ++i) {
        PruneImpl(obj[i], *items, absl::StrCat(path, "[", i, "]"), unknown);
      }
    }
  }
}

std::string TypeOf(const json& v) {
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number_float()) {
    double d = v.get<double>();
    return d == static_cast<double>(static_cast<int64_t>(d)) ? "integer" : "number";
  }
  return "null";
}

void ValidateImpl(const json& obj, const json& schema, const std::string& path,
                  std::vector<FieldError>& errors) {
  if (obj.is_null()) {
    const json* nullable = Sub(schema, "nullable");
    if (nullable != nullptr && *nullable == true) return;
  }
  const json* type = Sub(schema, "type");
  bool int_or_string = Sub(schema, "x-kubernetes-int-or-string") != nullptr;
  if (int_or_string) {
    std::string t = TypeOf(obj);
    if (t != "integer" && t != "string") {
      errors.push_back({path, "FieldValueTypeInvalid",
                        absl::StrCat("Invalid value: \"", t, "\": ", path,
                                     " in body must be of type integer,string: \"", t, "\"")});
    }
    return;
  }
  if (type != nullptr && type->is_string()) {
    std::string want = type->get<std::string>();
    std::string got = TypeOf(obj);
    bool ok = got == want || (want == "number" && got == "integer");
    if (!ok) {
      errors.push_back({path, "FieldValueTypeInvalid",
                        absl::StrCat("Invalid value: \"", got, "\": ", path,
                                     " in body must be of type ", want, ": \"", got, "\"")});
      return;
    }
  }
  const json* en = Sub(schema, "enum");
  if (en != nullptr && en->is_array() && std::find(en->begin(), en->end(), obj) == en->end()) {
    std::vector<std::string> allowed;
    for (const auto& e : *en) allowed.push_back(e.dump());
    errors.push_back({path, "FieldValueNotSupported",
                      absl::StrCat("Unsupported value: ", obj.dump(),
                                   ": supported values: ", absl::StrJoin(allowed, ", "))});
  }
  if (obj.is_string()) {
    const std::string s = obj.get<std::string>();
    const json* pattern = Sub(schema, "pattern");
    if (pattern != nullptr && pattern->is_string()) {
      try {
        std::regex re(pattern->get<std::string>(), std::regex::ECMAScript);
        if (!std::regex_search(s, re)) {
          errors.push_back(
              {path, "FieldValueInvalid",
               absl::StrCat("Invalid value: \"", s, "\": ", path, " in body should match '",
                            pattern->get<std::string>(), "'")});
        }
      } catch (const std::regex_error&) {
      }
    }
    const json* max_len = Sub(schema, "maxLength");
    if (max_len != nullptr && max_len->is_number() && s.size() > max_len->get<size_t>()) {
      errors.push_back({path, "FieldValueTooLong",
                        absl::StrCat("Too long: may not be longer than ", max_len->dump())});
    }
    const json* min_len = Sub(schema, "minLength");
    if (min_len != nullptr && min_len->is_number() && s.size() < min_len->get<size_t>()) {
      errors.push_back(
          {path, "FieldValueInvalid",
           absl::StrCat("Invalid value: \"", s, "\": ", path, " in body should be at least ",
                        min_len->dump(), " chars long")});
    }
  }
  if (obj.is_number()) {
    double v = obj.get<double>();
    const json* mn = Sub(schema, "minimum");
    if (mn != nullptr && mn->is_number() && v < mn->get<double>()) {
      errors.push_back({path, "FieldValueInvalid",
                        absl::StrCat("Invalid value: ", obj.dump(), ": ", path,
                                     " in body should be greater than or equal to ", mn->dump())});
    }
    const json* mx = Sub(schema, "maximum");
    if (mx != nullptr && mx->is_number() && v > mx->get<double>()) {
      errors.push_back({path, "FieldValueInvalid",
                        absl::StrCat("Invalid value: ", obj.dump(), ": ", path,
                                     " in body should be less than or equal to ", mx->dump())});
    }
  }
  if (obj.is_object()) {
    const json* req = Sub(schema, "required");
    if (req != nullptr && req->is_array()) {
      for (const auto& r : *req) {
        if (r.is_string() && !obj.contains(r.get<std::string>())) {
          errors.push_back(
              {Join(path, r.get<std::string>()), "FieldValueRequired", "Required value"});
        }
      }
    }
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (path.empty() &&
          (it.key() == "apiVersion" || it.key() == "kind" || it.key() == "metadata")) {
        continue;
      }
      const json* sub = MemberSchema(schema, it.key());
      if (sub != nullptr) ValidateImpl(it.value(), *sub, Join(path, it.key()), errors);
    }
  }
  if (obj.is_array()) {
    const json* max_items = Sub(schema, "maxItems");
    if (max_items != nullptr && max_items->is_number() && obj.size() > max_items->get<size_t>()) {
      errors.push_back({path, "FieldValueTooMany",
                        absl::StrCat("Too many: ", obj.size(), ": must have at most ",
                                     max_items->dump(), " items")});
    }
    const json* items = Sub(schema, "items");
    if (items != nullptr) {
      for (size_t i = 0; i < obj.size(); ++i) {
        ValidateImpl(obj[i], *items, absl::StrCat(path, "[", i, "]"), errors);
      }
    }
  }
}

}  // namespace

void ApplyDefaults(json& obj, const json& schema) { DefaultsImpl(obj, schema); }

void Prune(json& obj, const json& schema, std::vector<std::string>* unknown) {
  if (!obj.is_object() || PreservesUnknown(schema)) return;
  // The root keeps apiVersion, kind and metadata whatever the schema says.
  std::vector<std::string> drop;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (it.key() == "apiVersion" || it.key() == "kind" || it.key() == "metadata") continue;
    const json* sub = MemberSchema(schema, it.key());
    if (sub == nullptr) {
      drop.push_back(it.key());
    } else {
      PruneImpl(it.value(), *sub, it.key(), unknown);
    }
  }
  for (const auto& k : drop) {
    if (unknown != nullptr) unknown->push_back(k);
    obj.erase(k);
  }
}

std::vector<FieldError> Validate(const json& obj, const json& schema) {
  std::vector<FieldError> errors;
  ValidateImpl(obj, schema, "", errors);
  return errors;
}

ListShape SchemaListShape(const json& schema, const std::vector<std::string>& field_path) {
  const json* node = &schema;
  for (const auto& name : field_path) {
    while (Sub(*node, "items") != nullptr && Sub(*node, "properties") == nullptr) {
      node = Sub(*node, "items");
    }
    const json* next = MemberSchema(*node, name);
    if (next == nullptr) return {};
    node = next;
  }
  const json* lt = Sub(*node, "x-kubernetes-list-type");
  if (lt == nullptr || !lt->is_string()) return {};
  if (*lt == "set") return {ListType::kSet, {}};
  if (*lt == "map") {
    ListShape shape{ListType::kMap, {}};
    const json* keys = Sub(*node, "x-kubernetes-list-map-keys");
    if (keys != nullptr && keys->is_array()) {
      for (const auto& k : *keys) {
        if (k.is_string()) shape.keys.push_back(k.get<std::string>());
      }
    }
    return shape;
  }
  return {};
}

}  // namespace gitops::testing
