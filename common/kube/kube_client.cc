#include "common/kube/kube_client.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace gitops::common {
namespace {

constexpr char kReasonUrl[] = "k8s.io/status-reason";
constexpr char kBodyUrl[] = "k8s.io/status-body";

absl::StatusCode CodeFor(long http, const std::string& reason) {
  switch (http) {
    case 400:
    case 415:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 405:
      return absl::StatusCode::kUnimplemented;
    case 409:
      return reason == "AlreadyExists" ? absl::StatusCode::kAlreadyExists
                                       : absl::StatusCode::kAborted;
    case 410:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      return http >= 500 ? absl::StatusCode::kUnavailable : absl::StatusCode::kUnknown;
  }
}

}  // namespace

GroupVersionKind GroupVersionKind::FromApiVersion(absl::string_view api_version,
                                                  absl::string_view kind) {
  GroupVersionKind gvk;
  size_t slash = api_version.find('/');
  if (slash == absl::string_view::npos) {
    gvk.version = std::string(api_version);
  } else {
    gvk.group = std::string(api_version.substr(0, slash));
    gvk.version = std::string(api_version.substr(slash + 1));
  }
  gvk.kind = std::string(kind);
  return gvk;
}

GroupVersionKind GroupVersionKind::Of(const nlohmann::json& obj) {
  std::string api_version, kind;
  if (obj.is_object()) {
    auto a = obj.find("apiVersion");
    if (a != obj.end() && a->is_string()) api_version = a->get<std::string>();
    auto k = obj.find("kind");
    if (k != obj.end() && k->is_string()) kind = k->get<std::string>();
  }
  return FromApiVersion(api_version, kind);
}

absl::Status RetryOnConflict(const std::function<absl::Status()>& fn, int attempts) {
  absl::Status st;
  for (int i = 0; i < std::max(1, attempts); ++i) {
    st = fn();
    if (!IsConflict(st)) return st;
  }
  return st;
}

std::string KubeReason(const absl::Status& status) {
  auto p = status.GetPayload(kReasonUrl);
  return p.has_value() ? std::string(*p) : std::string();
}

nlohmann::json KubeStatusBody(const absl::Status& status) {
  auto p = status.GetPayload(kBodyUrl);
  if (!p.has_value()) return nullptr;
  nlohmann::json j = nlohmann::json::parse(std::string(*p), nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

absl::Status StatusFromResponse(long http_code, absl::string_view body, absl::string_view context) {
  nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  std::string reason, message;
  bool is_status = !j.is_discarded() && j.is_object() && j.value("kind", "") == "Status";
  if (is_status) {
    if (j.contains("reason") && j["reason"].is_string()) reason = j["reason"].get<std::string>();
    if (j.contains("message") && j["message"].is_string()) {
      message = j["message"].get<std::string>();
    }
    if (j.contains("code") && j["code"].is_number_integer()) http_code = j["code"].get<long>();
  }
  if (message.empty()) {
    message = absl::StrCat("HTTP ", http_code, body.empty() ? "" : ": ", body.substr(0, 200));
  }
  absl::Status status(CodeFor(http_code, reason),
                      context.empty() ? message : absl::StrCat(context, ": ", message));
  if (!reason.empty()) status.SetPayload(kReasonUrl, absl::Cord(reason));
  if (is_status) status.SetPayload(kBodyUrl, absl::Cord(j.dump()));
  return status;
}

}  // namespace gitops::common
