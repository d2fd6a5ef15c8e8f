// Field specs: which field of which kinds a transformer touches, as
// kustomize's `fieldSpecs` (group/version/kind selector + slash path, `[]`
// for sequences, `\/` for a slash inside a key, `create`).
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_FIELDSPEC_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_FIELDSPEC_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kustomize-controller/kustomize/node.h"

namespace gitops::kustomize {

struct Gvk {
  std::string group;
  std::string version;
  std::string kind;
  // Parses apiVersion + kind of a resource.
  static Gvk Of(const Node& obj);
  // True when every non-empty field of `selector` equals ours.
  bool IsSelectedBy(const Gvk& selector) const;
  bool operator==(const Gvk& o) const {
    return group == o.group && version == o.version && kind == o.kind;
  }
};

struct FieldSpec {
  Gvk gvk;
  std::string path;
  std::vector<std::string> segments;
  bool create = false;
};

// Parses a list of field specs (a sequence of maps with path, group,
// version, kind, create). InvalidArgument on bad entries.
absl::StatusOr<std::vector<FieldSpec>> ParseFieldSpecs(const Node& list);
// Parses one of the built-in spec documents; its single key's list.
std::vector<FieldSpec> BuiltinSpecs(const char* yaml_text);
std::vector<std::string> SplitFieldPath(const std::string& path);

// Calls `fn` on every node at `spec`'s path inside `obj` (descending into
// sequences on the way). When the last field is missing and spec.create is
// set, creates it (intermediate maps too) as `create_kind` first. `fn`
// returns an error to stop.
using FieldFn = std::function<absl::Status(Node&)>;
absl::Status ApplyFieldSpec(Node& obj, const FieldSpec& spec, Node::Kind create_kind,
                            const FieldFn& fn);

// Kinds kustomize treats as cluster-scoped.
bool IsClusterScoped(const Gvk& gvk);

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_FIELDSPEC_H_
