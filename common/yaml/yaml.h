// Kubernetes manifests from YAML: multi-document streams parsed into JSON
// values (the object model the API speaks). The only place yaml-cpp
// exceptions are caught for manifests.
#ifndef GITOPS_COMMON_YAML_YAML_H_
#define GITOPS_COMMON_YAML_YAML_H_

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::common {

// Splits a YAML stream at document markers ("---" lines) without parsing,
// since yaml-cpp 0.7's LoadAll can hang on hostile input (FACTS.md). Each
// piece keeps the 1-based line number it starts at.
struct YamlDocument {
  std::string text;
  int first_line = 1;
};
std::vector<YamlDocument> SplitYamlDocuments(absl::string_view stream);

// Parses every non-empty document into JSON. Plain scalars resolve as
// sigs.k8s.io/yaml does (YAML 1.1 booleans, ints, floats, null); quoted
// scalars stay strings. InvalidArgument names `source` and the line.
absl::StatusOr<std::vector<nlohmann::json>> ParseYamlDocuments(absl::string_view stream,
                                                               absl::string_view source);

// obj[key] when it is a string, else `fallback`. Never throws: plain YAML
// scalars resolve to numbers and booleans (`name: 2024`), and
// nlohmann::json::value() throws on such a type mismatch.
std::string StringField(const nlohmann::json& obj, const char* key,
                        const std::string& fallback = std::string());
// The string at a path of object keys (StringAt(obj, {"metadata", "name"})),
// or "" when a step is missing or not an object, or the value is not a string.
std::string StringAt(const nlohmann::json& obj, std::initializer_list<const char*> path);

// obj[key] when it is an integer, else `fallback`.
int64_t IntField(const nlohmann::json& obj, const char* key, int64_t fallback = 0);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_YAML_YAML_H_
