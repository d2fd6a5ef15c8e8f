#include "test/apiserver/registry.h"

#include <algorithm>

namespace gitops::testing {
namespace {

ResourceInfo Builtin(std::string group, std::string version, std::string kind, std::string plural,
                     bool namespaced, std::vector<std::string> short_names, bool status,
                     bool generation) {
  ResourceInfo r;
  r.group = std::move(group);
  r.version = std::move(version);
  r.kind = std::move(kind);
  r.plural = std::move(plural);
  r.singular = r.kind;
  std::transform(r.singular.begin(), r.singular.end(), r.singular.begin(), ::tolower);
  r.namespaced = namespaced;
  r.short_names = std::move(short_names);
  r.status_subresource = status;
  r.has_generation = generation;
  return r;
}

// Kinds with an upstream preference order for `kubectl api-versions`.
int VersionRank(const std::string& v) {
  // v1 > v1beta2 > v1beta1 > v1alpha1, like Kubernetes' version priority.
  if (v.find("alpha") != std::string::npos) return 3;
  if (v.find("beta") != std::string::npos) return 2;
  return 1;
}

}  // namespace

Registry::Registry() {
  Add(Builtin("", "v1", "Namespace", "namespaces", false, {"ns"}, true, false));
  Add(Builtin("", "v1", "ConfigMap", "configmaps", true, {"cm"}, false, false));
  Add(Builtin("", "v1", "Secret", "secrets", true, {}, false, false));
  Add(Builtin("", "v1", "Service", "services", true, {"svc"}, true, false));
  Add(Builtin("", "v1", "ServiceAccount", "serviceaccounts", true, {"sa"}, false, false));
  Add(Builtin("", "v1", "Event", "events", true, {"ev"}, false, false));
  Add(Builtin("", "v1", "Pod", "pods", true, {"po"}, true, false));
  Add(Builtin("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, {"pvc"}, true,
              false));
  Add(Builtin("apps", "v1", "Deployment", "deployments", true, {"deploy"}, true, true));
  Add(Builtin("apps", "v1", "StatefulSet", "statefulsets", true, {"sts"}, true, true));
  Add(Builtin("apps", "v1", "DaemonSet", "daemonsets", true, {"ds"}, true, true));
  Add(Builtin("apps", "v1", "ReplicaSet", "replicasets", true, {"rs"}, true, true));
  Add(Builtin("batch", "v1", "Job", "jobs", true, {}, true, true));
  Add(Builtin("batch", "v1", "CronJob", "cronjobs", true, {"cj"}, true, true));
  Add(Builtin("events.k8s.io", "v1", "Event", "events", true, {"ev"}, false, false));
  Add(Builtin("coordination.k8s.io", "v1", "Lease", "leases", true, {}, false, false));
  Add(Builtin("networking.k8s.io", "v1", "Ingress", "ingresses", true, {"ing"}, true, true));
  Add(Builtin("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, {"netpol"},
              false, true));
  Add(Builtin("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, {"pdb"}, true,
              true));
  Add(Builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", true, {}, false, false));
  Add(Builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, {}, false,
              false));
  Add(Builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, {}, false,
              false));
  Add(Builtin("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false,
              {}, false, false));
  Add(Builtin("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
              false, {"crd", "crds"}, true, true));
}

void Registry::Add(ResourceInfo info) {
  resources_.push_back(std::make_unique<ResourceInfo>(std::move(info)));
}

const ResourceInfo* Registry::Find(const std::string& group, const std::string& version,
                                   const std::string& plural) const {
  for (const auto& r : resources_) {
    if (r->group == group && r->version == version && r->plural == plural) return r.get();
  }
  return nullptr;
}

std::vector<const ResourceInfo*> Registry::AllVersions(const std::string& group,
                                                       const std::string& plural) const {
  std::vector<const ResourceInfo*> out;
  for (const auto& r : resources_) {
    if (r->group == group && r->plural == plural) out.push_back(r.get());
  }
  return out;
}

void Registry::SetCrdResources(const std::string& crd_name, std::vector<ResourceInfo> infos) {
  RemoveCrd(crd_name);
  for (auto& info : infos) {
    info.crd_name = crd_name;
    Add(std::move(info));
  }
}

void Registry::RemoveCrd(const std::string& crd_name) {
  resources_.erase(std::remove_if(resources_.begin(), resources_.end(),
                                  [&](const std::unique_ptr<ResourceInfo>& r) {
                                    return r->crd_name == crd_name;
                                  }),
                   resources_.end());
}

std::vector<std::pair<std::string, std::vector<std::string>>> Registry::Groups() const {
  std::map<std::string, std::vector<std::string>> groups;
  for (const auto& r : resources_) {
    auto& versions = groups[r->group];
    if (std::find(versions.begin(), versions.end(), r->version) == versions.end()) {
      versions.push_back(r->version);
    }
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (auto& [group, versions] : groups) {
    std::stable_sort(versions.begin(), versions.end(),
                     [](const std::string& a, const std::string& b) {
                       int ra = VersionRank(a), rb = VersionRank(b);
                       if (ra != rb) return ra < rb;
                       return a > b;
                     });
    out.emplace_back(group, versions);
  }
  return out;
}

}  // namespace gitops::testing
