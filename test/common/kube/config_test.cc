#include "common/kube/config.h"

#include <cstdlib>

#include "gtest/gtest.h"
#include "test/support/process.h"

namespace gitops::common {
namespace {

using ::gitops::testing::MakeTempDir;
using ::gitops::testing::RemoveTree;
using ::gitops::testing::WriteFile;

constexpr char kConfig[] = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: Q0EgUEVN
- name: c2
  cluster: {server: "https://other:443", insecure-skip-tls-verify: true}
contexts:
- name: dev
  context: {cluster: c1, user: u1, namespace: team-a}
- name: other
  context: {cluster: c2, user: u2}
users:
- name: u1
  user: {token: abc}
- name: u2
  user: {tokenFile: token.txt, client-certificate: cert.pem, client-key: key.pem}
)";

TEST(KubeConfigTest, CurrentContextGivesServerCaTokenAndNamespace) {
  auto cfg = ParseKubeConfig(kConfig, "/nonexistent");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->server, "https://10.0.0.1:6443");
  EXPECT_EQ(cfg->ca_pem, "CA PEM");
  EXPECT_EQ(cfg->bearer_token, "abc");
  EXPECT_EQ(cfg->default_namespace, "team-a");
  EXPECT_FALSE(cfg->insecure_skip_tls_verify);
}

TEST(KubeConfigTest, NamedContextResolvesRelativeFiles) {
  std::string dir = MakeTempDir("kubeconfig");
  ASSERT_TRUE(WriteFile(dir + "/cert.pem", "CERT").ok());
  ASSERT_TRUE(WriteFile(dir + "/key.pem", "KEY").ok());
  auto cfg = ParseKubeConfig(kConfig, dir, "other");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->insecure_skip_tls_verify);
  EXPECT_EQ(cfg->token_file, dir + "/token.txt");
  EXPECT_EQ(cfg->client_cert_pem, "CERT");
  EXPECT_EQ(cfg->client_key_pem, "KEY");
  EXPECT_EQ(cfg->default_namespace, "default");
  RemoveTree(dir);
}

TEST(KubeConfigTest, MissingContextAndGarbageAreInvalidArgument) {
  EXPECT_EQ(ParseKubeConfig(kConfig, "", "nope").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKubeConfig("{{{", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKubeConfig("- a\n- b\n", "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KubeConfigTest, InClusterReadsServiceAccountFiles) {
  std::string dir = MakeTempDir("sa");
  ASSERT_TRUE(WriteFile(dir + "/token", "sa-token\n").ok());
  ASSERT_TRUE(WriteFile(dir + "/ca.crt", "CA").ok());
  ASSERT_TRUE(WriteFile(dir + "/namespace", "flux-system").ok());
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(InClusterConfig(dir).status().code(), absl::StatusCode::kFailedPrecondition);
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto cfg = InClusterConfig(dir);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->server, "https://10.96.0.1:443");
  EXPECT_EQ(cfg->ca_pem, "CA");
  EXPECT_EQ(cfg->default_namespace, "flux-system");
  EXPECT_EQ(cfg->token_file, dir + "/token");
  RemoveTree(dir);
}

}  // namespace
}  // namespace gitops::common
