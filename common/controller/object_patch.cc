#include "common/controller/object_patch.h"

#include <algorithm>

#include "common/controller/conditions.h"
#include "common/yaml/yaml.h"

namespace gitops::common {
namespace {

using json = nlohmann::json;

json Finalizers(const json& obj) {
  if (obj.is_object() && obj.contains("metadata") && obj["metadata"].is_object() &&
      obj["metadata"].contains("finalizers") && obj["metadata"]["finalizers"].is_array()) {
    return obj["metadata"]["finalizers"];
  }
  return json::array();
}

absl::Status PatchFinalizers(KubeClient& client, json& obj, const json& finalizers) {
  json patch = {{"metadata",
                 {{"finalizers", finalizers.empty() ? json() : finalizers},
                  {"resourceVersion", common::StringAt(obj, {"metadata", "resourceVersion"})}}}};
  auto result =
      client.Patch(GroupVersionKind::Of(obj), common::StringAt(obj, {"metadata", "namespace"}),
                   common::StringAt(obj, {"metadata", "name"}), PatchType::kMerge, patch);
  if (!result.ok()) return result.status();
  obj = *result;
  return absl::OkStatus();
}

}  // namespace

bool HasFinalizer(const json& obj, absl::string_view finalizer) {
  json f = Finalizers(obj);
  return std::find(f.begin(), f.end(), std::string(finalizer)) != f.end();
}

absl::Status AddFinalizer(KubeClient& client, json& obj, absl::string_view finalizer) {
  if (HasFinalizer(obj, finalizer)) return absl::OkStatus();
  json f = Finalizers(obj);
  f.push_back(std::string(finalizer));
  return PatchFinalizers(client, obj, f);
}

absl::Status RemoveFinalizer(KubeClient& client, json& obj, absl::string_view finalizer) {
  if (!HasFinalizer(obj, finalizer)) return absl::OkStatus();
  json f = Finalizers(obj);
  f.erase(std::remove(f.begin(), f.end(), std::string(finalizer)), f.end());
  return PatchFinalizers(client, obj, f);
}

absl::Status PatchStatus(KubeClient& client, const json& before, json& after,
                         const std::string& field_manager) {
  json b = before.is_object() && before.contains("status") ? before["status"] : json::object();
  json a = after.is_object() && after.contains("status") ? after["status"] : json::object();
  json diff = CreateMergePatch(b, a);
  if (diff.is_object() && diff.empty()) return absl::OkStatus();
  WriteOptions opts;
  opts.field_manager = field_manager;
  auto result = client.Patch(
      GroupVersionKind::Of(after), common::StringAt(after, {"metadata", "namespace"}),
      common::StringAt(after, {"metadata", "name"}), PatchType::kMerge, {{"status", diff}}, opts,
      /*status=*/true);
  if (!result.ok()) return result.status();
  after = *result;
  return absl::OkStatus();
}

}  // namespace gitops::common
