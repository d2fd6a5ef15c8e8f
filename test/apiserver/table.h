// Server-side printing: converts objects to a meta.k8s.io/v1 Table the way
// `kubectl get` asks for it (Accept: application/json;as=Table;...), with a
// CRD's additionalPrinterColumns or a built-in kind's usual columns.
#ifndef GITOPS_TEST_APISERVER_TABLE_H_
#define GITOPS_TEST_APISERVER_TABLE_H_

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "test/apiserver/registry.h"

namespace gitops::testing {

// `include_object`: "None", "Object" or "PartialObjectMetadata" (default).
nlohmann::json ToTable(const ResourceInfo& res, const std::vector<nlohmann::json>& objects,
                       const std::string& include_object, bool with_columns);

// Evaluates the JSONPath subset printer columns use: ".a.b", "[0]",
// "[?(@.type==\"Ready\")]". Returns null when nothing matches.
nlohmann::json EvalJsonPath(const nlohmann::json& obj, const std::string& path);

}  // namespace gitops::testing

#endif  // GITOPS_TEST_APISERVER_TABLE_H_
