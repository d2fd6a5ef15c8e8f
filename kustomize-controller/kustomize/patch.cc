#include "kustomize-controller/kustomize/patch.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"

namespace gitops::kustomize {
namespace {

// A tiny slice of the Kubernetes OpenAPI schema: the node types whose lists
// kustomize merges by key (patchStrategy "merge") instead of replacing.
// kustomize knows nothing about other kinds, so their lists are replaced.
enum class Type {
  kNone,
  kKnownRoot,
  kPodRoot,
  kWorkloadRoot,
  kWorkloadSpec,
  kCronJobRoot,
  kCronJobSpec,
  kJobTemplate,
  kPodTemplateRoot,
  kPodTemplate,
  kPodSpec,
  kContainer,
  kServiceRoot,
  kServiceSpec,
  kWebhookRoot,
  kObjectMeta,
};

struct ListRule {
  bool merge = false;
  const char* key = nullptr;  // nullptr with merge: a set of scalars
  Type elem = Type::kNone;
};

Type RootType(const Node& obj) {
  static const std::set<std::string> kKnown = {"ConfigMap",
                                               "Secret",
                                               "ServiceAccount",
                                               "Namespace",
                                               "PersistentVolume",
                                               "PersistentVolumeClaim",
                                               "Role",
                                               "ClusterRole",
                                               "RoleBinding",
                                               "ClusterRoleBinding",
                                               "Ingress",
                                               "IngressClass",
                                               "NetworkPolicy",
                                               "HorizontalPodAutoscaler",
                                               "PodDisruptionBudget",
                                               "StorageClass",
                                               "PriorityClass",
                                               "Endpoints",
                                               "LimitRange",
                                               "ResourceQuota",
                                               "CustomResourceDefinition",
                                               "APIService",
                                               "Lease",
                                               "Event",
                                               "EndpointSlice",
                                               "RuntimeClass",
                                               "CSIDriver",
                                               "VolumeAttachment"};
  std::string kind = obj.GetString({"kind"});
  if (kind == "Pod") return Type::kPodRoot;
  if (kind == "Deployment" || kind == "ReplicaSet" || kind == "StatefulSet" ||
      kind == "DaemonSet" || kind == "Job" || kind == "ReplicationController") {
    return Type::kWorkloadRoot;
  }
  if (kind == "CronJob") return Type::kCronJobRoot;
  if (kind == "PodTemplate") return Type::kPodTemplateRoot;
  if (kind == "Service") return Type::kServiceRoot;
  if (kind == "ValidatingWebhookConfiguration" || kind == "MutatingWebhookConfiguration") {
    return Type::kWebhookRoot;
  }
  return kKnown.count(kind) ? Type::kKnownRoot : Type::kNone;
}

bool HasObjectMeta(Type t) {
  switch (t) {
    case Type::kKnownRoot:
    case Type::kPodRoot:
    case Type::kWorkloadRoot:
    case Type::kCronJobRoot:
    case Type::kPodTemplateRoot:
    case Type::kPodTemplate:
    case Type::kServiceRoot:
    case Type::kWebhookRoot:
    case Type::kJobTemplate:
      return true;
    default:
      return false;
  }
}

Type ChildType(Type t, const std::string& f) {
  if (f == "metadata" && HasObjectMeta(t)) return Type::kObjectMeta;
  switch (t) {
    case Type::kPodRoot:
      return f == "spec" ? Type::kPodSpec : Type::kNone;
    case Type::kWorkloadRoot:
      return f == "spec" ? Type::kWorkloadSpec : Type::kNone;
    case Type::kWorkloadSpec:
      return f == "template" ? Type::kPodTemplate : Type::kNone;
    case Type::kCronJobRoot:
      return f == "spec" ? Type::kCronJobSpec : Type::kNone;
    case Type::kCronJobSpec:
      return f == "jobTemplate" ? Type::kJobTemplate : Type::kNone;
    case Type::kJobTemplate:
      return f == "spec" ? Type::kWorkloadSpec : Type::kNone;
    case Type::kPodTemplateRoot:
      return f == "template" ? Type::kPodTemplate : Type::kNone;
    case Type::kPodTemplate:
      return f == "spec" ? Type::kPodSpec : Type::kNone;
    case Type::kServiceRoot:
      return f == "spec" ? Type::kServiceSpec : Type::kNone;
    default:
      return Type::kNone;
  }
}

ListRule ListRuleFor(Type t, const std::string& f) {
  switch (t) {
    case Type::kPodSpec:
      if (f == "containers" || f == "initContainers" || f == "ephemeralContainers") {
        return {true, "name", Type::kContainer};
      }
      if (f == "volumes" || f == "imagePullSecrets" || f == "resourceClaims" ||
          f == "schedulingGates") {
        return {true, "name", Type::kNone};
      }
      if (f == "hostAliases") return {true, "ip", Type::kNone};
      if (f == "topologySpreadConstraints") return {true, "topologyKey", Type::kNone};
      break;
    case Type::kContainer:
      if (f == "ports") return {true, "containerPort", Type::kNone};
      if (f == "env") return {true, "name", Type::kNone};
      if (f == "volumeMounts") return {true, "mountPath", Type::kNone};
      if (f == "volumeDevices") return {true, "devicePath", Type::kNone};
      break;
    case Type::kServiceSpec:
      if (f == "ports") return {true, "port", Type::kNone};
      break;
    case Type::kWebhookRoot:
      if (f == "webhooks") return {true, "name", Type::kNone};
      break;
    case Type::kObjectMeta:
      if (f == "finalizers") return {true, nullptr, Type::kNone};
      if (f == "ownerReferences") return {true, "uid", Type::kNone};
      break;
    default:
      break;
  }
  return {};
}

// kustomize v5 (kyaml) interprets only `$patch`; other `$` keys such as
// `$retainKeys` and `$setElementOrder/...` pass through as ordinary fields
// (checked against `kubectl kustomize`).
bool IsDirectiveKey(const std::string& k) { return k == "$patch"; }

// A value copied from a patch (kept as a seam; patch values keep their tag).
Node FromPatch(const Node& n) { return n; }

Node StripDirectives(const Node& n) {
  if (n.IsScalar()) return FromPatch(n);
  if (n.IsMap()) {
    Node out = Node::Map();
    for (const auto& e : n.entries()) {
      if (IsDirectiveKey(e.first)) continue;
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

absl::Status MergeMap(Node& target, const Node& patch, Type type);

// Two list elements are the same entry when their merge keys match; ports
// also compare their protocol (TCP when unset), as the schema's list keys do.
bool SameElement(const Node& a, const Node& b, const char* key) {
  const Node* ka = a.Find(key);
  const Node* kb = b.Find(key);
  if (ka == nullptr || kb == nullptr || *ka != *kb) return false;
  if (std::string(key) == "port" || std::string(key) == "containerPort") {
    std::string pa = a.GetString({"protocol"});
    std::string pb = b.GetString({"protocol"});
    if ((pa.empty() ? "TCP" : pa) != (pb.empty() ? "TCP" : pb)) return false;
  }
  return true;
}

absl::Status MergeList(Node& target, const Node& patch, const ListRule& rule) {
  for (const Node& item : patch.items()) {
    if (item.IsMap()) {
      const Node* p = item.Find("$patch");
      if (p != nullptr && p->scalar() == "replace") {
        target = StripDirectives(patch);
        return absl::OkStatus();
      }
    }
  }
  if (!rule.merge || !target.IsSeq()) {
    target = StripDirectives(patch);
    return absl::OkStatus();
  }
  std::vector<Node> result;
  std::vector<bool> used(target.items().size(), false);
  if (rule.key == nullptr) {
    // A set of scalars: the patch's values first, then the rest.
    for (const Node& item : patch.items()) {
      bool seen = false;
      for (const Node& r : result) seen = seen || r == item;
      if (!seen) result.push_back(item);
    }
    for (const Node& item : target.items()) {
      bool seen = false;
      for (const Node& r : result) seen = seen || r == item;
      if (!seen) result.push_back(item);
    }
    target.items() = std::move(result);
    return absl::OkStatus();
  }
  // Keyed: merged patch elements in patch order, then untouched elements.
  for (const Node& item : patch.items()) {
    if (!item.IsMap() || item.Find(rule.key) == nullptr) continue;
    int match = -1;
    for (size_t i = 0; i < target.items().size(); ++i) {
      if (!used[i] && target.items()[i].IsMap() && SameElement(target.items()[i], item, rule.key)) {
        match = static_cast<int>(i);
        break;
      }
    }
    const Node* directive = item.Find("$patch");
    bool del = directive != nullptr && directive->scalar() == "delete";
    if (match >= 0) used[match] = true;
    if (del) continue;
    if (match < 0) {
      result.push_back(StripDirectives(item));
      continue;
    }
    Node merged = target.items()[match];
    if (directive != nullptr && directive->scalar() == "replace") {
      merged = StripDirectives(item);
    } else {
      RETURN_IF_ERROR(MergeMap(merged, item, rule.elem));
    }
    result.push_back(std::move(merged));
  }
  for (size_t i = 0; i < target.items().size(); ++i) {
    if (!used[i]) result.push_back(target.items()[i]);
  }
  target.items() = std::move(result);
  return absl::OkStatus();
}

absl::Status MergeMap(Node& target, const Node& patch, Type type) {
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
      RETURN_IF_ERROR(MergeMap(*tv, pv, ChildType(type, k)));
    } else if (pv.IsSeq()) {
      if (tv == nullptr || !tv->IsSeq()) {
        target[k] = StripDirectives(pv);
        continue;
      }
      RETURN_IF_ERROR(MergeList(*tv, pv, ListRuleFor(type, k)));
    } else {
      target[k] = FromPatch(pv);
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
      return absl::InvalidArgumentError(
          absl::StrCat("remove operation does not apply: doc is missing path: \"", path, "\""));
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
      return absl::InvalidArgumentError(
          absl::StrCat("add operation does not apply: doc is missing path: \"", path, "\""));
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
  return MergeMap(target, patch, RootType(target));
}

absl::Status ApplyJson6902(Node& target, const Node& ops) {
  if (!ops.IsSeq())
    return absl::InvalidArgumentError("json6902 patch must be a list of operations");
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
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected kind of operation: \"", kind, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace gitops::kustomize
