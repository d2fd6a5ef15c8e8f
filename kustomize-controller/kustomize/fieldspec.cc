#include "kustomize-controller/kustomize/fieldspec.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "kustomize-controller/kustomize/yaml_io.h"

namespace gitops::kustomize {

Gvk Gvk::Of(const Node& obj) {
  Gvk g;
  std::string api = obj.GetString({"apiVersion"});
  size_t slash = api.find('/');
  if (slash == std::string::npos) {
    g.version = api;
  } else {
    g.group = api.substr(0, slash);
    g.version = api.substr(slash + 1);
  }
  g.kind = obj.GetString({"kind"});
  return g;
}

bool Gvk::IsSelectedBy(const Gvk& s) const {
  return (s.group.empty() || s.group == group) && (s.version.empty() || s.version == version) &&
         (s.kind.empty() || s.kind == kind);
}

std::vector<std::string> SplitFieldPath(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '\\' && i + 1 < path.size() && path[i + 1] == '/') {
      cur += '/';
      ++i;
    } else if (path[i] == '/') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += path[i];
    }
  }
  out.push_back(cur);
  return out;
}

absl::StatusOr<std::vector<FieldSpec>> ParseFieldSpecs(const Node& list) {
  std::vector<FieldSpec> out;
  if (list.IsNull()) return out;
  if (!list.IsSeq()) return absl::InvalidArgumentError("fieldSpecs must be a list");
  for (const Node& item : list.items()) {
    if (!item.IsMap()) return absl::InvalidArgumentError("fieldSpecs entries must be maps");
    FieldSpec fs;
    fs.gvk.group = item.GetString({"group"});
    fs.gvk.version = item.GetString({"version"});
    fs.gvk.kind = item.GetString({"kind"});
    fs.path = item.GetString({"path"});
    const Node* c = item.Find("create");
    fs.create = c != nullptr && c->scalar() == "true";
    fs.segments = SplitFieldPath(fs.path);
    out.push_back(std::move(fs));
  }
  return out;
}

std::vector<FieldSpec> BuiltinSpecs(const char* yaml_text) {
  absl::StatusOr<Node> doc = ParseYamlDocument(yaml_text);
  if (!doc.ok() || !doc->IsMap() || doc->entries().empty()) return {};
  absl::StatusOr<std::vector<FieldSpec>> specs = ParseFieldSpecs(doc->entries()[0].second);
  if (!specs.ok()) return {};
  return *specs;
}

namespace {

absl::Status Apply(Node& node, const std::vector<std::string>& segs, size_t idx, bool create,
                   Node::Kind create_kind, const FieldFn& fn) {
  if (node.IsSeq()) {
    for (Node& item : node.items()) {
      RETURN_IF_ERROR(Apply(item, segs, idx, create, create_kind, fn));
    }
    return absl::OkStatus();
  }
  if (!node.IsMap()) return absl::OkStatus();
  std::string seg = segs[idx];
  bool seq = false;
  if (seg.size() > 2 && seg.compare(seg.size() - 2, 2, "[]") == 0) {
    seg.resize(seg.size() - 2);
    seq = true;
  }
  bool last = idx + 1 == segs.size();
  Node* child = node.Find(seg);
  if (child == nullptr || child->IsNull()) {
    if (!create || seq) return absl::OkStatus();
    Node& created = node[seg];
    if (last) {
      if (create_kind == Node::Kind::kMap) {
        created = Node::Map();
      } else if (create_kind == Node::Kind::kSeq) {
        created = Node::Seq();
      } else {
        created = Node::String("");
      }
      return fn(created);
    }
    created = Node::Map();
    return Apply(created, segs, idx + 1, create, create_kind, fn);
  }
  if (last) {
    if (child->IsSeq() && seq) {
      for (Node& item : child->items()) RETURN_IF_ERROR(fn(item));
      return absl::OkStatus();
    }
    return fn(*child);
  }
  return Apply(*child, segs, idx + 1, create, create_kind, fn);
}

}  // namespace

absl::Status ApplyFieldSpec(Node& obj, const FieldSpec& spec, Node::Kind create_kind,
                            const FieldFn& fn) {
  if (spec.segments.empty()) return absl::OkStatus();
  return Apply(obj, spec.segments, 0, spec.create, create_kind, fn);
}

bool IsClusterScoped(const Gvk& gvk) {
  // What kustomize's built-in OpenAPI schema (Kubernetes 1.21 era) marks as
  // cluster-scoped, by group and kind; kinds it does not know (newer APIs,
  // custom resources) are namespaced for it, and so for us.
  static const std::set<std::string> kKinds = {
      "/Namespace",
      "/Node",
      "/PersistentVolume",
      "/ComponentStatus",
      "rbac.authorization.k8s.io/ClusterRole",
      "rbac.authorization.k8s.io/ClusterRoleBinding",
      "apiextensions.k8s.io/CustomResourceDefinition",
      "apiregistration.k8s.io/APIService",
      "admissionregistration.k8s.io/MutatingWebhookConfiguration",
      "admissionregistration.k8s.io/ValidatingWebhookConfiguration",
      "storage.k8s.io/StorageClass",
      "storage.k8s.io/CSIDriver",
      "storage.k8s.io/CSINode",
      "storage.k8s.io/VolumeAttachment",
      "scheduling.k8s.io/PriorityClass",
      "networking.k8s.io/IngressClass",
      "node.k8s.io/RuntimeClass",
      "certificates.k8s.io/CertificateSigningRequest",
      "policy/PodSecurityPolicy",
  };
  if (kKinds.count(gvk.group + "/" + gvk.kind) > 0) return true;
  // Flow control existed only as alpha/beta then.
  if (gvk.group == "flowcontrol.apiserver.k8s.io" &&
      (gvk.kind == "FlowSchema" || gvk.kind == "PriorityLevelConfiguration")) {
    return gvk.version == "v1alpha1" || gvk.version == "v1beta1";
  }
  return false;
}

}  // namespace gitops::kustomize
