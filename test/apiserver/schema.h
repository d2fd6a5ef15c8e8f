// Structural-schema behaviour of custom resources: defaulting, pruning of
// unknown fields and OpenAPI v3 validation (the subset Flux's CRDs use:
// type, required, enum, pattern, format-free bounds, nullable,
// x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string).
#ifndef GITOPS_TEST_APISERVER_SCHEMA_H_
#define GITOPS_TEST_APISERVER_SCHEMA_H_

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "test/apiserver/merge.h"

namespace gitops::testing {

struct FieldError {
  std::string field;    // "spec.url"
  std::string reason;   // FieldValueRequired | FieldValueInvalid | FieldValueNotSupported ...
  std::string message;  // "Required value"
};

// Fills in `default`s for absent fields (recursively, like the apiserver).
void ApplyDefaults(nlohmann::json& obj, const nlohmann::json& schema);
// Drops fields the schema does not declare; their paths go to `unknown`.
void Prune(nlohmann::json& obj, const nlohmann::json& schema, std::vector<std::string>* unknown);
// Validates `obj` (apiVersion, kind and metadata are skipped at the root).
std::vector<FieldError> Validate(const nlohmann::json& obj, const nlohmann::json& schema);
// List shape from x-kubernetes-list-type / -list-map-keys along `field_path`.
ListShape SchemaListShape(const nlohmann::json& schema, const std::vector<std::string>& field_path);

}  // namespace gitops::testing

#endif  // GITOPS_TEST_APISERVER_SCHEMA_H_
