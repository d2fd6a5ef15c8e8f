#include "common/kube/config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace gitops::common {
namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("read ", path, ": no such file"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

// Finds the entry named `name` in a kubeconfig list (clusters, users, contexts).
YAML::Node Named(const YAML::Node& list, const std::string& name, const char* field) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& e : list) {
    if (e["name"] && e["name"].as<std::string>() == name) return e[field];
  }
  return YAML::Node();
}

std::string Scalar(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap() || !n[key] || !n[key].IsScalar()) return "";
  return n[key].as<std::string>();
}

absl::StatusOr<std::string> DataOrFile(const YAML::Node& n, const char* data_key,
                                       const char* file_key, const std::string& base_dir) {
  std::string data = Scalar(n, data_key);
  if (!data.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(data, &decoded)) {
      return absl::InvalidArgumentError(absl::StrCat(data_key, " is not valid base64"));
    }
    return decoded;
  }
  std::string file = Scalar(n, file_key);
  if (!file.empty()) return ReadWholeFile(Resolve(base_dir, file));
  return std::string();
}

absl::StatusOr<KubeConfig> ParseImpl(absl::string_view text, const std::string& base_dir,
                                     const std::string& want_context) {
  YAML::Node root = YAML::Load(std::string(text));
  if (!root.IsMap()) return absl::InvalidArgumentError("kubeconfig is not a YAML mapping");
  std::string context_name = want_context.empty() ? Scalar(root, "current-context") : want_context;
  if (context_name.empty()) return absl::InvalidArgumentError("kubeconfig has no current-context");
  YAML::Node ctx = Named(root["contexts"], context_name, "context");
  if (!ctx)
    return absl::InvalidArgumentError(absl::StrCat("context \"", context_name, "\" not found"));
  std::string cluster_name = Scalar(ctx, "cluster");
  std::string user_name = Scalar(ctx, "user");
  YAML::Node cluster = Named(root["clusters"], cluster_name, "cluster");
  if (!cluster) {
    return absl::InvalidArgumentError(absl::StrCat("cluster \"", cluster_name, "\" not found"));
  }
  KubeConfig cfg;
  cfg.server = Scalar(cluster, "server");
  if (cfg.server.empty()) return absl::InvalidArgumentError("cluster has no server");
  while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
  cfg.insecure_skip_tls_verify = Scalar(cluster, "insecure-skip-tls-verify") == "true";
  ASSIGN_OR_RETURN(cfg.ca_pem, DataOrFile(cluster, "certificate-authority-data",
                                          "certificate-authority", base_dir));
  std::string ns = Scalar(ctx, "namespace");
  if (!ns.empty()) cfg.default_namespace = ns;
  if (!user_name.empty()) {
    YAML::Node user = Named(root["users"], user_name, "user");
    if (!user)
      return absl::InvalidArgumentError(absl::StrCat("user \"", user_name, "\" not found"));
    cfg.bearer_token = Scalar(user, "token");
    std::string token_file = Scalar(user, "tokenFile");
    if (!token_file.empty()) cfg.token_file = Resolve(base_dir, token_file);
    ASSIGN_OR_RETURN(cfg.client_cert_pem,
                     DataOrFile(user, "client-certificate-data", "client-certificate", base_dir));
    ASSIGN_OR_RETURN(cfg.client_key_pem,
                     DataOrFile(user, "client-key-data", "client-key", base_dir));
    cfg.username = Scalar(user, "username");
    cfg.password = Scalar(user, "password");
    if (user["exec"] || user["auth-provider"]) {
      return absl::UnimplementedError(
          "kubeconfig exec and auth-provider plugins are not supported");
    }
  }
  return cfg;
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

absl::StatusOr<KubeConfig> ParseKubeConfig(absl::string_view yaml, const std::string& base_dir,
                                           const std::string& context) {
  try {
    return ParseImpl(yaml, base_dir, context);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("parse kubeconfig: ", e.what()));
  }
}

absl::StatusOr<KubeConfig> LoadKubeConfigFile(const std::string& path, const std::string& context) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  auto cfg = ParseKubeConfig(text, DirOf(path), context);
  if (!cfg.ok()) return Annotate(cfg.status(), "kubeconfig " + path);
  return cfg;
}

absl::StatusOr<KubeConfig> InClusterConfig(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    return absl::FailedPreconditionError(
        "not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
  }
  KubeConfig cfg;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  cfg.server = absl::StrCat("https://", h, ":", port);
  cfg.token_file = sa_dir + "/token";
  ASSIGN_OR_RETURN(cfg.bearer_token, ReadWholeFile(cfg.token_file));
  auto ca = ReadWholeFile(sa_dir + "/ca.crt");
  if (ca.ok()) cfg.ca_pem = *ca;
  auto ns = ReadWholeFile(sa_dir + "/namespace");
  if (ns.ok() && !ns->empty()) cfg.default_namespace = *ns;
  return cfg;
}

absl::StatusOr<KubeConfig> LoadDefaultKubeConfig(const std::string& kubeconfig_flag) {
  if (!kubeconfig_flag.empty()) return LoadKubeConfigFile(kubeconfig_flag);
  const char* env = std::getenv("KUBECONFIG");
  if (env != nullptr && *env != '\0') {
    for (absl::string_view p : absl::StrSplit(env, ':', absl::SkipEmpty())) {
      return LoadKubeConfigFile(std::string(p));
    }
  }
  auto in_cluster = InClusterConfig();
  if (in_cluster.ok()) return in_cluster;
  const char* home = std::getenv("HOME");
  if (home != nullptr) {
    std::string path = std::string(home) + "/.kube/config";
    if (std::ifstream(path).good()) return LoadKubeConfigFile(path);
  }
  return absl::FailedPreconditionError(
      "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a cluster");
}

}  // namespace gitops::common
