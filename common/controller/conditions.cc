#include "common/controller/conditions.h"

#include <algorithm>

namespace gitops::common {
namespace {

using json = nlohmann::json;

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

int Rank(const json& c) {
  std::string type = c.is_object() && c.contains("type") && c["type"].is_string()
                         ? c["type"].get<std::string>()
                         : "";
  if (type == kReadyCondition) return 0;
  if (type == kReconcilingCondition) return 1;
  if (type == kStalledCondition) return 2;
  return 3;
}

json Generation(const json& obj) {
  if (obj.contains("metadata") && obj["metadata"].is_object() &&
      obj["metadata"].contains("generation")) {
    return obj["metadata"]["generation"];
  }
  return 0;
}

}  // namespace

const json* FindCondition(const json& obj, absl::string_view type) {
  if (!obj.is_object() || !obj.contains("status") || !obj["status"].is_object()) return nullptr;
  auto it = obj["status"].find("conditions");
  if (it == obj["status"].end() || !it->is_array()) return nullptr;
  for (const auto& c : *it) {
    if (c.is_object() && c.contains("type") && c["type"] == std::string(type)) return &c;
  }
  return nullptr;
}

bool IsConditionTrue(const json& obj, absl::string_view type) {
  const json* c = FindCondition(obj, type);
  return c != nullptr && c->contains("status") && (*c)["status"] == kConditionTrue;
}

void SetCondition(json& obj, const Condition& c, absl::Time now) {
  if (!obj.contains("status") || !obj["status"].is_object()) obj["status"] = json::object();
  json& conds = obj["status"]["conditions"];
  if (!conds.is_array()) conds = json::array();
  json entry = {{"type", c.type},
                {"status", c.status},
                {"observedGeneration", Generation(obj)},
                {"lastTransitionTime", TimeText(now)},
                {"reason", c.reason},
                {"message", c.message}};
  bool found = false;
  for (auto& existing : conds) {
    if (!existing.is_object() || existing.value("type", "") != c.type) continue;
    if (existing.value("status", "") == c.status && existing.contains("lastTransitionTime")) {
      entry["lastTransitionTime"] = existing["lastTransitionTime"];
    }
    existing = entry;
    found = true;
  }
  if (!found) conds.push_back(entry);
  std::stable_sort(conds.begin(), conds.end(),
                   [](const json& a, const json& b) { return Rank(a) < Rank(b); });
}

void RemoveCondition(json& obj, absl::string_view type) {
  if (!obj.is_object() || !obj.contains("status") || !obj["status"].is_object()) return;
  json& conds = obj["status"]["conditions"];
  if (!conds.is_array()) return;
  conds.erase(std::remove_if(conds.begin(), conds.end(),
                             [&](const json& c) {
                               return c.is_object() && c.value("type", "") == std::string(type);
                             }),
              conds.end());
}

void SummarizeReady(json& obj, const absl::Status& result, absl::string_view ok_reason,
                    absl::string_view ok_message, absl::string_view failure_reason,
                    absl::Time now) {
  if (result.ok()) {
    SetCondition(obj,
                 {kReadyCondition, kConditionTrue, std::string(ok_reason), std::string(ok_message)},
                 now);
    RemoveCondition(obj, kReconcilingCondition);
    RemoveCondition(obj, kStalledCondition);
  } else if (result.code() == absl::StatusCode::kInvalidArgument) {
    SetCondition(obj,
                 {kReadyCondition, kConditionFalse, std::string(failure_reason),
                  std::string(result.message())},
                 now);
    SetCondition(obj,
                 {kStalledCondition, kConditionTrue, std::string(failure_reason),
                  std::string(result.message())},
                 now);
    RemoveCondition(obj, kReconcilingCondition);
  } else {
    SetCondition(obj,
                 {kReadyCondition, kConditionFalse, std::string(failure_reason),
                  std::string(result.message())},
                 now);
    SetCondition(obj,
                 {kReconcilingCondition, kConditionTrue, kProgressingWithRetryReason,
                  std::string(result.message())},
                 now);
    RemoveCondition(obj, kStalledCondition);
  }
  obj["status"]["observedGeneration"] = Generation(obj);
}

json CreateMergePatch(const json& before, const json& after) {
  if (!before.is_object() || !after.is_object()) return after;
  json patch = json::object();
  for (auto it = before.begin(); it != before.end(); ++it) {
    if (!after.contains(it.key())) patch[it.key()] = nullptr;
  }
  for (auto it = after.begin(); it != after.end(); ++it) {
    auto b = before.find(it.key());
    if (b == before.end()) {
      patch[it.key()] = it.value();
    } else if (*b != it.value()) {
      if (b->is_object() && it.value().is_object()) {
        patch[it.key()] = CreateMergePatch(*b, it.value());
      } else {
        patch[it.key()] = it.value();
      }
    }
  }
  return patch;
}

}  // namespace gitops::common
