// An in-memory Kubernetes API server for tests and demos: discovery, built-in
// kinds and kinds from CustomResourceDefinitions, CRUD with resourceVersion,
// generation and the status subresource, watch, label and field selectors,
// merge / strategic merge / server-side apply patches with managedFields,
// dryRun, finalizers, metav1.Status errors, bearer-token auth over HTTPS,
// impersonation with an allow/deny rule table, and fault switches.
//
// Test-only endpoints (same auth as the API):
//   POST /testing/faults  {"failNext":N,"failCode":500|429,"latencyMs":L,
//                          "dropWatches":true,"failWatches":bool,"compact":true,
//                          "workloads":bool}
//     failNext: the next N API requests fail with failCode; latencyMs: delay
//     every API request; dropWatches: end every open watch; failWatches: new
//     watches get 500 until cleared; compact: forget the event history so
//     watches from older resourceVersions get 410; workloads: simulate
//     Deployment/StatefulSet/DaemonSet/Job controllers (default true).
//   POST /testing/rules   [{"user":"u","verbs":["get"],"resources":["configmaps"],
//                           "namespaces":["ns"],"allow":true}]   ("*" matches all)
//   GET  /testing/requests  the impersonated requests seen so far
//
// Thread-safe. Never used by the product.
#ifndef GITOPS_TEST_APISERVER_API_SERVER_H_
#define GITOPS_TEST_APISERVER_API_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace gitops::testing {

struct ApiServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 picks a free port
  bool plain_http = false;
  // Bearer token every request must carry; generated when empty and HTTPS.
  std::string token;
  // HTTPS only: require a client certificate signed by the server's CA
  // instead of a token; the kubeconfig carries a generated one.
  bool client_cert_auth = false;
  // Watch events kept for resuming; older resourceVersions get 410 Gone.
  size_t event_history = 10000;
};

class ApiServer {
 public:
  // Binds and starts serving on background threads.
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(ApiServerOptions options);
  ~ApiServer();  // stops and joins
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  int port() const;
  // "https://127.0.0.1:PORT" or "http://...".
  std::string url() const;
  // A kubeconfig (YAML) with the server, CA data and token; current context
  // "test-apiserver", default namespace "default".
  std::string Kubeconfig() const;
  // Blocks until Stop() is called from another thread.
  void Wait();
  void Stop();

  class Impl;

 private:
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gitops::testing

#endif  // GITOPS_TEST_APISERVER_API_SERVER_H_
