// The kustomize build engine: reads a kustomization tree confined to a root
// directory and produces the resources kustomize v5.5 would, in its order.
// An Engine is cheap; use one per build. Not thread-safe.
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_ENGINE_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_ENGINE_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kustomize-controller/kustomize/fieldspec.h"
#include "kustomize-controller/kustomize/node.h"

namespace gitops::kustomize {

// One object in the build, with the history kustomize keeps to fix name
// references after renames.
struct Resource {
  Node obj;
  // Earlier (name, namespace) pairs, oldest first.
  std::vector<std::pair<std::string, std::string>> prev_ids;
  std::vector<std::string> prefixes;
  std::vector<std::string> suffixes;
  bool needs_hash = false;
  std::vector<std::string> ref_var_names;  // legacy `vars` that point here
  std::string behavior;                    // generators: create, merge, replace

  std::string name() const { return obj.GetString({"metadata", "name"}); }
  std::string ns() const { return obj.GetString({"metadata", "namespace"}); }
  std::string kind() const { return obj.GetString({"kind"}); }
  void SetName(const std::string& n);
  void SetNamespace(const std::string& n);
  void StorePreviousId() { prev_ids.emplace_back(name(), ns()); }
};

// Which fields each transformer touches: kustomize's built-in field specs
// plus whatever `configurations` files add.
struct TransformerConfig {
  struct NameRefRule {
    Gvk referral;
    std::vector<FieldSpec> specs;
  };
  std::vector<FieldSpec> common_labels;
  std::vector<FieldSpec> template_labels;
  std::vector<FieldSpec> common_annotations;
  std::vector<FieldSpec> namespace_specs;
  std::vector<FieldSpec> images;  // only those beyond the built-in container paths
  std::vector<FieldSpec> replicas;
  std::vector<FieldSpec> var_reference;
  std::vector<NameRefRule> name_reference;

  static const TransformerConfig& Builtin();
  // Adds the specs of a `configurations` file. InvalidArgument when malformed.
  absl::Status Merge(const Node& doc);
};

class Engine {
 public:
  // `root` bounds every file read (absolute or relative path).
  explicit Engine(std::string root);

  // Builds the kustomization in `dir` (under root). When `override` is
  // non-null it is used as the kustomization content of `dir` instead of a
  // file (Flux's generated kustomization).
  absl::StatusOr<std::vector<Resource>> Build(const std::string& dir,
                                              const Node* override_kustomization = nullptr);

  // kustomize's default load restriction: files (resources, patches,
  // generator sources) must sit in or below their kustomization's
  // directory. Flux turns it off (LoadRestrictionsNone); the root bound
  // always holds.
  void set_restrict_files_to_kustomization_dir(bool v) { restrict_files_ = v; }

  // Reads the kustomization file of `dir` (NotFound when there is none).
  absl::StatusOr<Node> LoadKustomization(const std::string& dir) const;

  // Prints resources as `kustomize build` does (`---` between documents).
  static std::string ToYaml(const std::vector<Resource>& resources);

 private:
  struct Target;
  absl::Status Accumulate(const std::string& dir, const Node* override_k, bool component,
                          std::vector<Resource>* ra, int depth);
  absl::Status MergeVars(const Node& vars, std::vector<Resource>* ra);
  absl::Status ResolveVars(std::vector<Resource>* ra);
  absl::StatusOr<std::string> ReadFile(const std::string& path) const;
  absl::StatusOr<std::string> Confine(const std::string& path) const;

  std::string root_;
  bool restrict_files_ = true;
  uint32_t next_share_id_ = 0;
  std::vector<Node> vars_;  // legacy `vars` of every kustomization in the build
  TransformerConfig config_ = TransformerConfig::Builtin();
};

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_ENGINE_H_
