#include "test/apiserver/merge.h"

#include <algorithm>

namespace gitops::testing {
namespace {

using json = nlohmann::json;

bool ItemMatches(const json& item, const json& key) {
  if (!item.is_object()) return false;
  for (auto it = key.begin(); it != key.end(); ++it) {
    auto f = item.find(it.key());
    if (f == item.end() || *f != it.value()) return false;
  }
  return true;
}

json ItemKey(const json& item, const std::vector<std::string>& keys) {
  json key = json::object();
  if (!item.is_object()) return key;
  for (const auto& k : keys) {
    auto f = item.find(k);
    if (f != item.end()) key[k] = *f;
  }
  return key;
}

json StrategicImpl(json target, const json& patch, std::vector<std::string>& path,
                   const ListShapeFn& shape);

json MergeList(const json& target, const json& patch, std::vector<std::string>& path,
               const ListShapeFn& shape) {
  ListShape s = shape(path);
  if (!target.is_array()) return patch;
  if (s.type == ListType::kSet) {
    json out = target;
    for (const auto& v : patch) {
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    }
    return out;
  }
  if (s.type != ListType::kMap || s.keys.empty()) return patch;
  json out = target;
  for (const auto& item : patch) {
    if (!item.is_object()) continue;
    json key = ItemKey(item, s.keys);
    auto found =
        std::find_if(out.begin(), out.end(), [&](const json& o) { return ItemMatches(o, key); });
    auto directive = item.find("$patch");
    if (directive != item.end() && *directive == "delete") {
      if (found != out.end()) out.erase(found);
      continue;
    }
    if (found != out.end()) {
      *found = StrategicImpl(*found, item, path, shape);
    } else {
      out.push_back(StrategicImpl(json::object(), item, path, shape));
    }
  }
  return out;
}

json StrategicImpl(json target, const json& patch, std::vector<std::string>& path,
                   const ListShapeFn& shape) {
  if (!patch.is_object()) return patch;
  auto directive = patch.find("$patch");
  if (directive != patch.end()) {
    if (*directive == "replace") {
      json copy = patch;
      copy.erase("$patch");
      return copy;
    }
    if (*directive == "delete") return json();
  }
  if (!target.is_object()) target = json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& key = it.key();
    if (key == "$patch" || key == "$retainKeys" || key.rfind("$setElementOrder/", 0) == 0) {
      continue;
    }
    if (key.rfind("$deleteFromPrimitiveList/", 0) == 0) {
      std::string field = key.substr(std::string("$deleteFromPrimitiveList/").size());
      auto f = target.find(field);
      if (f != target.end() && f->is_array() && it.value().is_array()) {
        json kept = json::array();
        for (const auto& v : *f) {
          if (std::find(it.value().begin(), it.value().end(), v) == it.value().end()) {
            kept.push_back(v);
          }
        }
        *f = kept;
      }
      continue;
    }
    if (it.value().is_null()) {
      target.erase(key);
      continue;
    }
    path.push_back(key);
    auto existing = target.find(key);
    if (it.value().is_array()) {
      target[key] =
          MergeList(existing == target.end() ? json() : *existing, it.value(), path, shape);
    } else if (it.value().is_object()) {
      json merged = StrategicImpl(existing == target.end() ? json::object() : *existing, it.value(),
                                  path, shape);
      if (merged.is_null()) {
        target.erase(key);
      } else {
        target[key] = merged;
      }
    } else {
      target[key] = it.value();
    }
    path.pop_back();
  }
  return target;
}

void FieldsImpl(const json& obj, std::vector<std::string>& names, FieldPath& path, FieldSet& out,
                const ListShapeFn& shape) {
  if (obj.is_object() && !obj.empty()) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      names.push_back(it.key());
      path.push_back("f:" + it.key());
      FieldsImpl(it.value(), names, path, out, shape);
      path.pop_back();
      names.pop_back();
    }
    return;
  }
  if (obj.is_array() && !obj.empty()) {
    ListShape s = shape(names);
    if (s.type == ListType::kSet) {
      for (const auto& v : obj) {
        path.push_back("v:" + v.dump());
        out.insert(path);
        path.pop_back();
      }
      return;
    }
    if (s.type == ListType::kMap && !s.keys.empty()) {
      for (const auto& item : obj) {
        path.push_back("k:" + ItemKey(item, s.keys).dump());
        out.insert(path);
        FieldsImpl(item, names, path, out, shape);
        path.pop_back();
      }
      return;
    }
  }
  out.insert(path);
}

json* Child(json& obj, const std::string& elem) {
  if (elem.rfind("f:", 0) == 0) {
    if (!obj.is_object()) return nullptr;
    auto f = obj.find(elem.substr(2));
    return f == obj.end() ? nullptr : &*f;
  }
  if (!obj.is_array()) return nullptr;
  json want = json::parse(elem.substr(2), nullptr, false);
  if (want.is_discarded()) return nullptr;
  for (auto& item : obj) {
    if (elem[0] == 'k' ? ItemMatches(item, want) : item == want) return &item;
  }
  return nullptr;
}

void ApplyMergeImpl(json& live, const json& applied, std::vector<std::string>& names,
                    const ListShapeFn& shape) {
  if (applied.is_object() && live.is_object()) {
    for (auto it = applied.begin(); it != applied.end(); ++it) {
      names.push_back(it.key());
      auto f = live.find(it.key());
      if (f == live.end()) {
        live[it.key()] = it.value();
      } else {
        ApplyMergeImpl(*f, it.value(), names, shape);
      }
      names.pop_back();
    }
    return;
  }
  if (applied.is_array() && live.is_array()) {
    ListShape s = shape(names);
    if (s.type == ListType::kSet) {
      for (const auto& v : applied) {
        if (std::find(live.begin(), live.end(), v) == live.end()) live.push_back(v);
      }
      return;
    }
    if (s.type == ListType::kMap && !s.keys.empty()) {
      for (const auto& item : applied) {
        json key = ItemKey(item, s.keys);
        auto found = std::find_if(live.begin(), live.end(),
                                  [&](const json& o) { return ItemMatches(o, key); });
        if (found == live.end()) {
          live.push_back(item);
        } else {
          ApplyMergeImpl(*found, item, names, shape);
        }
      }
      return;
    }
  }
  live = applied;
}

}  // namespace

json MergePatch(json target, const json& patch) {
  if (!patch.is_object()) return patch;
  if (!target.is_object()) target = json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      target.erase(it.key());
    } else {
      auto existing = target.find(it.key());
      target[it.key()] = MergePatch(existing == target.end() ? json() : *existing, it.value());
    }
  }
  return target;
}

json StrategicMergePatch(json target, const json& patch, const ListShapeFn& shape) {
  std::vector<std::string> path;
  json out = StrategicImpl(std::move(target), patch, path, shape);
  return out.is_null() ? json::object() : out;
}

FieldSet FieldsOf(const json& obj, const ListShapeFn& shape) {
  FieldSet out;
  std::vector<std::string> names;
  FieldPath path;
  if (obj.is_object()) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      names.push_back(it.key());
      path.push_back("f:" + it.key());
      FieldsImpl(it.value(), names, path, out, shape);
      path.pop_back();
      names.pop_back();
    }
  }
  return out;
}

json FieldSetToV1(const FieldSet& set) {
  json root = json::object();
  for (const auto& path : set) {
    json* node = &root;
    for (const auto& elem : path) {
      node = &(*node)[elem];
      if (node->is_null()) *node = json::object();
    }
  }
  // A node that is itself in the set and has children gets ".": {}.
  for (const auto& path : set) {
    json* node = &root;
    for (const auto& elem : path) node = &(*node)[elem];
    if (!node->empty()) (*node)["."] = json::object();
  }
  return root;
}

FieldSet FieldSetFromV1(const json& v1) {
  FieldSet out;
  FieldPath path;
  std::function<void(const json&)> walk = [&](const json& node) {
    if (!node.is_object()) return;
    if (node.empty() || node.contains(".")) {
      if (!path.empty()) out.insert(path);
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it.key() == ".") continue;
      path.push_back(it.key());
      walk(it.value());
      path.pop_back();
    }
  };
  walk(v1);
  return out;
}

const json* ValueAt(const json& obj, const FieldPath& path) {
  const json* node = &obj;
  for (const auto& elem : path) {
    node = Child(const_cast<json&>(*node), elem);
    if (node == nullptr) return nullptr;
  }
  return node;
}

void RemoveAt(json& obj, const FieldPath& path) {
  if (path.empty()) return;
  json* parent = &obj;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    parent = Child(*parent, path[i]);
    if (parent == nullptr) return;
  }
  const std::string& last = path.back();
  if (last.rfind("f:", 0) == 0) {
    if (parent->is_object()) parent->erase(last.substr(2));
    return;
  }
  json* item = Child(*parent, last);
  if (item == nullptr) return;
  for (size_t i = 0; i < parent->size(); ++i) {
    if (&(*parent)[i] == item) {
      parent->erase(i);
      return;
    }
  }
}

std::string FieldPathString(const FieldPath& path) {
  std::string out;
  for (const auto& elem : path) {
    if (elem.rfind("f:", 0) == 0) {
      out += "." + elem.substr(2);
    } else if (elem.rfind("k:", 0) == 0) {
      json key = json::parse(elem.substr(2), nullptr, false);
      out += "[";
      bool first = true;
      if (key.is_object()) {
        for (auto it = key.begin(); it != key.end(); ++it) {
          if (!first) out += ",";
          first = false;
          out += it.key() + "=" + it.value().dump();
        }
      }
      out += "]";
    } else {
      out += "[=" + elem.substr(2) + "]";
    }
  }
  return out;
}

json ApplyMerge(json live, const json& applied, const ListShapeFn& shape) {
  std::vector<std::string> names;
  if (!live.is_object()) live = json::object();
  ApplyMergeImpl(live, applied, names, shape);
  return live;
}

}  // namespace gitops::testing
