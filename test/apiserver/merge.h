// Pure functions over JSON objects for the test API server's write paths:
// JSON merge patch (RFC 7386), strategic merge patch (the subset kubectl
// sends), and the field sets behind server-side apply (managedFields).
#ifndef GITOPS_TEST_APISERVER_MERGE_H_
#define GITOPS_TEST_APISERVER_MERGE_H_

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace gitops::testing {

enum class ListType { kAtomic, kMap, kSet };
struct ListShape {
  ListType type = ListType::kAtomic;
  std::vector<std::string> keys;  // for kMap
};
// Names of the object fields from the root to a list (list items skipped),
// e.g. {"spec", "template", "spec", "containers"}.
using ListShapeFn = std::function<ListShape(const std::vector<std::string>& field_path)>;

// RFC 7386: objects merge, null deletes, anything else replaces.
nlohmann::json MergePatch(nlohmann::json target, const nlohmann::json& patch);

// Strategic merge patch: like MergePatch, but lists of shape kMap merge by key
// (items with "$patch": "delete" are removed), kSet lists union, and the
// directives $setElementOrder/, $retainKeys and $deleteFromPrimitiveList/ are
// honoured or dropped.
nlohmann::json StrategicMergePatch(nlohmann::json target, const nlohmann::json& patch,
                                   const ListShapeFn& shape);

// A field path in managedFields' FieldsV1 notation: "f:name", "k:{json}",
// "v:json". A set holds leaves and list items.
using FieldPath = std::vector<std::string>;
using FieldSet = std::set<FieldPath>;

FieldSet FieldsOf(const nlohmann::json& obj, const ListShapeFn& shape);
nlohmann::json FieldSetToV1(const FieldSet& set);
FieldSet FieldSetFromV1(const nlohmann::json& v1);
// The value at `path`, or nullptr.
const nlohmann::json* ValueAt(const nlohmann::json& obj, const FieldPath& path);
// Removes the field or list item at `path` if present.
void RemoveAt(nlohmann::json& obj, const FieldPath& path);
// ".spec.containers[name=\"app\"].image", as Kubernetes prints conflicts.
std::string FieldPathString(const FieldPath& path);
// Merges an applied configuration into `live`: objects recursively, kMap
// lists by key, kSet lists as a union, atomic lists and scalars replaced.
nlohmann::json ApplyMerge(nlohmann::json live, const nlohmann::json& applied,
                          const ListShapeFn& shape);

}  // namespace gitops::testing

#endif  // GITOPS_TEST_APISERVER_MERGE_H_
