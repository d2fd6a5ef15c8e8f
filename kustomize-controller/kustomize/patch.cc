#include "kustomize-controller/kustomize/patch.h"

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"

namespace gitops::kustomize {
namespace {

// Merge keys of the built-in kinds' lists, by field name. Lists of other
// fields merge by the first key every element carries (kyaml's inference),
// or are replaced.
const char* KnownMergeKey(const std::string& field, const std::string& parent) {
  if (field == "containers" || field == "initContainers" || field == "ephemeralContainers" ||
      field == "env" || field == "volumes" || field == "imagePullSecrets") {
    return "name";
  }
  if (field == "volumeMounts") return "mountPath";
  if (field == "volumeDevices") return "devicePath";
  if (field == "hostAliases") return "ip";
  if (field == "topologySpreadConstraints") return "topologyKey";
  if (field == "ports") return parent == "container" ? "containerPort" : "port";
  return nullptr;
}

const char* const kAssociativeKeys[] = {"mountPath", "devicePath",  "ip",           "type",
                                        "topologyKey", "name", "containerPort"};

std::string InferKey(const Node* a, const Node* b) {
  for (const char* k : kAssociativeKeys) {
    bool all = true;
    bool any = false;
    for (const Node* list : {a, b}) {
      if (list == nullptr || !list->IsSeq()) continue;
      for (const Node& item : list->items()) {
        any = true;
        if (!item.IsMap() || item.Find(k) == nullptr) {
          all = false;
          break;
        }
      }
      if (!all) break;
    }
    if (all && any) return k;
  }
  return "";
}

bool IsDirectiveKey(const std::string& k) { return !k.empty() && k[0] == '$'; }

Node StripDirectives(const Node& n) {
  if (n.IsMap()) {
    Node out = Node::Map();
    for (const auto& e : n.entries()) {
      if (IsDirectiveKey(e.first)) continue;
      if (e.first.rfind("$setElementOrder/", 0) == 0) continue;
      out.entries().emplace_back(e.first, StripDirectives(e.second));
    }
    return out;
  }
  if (n.IsSeq()) {
    Node out = Node::Seq();
    for (const Node& item : n.items()) {
      if (item.IsMap()) {
        const Node* p = item.Find("$patch");
        if (p != nullptr && p->scalar() == "delete") continue;
      }
      out.items().push_back(StripDirectives(item));
    }
    return out;
  }
  return n;
}

absl::Status MergeMap(Node& target, const Node& patch, const std::string& context);

absl::Status MergeList(Node& target, const Node& patch, const std::string& field,
                       const std::string& context) {
  const char* known = KnownMergeKey(field, context);
  std::string key = known != nullptr ? known : InferKey(&target, &patch);
  // A list-level `$patch: replace` element replaces the list.
  for (const Node& item : patch.items()) {
    if (item.IsMap()) {
      const Node* p = item.Find("$patch");
      if (p != nullptr && p->scalar() == "replace") {
        target = StripDirectives(patch);
        return absl::OkStatus();
      }
    }
  }
  if (key.empty() || !target.IsSeq()) {
    target = StripDirectives(patch);
    return absl::OkStatus();
  }
  for (const Node& item : patch.items()) {
    if (!item.IsMap() || item.Find(key) == nullptr) {
      target = StripDirectives(patch);
      return absl::OkStatus();
    }
  }
  std::string child_context = field == "containers" || field == "initContainers" ||
                                      field == "ephemeralContainers"
                                  ? "container"
                                  : "";
  for (const Node& item : patch.items()) {
    const Node* kv = item.Find(key);
    Node* existing = nullptr;
    size_t idx = 0;
    for (size_t i = 0; i < target.items().size(); ++i) {
      const Node* tk = target.items()[i].Find(key);
      if (tk != nullptr && *tk == *kv) {
        existing = &target.items()[i];
        idx = i;
        break;
      }
    }
    const Node* directive = item.Find("$patch");
    if (directive != nullptr && directive->scalar() == "delete") {
      if (existing != nullptr) target.items().erase(target.items().begin() + idx);
      continue;
    }
    if (existing == nullptr) {
      target.items().push_back(StripDirectives(item));
      continue;
    }
    if (directive != nullptr && directive->scalar() == "replace") {
      *existing = StripDirectives(item);
      continue;
    }
    RETURN_IF_ERROR(MergeMap(*existing, item, child_context));
  }
  return absl::OkStatus();
}

absl::Status MergeMap(Node& target, const Node& patch, const std::string& context) {
  const Node* directive = patch.Find("$patch");
  if (directive != nullptr && directive->scalar() == "replace") {
    target = StripDirectives(patch);
    return absl::OkStatus();
  }
  if (!target.IsMap()) {
    target = StripDirectives(patch);
    return absl::OkStatus();
  }
  for (const auto& e : patch.entries()) {
    const std::string& k = e.first;
    if (IsDirectiveKey(k)) continue;
    const Node& pv = e.second;
    if (pv.IsNull()) {
      target.Erase(k);
      continue;
    }
    Node* tv = target.Find(k);
    if (pv.IsMap()) {
      const Node* d = pv.Find("$patch");
      if (d != nullptr && d->scalar() == "delete") {
        target.Erase(k);
        continue;
      }
      if (tv == nullptr || !tv->IsMap()) {
        target[k] = StripDirectives(pv);
        continue;
      }
      RETURN_IF_ERROR(MergeMap(*tv, pv, ""));
    } else if (pv.IsSeq()) {
      if (tv == nullptr || !tv->IsSeq()) {
        target[k] = StripDirectives(pv);
        continue;
      }
      RETURN_IF_ERROR(MergeList(*tv, pv, k, context));
    } else {
      target[k] = pv;
    }
  }
  return absl::OkStatus();
}

// JSON pointer segments ("/a/b~1c" -> {"a", "b/c"}).
absl::StatusOr<std::vector<std::string>> ParsePointer(const std::string& path) {
  std::vector<std::string> out;
  if (path.empty()) return out;
  if (path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON pointer \"", path, "\""));
  }
  for (absl::string_view raw : absl::StrSplit(absl::string_view(path).substr(1), '/')) {
    std::string seg;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && raw[i + 1] == '1') {
        seg += '/';
        ++i;
      } else if (raw[i] == '~' && i + 1 < raw.size() && raw[i + 1] == '0') {
        seg += '~';
        ++i;
      } else {
        seg += raw[i];
      }
    }
    out.push_back(seg);
  }
  return out;
}

absl::StatusOr<Node*> Resolve(Node& root, const std::vector<std::string>& segs, size_t count,
                              const std::string& path) {
  Node* cur = &root;
  for (size_t i = 0; i < count; ++i) {
    const std::string& s = segs[i];
    if (cur->IsMap()) {
      cur = cur->Find(s);
    } else if (cur->IsSeq()) {
      size_t idx;
      if (!absl::SimpleAtoi(s, &idx) || idx >= cur->items().size()) {
        cur = nullptr;
      } else {
        cur = &cur->items()[idx];
      }
    } else {
      cur = nullptr;
    }
    if (cur == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("doc is missing path: \"", path, "\""));
    }
  }
  return cur;
}

absl::Status Remove(Node& root, const std::vector<std::string>& segs, const std::string& path,
                    Node* removed) {
  if (segs.empty()) return absl::InvalidArgumentError("cannot remove the document root");
  ASSIGN_OR_RETURN(Node * parent, Resolve(root, segs, segs.size() - 1, path));
  const std::string& last = segs.back();
  if (parent->IsMap()) {
    Node* v = parent->Find(last);
    if (v == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unable to remove nonexistent key: ", last, ": missing value"));
    }
    if (removed != nullptr) *removed = *v;
    parent->Erase(last);
    return absl::OkStatus();
  }
  if (parent->IsSeq()) {
    size_t idx;
    if (!absl::SimpleAtoi(last, &idx) || idx >= parent->items().size()) {
      return absl::InvalidArgumentError(absl::StrCat("remove operation does not apply: doc is missing path: \"", path, "\""));
    }
    if (removed != nullptr) *removed = parent->items()[idx];
    parent->items().erase(parent->items().begin() + idx);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("doc is missing path: \"", path, "\""));
}

absl::Status Add(Node& root, const std::vector<std::string>& segs, const std::string& path,
                 Node value, bool replace) {
  if (segs.empty()) {
    root = std::move(value);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(Node * parent, Resolve(root, segs, segs.size() - 1, path));
  const std::string& last = segs.back();
  if (parent->IsMap()) {
    Node* v = parent->Find(last);
    if (replace && v == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("replace operation does not apply: doc is missing key: ", path));
    }
    (*parent)[last] = std::move(value);
    return absl::OkStatus();
  }
  if (parent->IsSeq()) {
    auto& items = parent->items();
    if (last == "-") {
      if (replace) return absl::InvalidArgumentError("replace: invalid index \"-\"");
      items.push_back(std::move(value));
      return absl::OkStatus();
    }
    size_t idx;
    if (!absl::SimpleAtoi(last, &idx) || idx > items.size() || (replace && idx == items.size())) {
      return absl::InvalidArgumentError(absl::StrCat("add operation does not apply: doc is missing path: \"", path, "\""));
    }
    if (replace) {
      items[idx] = std::move(value);
    } else {
      items.insert(items.begin() + idx, std::move(value));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("doc is missing path: \"", path, "\""));
}

}  // namespace

absl::Status ApplyStrategicMerge(Node& target, const Node& patch, bool* deleted) {
  *deleted = false;
  if (!patch.IsMap()) return absl::InvalidArgumentError("strategic merge patch must be a map");
  const Node* d = patch.Find("$patch");
  if (d != nullptr && d->scalar() == "delete") {
    *deleted = true;
    return absl::OkStatus();
  }
  return MergeMap(target, patch, "");
}

absl::Status ApplyJson6902(Node& target, const Node& ops) {
  if (!ops.IsSeq()) return absl::InvalidArgumentError("json6902 patch must be a list of operations");
  for (const Node& op : ops.items()) {
    if (!op.IsMap()) return absl::InvalidArgumentError("json6902 operation must be a map");
    std::string kind = op.GetString({"op"});
    std::string path = op.GetString({"path"});
    ASSIGN_OR_RETURN(std::vector<std::string> segs, ParsePointer(path));
    const Node* value = op.Find("value");
    if (kind == "add" || kind == "replace") {
      if (value == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(kind, " operation has no value"));
      }
      RETURN_IF_ERROR(Add(target, segs, path, *value, kind == "replace"));
    } else if (kind == "remove") {
      RETURN_IF_ERROR(Remove(target, segs, path, nullptr));
    } else if (kind == "move" || kind == "copy") {
      std::string from = op.GetString({"from"});
      ASSIGN_OR_RETURN(std::vector<std::string> fsegs, ParsePointer(from));
      Node v;
      if (kind == "move") {
        RETURN_IF_ERROR(Remove(target, fsegs, from, &v));
      } else {
        ASSIGN_OR_RETURN(Node * src, Resolve(target, fsegs, fsegs.size(), from));
        v = *src;
      }
      RETURN_IF_ERROR(Add(target, segs, path, std::move(v), false));
    } else if (kind == "test") {
      ASSIGN_OR_RETURN(Node * cur, Resolve(target, segs, segs.size(), path));
      if (value == nullptr || *cur != *value) {
        return absl::FailedPreconditionError(
            absl::StrCat("testing value ", path, " failed: test failed"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unexpected kind of operation: \"", kind, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace gitops::kustomize
