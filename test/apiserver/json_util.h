// Small non-throwing accessors over nlohmann::json used across the test API
// server, plus Kubernetes time and duration formatting.
#ifndef GITOPS_TEST_APISERVER_JSON_UTIL_H_
#define GITOPS_TEST_APISERVER_JSON_UTIL_H_

#include <initializer_list>
#include <string>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace gitops::testing {

// The value at a path of object keys, or nullptr.
const nlohmann::json* Find(const nlohmann::json& obj, std::initializer_list<const char*> path);
// The string at a path, or "" when absent or not a string.
std::string Str(const nlohmann::json& obj, std::initializer_list<const char*> path);
// RFC 3339 with second precision in UTC, as metav1.Time serializes.
std::string KubeTime(absl::Time t);
absl::Time ParseTime(const std::string& text);
// Kubernetes' human-readable age ("5s", "3m2s", "4h", "12d").
std::string HumanDuration(absl::Duration d);

}  // namespace gitops::testing

#endif  // GITOPS_TEST_APISERVER_JSON_UTIL_H_
