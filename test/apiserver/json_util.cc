#include "test/apiserver/json_util.h"

#include "absl/strings/str_format.h"

namespace gitops::testing {

const nlohmann::json* Find(const nlohmann::json& obj, std::initializer_list<const char*> path) {
  const nlohmann::json* node = &obj;
  for (const char* key : path) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

std::string Str(const nlohmann::json& obj, std::initializer_list<const char*> path) {
  const nlohmann::json* v = Find(obj, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

std::string KubeTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

absl::Time ParseTime(const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return absl::InfinitePast();
  return t;
}

std::string HumanDuration(absl::Duration d) {
  int64_t seconds = absl::ToInt64Seconds(d);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return absl::StrFormat("%ds", seconds);
  int64_t minutes = seconds / 60;
  if (minutes < 10) {
    int64_t s = seconds % 60;
    return s == 0 ? absl::StrFormat("%dm", minutes) : absl::StrFormat("%dm%ds", minutes, s);
  }
  if (minutes < 60 * 3) return absl::StrFormat("%dm", minutes);
  int64_t hours = minutes / 60;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return m == 0 ? absl::StrFormat("%dh", hours) : absl::StrFormat("%dh%dm", hours, m);
  }
  if (hours < 48) return absl::StrFormat("%dh", hours);
  if (hours < 24 * 8) {
    int64_t h = hours % 24;
    return h == 0 ? absl::StrFormat("%dd", hours / 24) : absl::StrFormat("%dd%dh", hours / 24, h);
  }
  if (hours < 24 * 365 * 2) return absl::StrFormat("%dd", hours / 24);
  int64_t years = hours / 24 / 365;
  if (years < 8) return absl::StrFormat("%dy%dd", years, (hours / 24) % 365);
  return absl::StrFormat("%dy", years);
}

}  // namespace gitops::testing
