// Decodes the Kubernetes protobuf envelope ("k8s\0" + runtime.Unknown) for
// the few built-in kinds kubectl's imperative generators send as protobuf
// (`kubectl create namespace|configmap|secret|serviceaccount`), into the
// JSON the rest of the server works on.
#ifndef GITOPS_TEST_APISERVER_PROTOBUF_H_
#define GITOPS_TEST_APISERVER_PROTOBUF_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace gitops::testing {

// InvalidArgument on malformed input; Unimplemented for other kinds.
absl::StatusOr<nlohmann::json> DecodeKubeProtobuf(absl::string_view body);

}  // namespace gitops::testing

#endif  // GITOPS_TEST_APISERVER_PROTOBUF_H_
