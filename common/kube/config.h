// Where and how to reach the Kubernetes API: parsed from a kubeconfig file or
// from the in-cluster service account. Plain values; no I/O after loading.
#ifndef GITOPS_COMMON_KUBE_CONFIG_H_
#define GITOPS_COMMON_KUBE_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gitops::common {

struct KubeConfig {
  std::string server;  // "https://host:port"
  std::string ca_pem;  // trusted CA bundle (PEM); empty = system trust store
  bool insecure_skip_tls_verify = false;
  std::string bearer_token;
  // Re-read before each request when set (projected tokens rotate).
  std::string token_file;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string username, password;  // basic auth (rare)
  std::string default_namespace = "default";
  std::string user_agent = "gitops-controllers";
  // Client-side rate limit (Flux: --kube-api-qps=50, --kube-api-burst=300).
  double qps = 50;
  int burst = 300;
  absl::Duration timeout = absl::Seconds(30);  // per non-watch request
};

// Parses kubeconfig YAML. `context` empty = current-context. Relative file
// paths resolve against `base_dir`. InvalidArgument on malformed input or a
// missing context/cluster/user; NotFound when a referenced file is missing.
absl::StatusOr<KubeConfig> ParseKubeConfig(absl::string_view yaml, const std::string& base_dir,
                                           const std::string& context = "");
absl::StatusOr<KubeConfig> LoadKubeConfigFile(const std::string& path,
                                              const std::string& context = "");
// From KUBERNETES_SERVICE_HOST/PORT and /var/run/secrets/kubernetes.io/serviceaccount
// (`sa_dir` overrides the directory for tests). FailedPrecondition when not in a cluster.
absl::StatusOr<KubeConfig> InClusterConfig(
    const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");
// controller-runtime's order: `kubeconfig_flag`, then $KUBECONFIG (first
// file), then in-cluster, then ~/.kube/config.
absl::StatusOr<KubeConfig> LoadDefaultKubeConfig(const std::string& kubeconfig_flag = "");

}  // namespace gitops::common

#endif  // GITOPS_COMMON_KUBE_CONFIG_H_
