// The set of resources the test API server serves: built-in kinds plus the
// kinds CustomResourceDefinitions add at run time. Not thread-safe; the
// server guards it with its own mutex.
#ifndef GITOPS_TEST_APISERVER_REGISTRY_H_
#define GITOPS_TEST_APISERVER_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace gitops::testing {

struct ResourceInfo {
  std::string group;    // "" for the core group
  std::string version;  // served version
  std::string kind;
  std::string plural;
  std::string singular;
  bool namespaced = true;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  bool status_subresource = false;
  bool has_generation = false;
  bool storage_version = true;
  // Set for kinds a CRD defines: the CRD name, the version's openAPIV3Schema
  // and additionalPrinterColumns.
  std::string crd_name;
  nlohmann::json schema;
  nlohmann::json printer_columns;

  std::string GroupVersion() const { return group.empty() ? version : group + "/" + version; }
  // "group/plural": objects of all versions of one kind share it.
  std::string StorageKey() const { return group + "/" + plural; }
  // "configmaps" or "gitrepositories.source.toolkit.fluxcd.io" (for messages).
  std::string QualifiedResource() const { return group.empty() ? plural : plural + "." + group; }
  std::string QualifiedKind() const { return group.empty() ? kind : kind + "." + group; }
};

class Registry {
 public:
  Registry();  // with the built-in kinds

  // Resource by group, version and plural name; nullptr when not served.
  const ResourceInfo* Find(const std::string& group, const std::string& version,
                           const std::string& plural) const;
  // Any served version of group/plural (for storage-wide operations).
  std::vector<const ResourceInfo*> AllVersions(const std::string& group,
                                               const std::string& plural) const;
  const std::vector<std::unique_ptr<ResourceInfo>>& all() const { return resources_; }

  // Replaces the kinds defined by CRD `crd_name` with `infos`.
  void SetCrdResources(const std::string& crd_name, std::vector<ResourceInfo> infos);
  void RemoveCrd(const std::string& crd_name);

  // Sorted, unique group names, "" first, and their versions in preference order.
  std::vector<std::pair<std::string, std::vector<std::string>>> Groups() const;

 private:
  void Add(ResourceInfo info);
  std::vector<std::unique_ptr<ResourceInfo>> resources_;
};

}  // namespace gitops::testing

#endif  // GITOPS_TEST_APISERVER_REGISTRY_H_
