// Reading YAML streams into Nodes and writing Nodes back out byte for byte as
// kustomize v5 prints them (its output goes through JSON and a go-yaml v2
// encoder: sorted keys, compact sequences, width-80 folding, v2 quoting).
// The loader is the only place yaml-cpp is used; it never throws.
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_YAML_IO_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_YAML_IO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kustomize-controller/kustomize/node.h"

namespace gitops::kustomize {

// Limits that keep hostile input (alias bombs, huge documents) bounded.
struct LoadLimits {
  size_t max_nodes = 4'000'000;
};

// Parses a multi-document YAML stream. Empty and null documents are dropped.
// Scalars are resolved with kustomize's rules (YAML 1.2 core schema as in
// go-yaml v3, octal `0644`, dates). InvalidArgument with a line number on
// malformed input.
absl::StatusOr<std::vector<Node>> ParseYamlStream(absl::string_view text,
                                                  const LoadLimits& limits = {});

// Parses exactly one document (an empty input yields a null Node).
absl::StatusOr<Node> ParseYamlDocument(absl::string_view text, const LoadLimits& limits = {});

// Emits one document the way `kustomize build` prints a resource.
std::string EmitYaml(const Node& node);

// Compact JSON (keys sorted like Go's encoding/json, HTML-escaped like Go).
std::string EmitJson(const Node& node);

// The text a scalar prints as after kustomize's JSON round trip: decimal
// ints, Go %g floats, true/false, null, RFC 3339 dates; strings unchanged.
std::string CanonicalScalar(const Node& n);

// Resolves unquoted, untagged scalar text as kustomize's reader does (null,
// bool, int, float, date or string), keeping the text.
Node ResolvePlainScalar(const std::string& text);

// True when go-yaml v2 reads this unquoted text as a string (not a bool,
// number, null or date).
bool ReadsAsStringInYaml11(const std::string& text);

// go-yaml v2's map key order.
bool YamlKeyLess(const std::string& a, const std::string& b);

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_YAML_IO_H_
