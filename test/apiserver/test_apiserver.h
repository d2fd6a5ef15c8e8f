// Test fixture helper: runs build/bin/test-apiserver as a child process on a
// free port and hands out its kubeconfig, plus a kubectl runner bound to it.
//
//   auto server = TestApiServer::Start();          // HTTPS + bearer token
//   ASSERT_TRUE(server.ok()) << server.status();
//   (*server)->Kubectl({"apply", "-f", path});     // real kubectl
//   KubeConfig from (*server)->kubeconfig_path()   // our client
//
// Not thread-safe per object. The destructor kills the server and removes
// its temp directory.
#ifndef GITOPS_TEST_APISERVER_TEST_APISERVER_H_
#define GITOPS_TEST_APISERVER_TEST_APISERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "test/support/process.h"

namespace gitops::testing {

class TestApiServer {
 public:
  struct Options {
    bool plain_http = false;
    int port = 0;                   // 0 picks a free port
    std::string token;              // HTTPS bearer token; generated when empty
    bool client_cert_auth = false;  // HTTPS with client certificates, no token
    bool install_crds = false;      // `kubectl apply -f CrdDir()` once it serves
  };
  static absl::StatusOr<std::unique_ptr<TestApiServer>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<TestApiServer>> Start() { return Start(Options{}); }
  // Start() with the chart's CRDs applied.
  static absl::StatusOr<std::unique_ptr<TestApiServer>> StartWithCrds() {
    Options options;
    options.install_crds = true;
    return Start(options);
  }
  ~TestApiServer();

  const std::string& url() const { return url_; }
  int port() const { return port_; }
  const std::string& kubeconfig_path() const { return kubeconfig_path_; }
  // Stops the server (SIGTERM; all state is lost) and starts a fresh one on
  // the same port with the same options. With HTTPS the new server has a new
  // CA, so only plain-HTTP kubeconfigs stay valid across a restart.
  absl::Status Restart();
  // Stops the server; Restart() brings it back.
  void Stop();

  // A scratch directory that lives as long as the server.
  const std::string& dir() const { return dir_; }

  // Runs `kubectl --kubeconfig=... --cache-dir=<private> ARGS`. Returns its
  // combined output when it exits 0, Internal with the output otherwise.
  absl::StatusOr<std::string> Kubectl(const std::vector<std::string>& args,
                                      absl::Duration timeout = absl::Seconds(60)) const;
  // Starts kubectl in the background (for `get -w`); output in its log.
  absl::StatusOr<std::unique_ptr<Subprocess>> KubectlBackground(
      const std::vector<std::string>& args) const;
  // Writes `content` into dir() under `name` and returns the path.
  absl::StatusOr<std::string> WriteManifest(absl::string_view name,
                                            absl::string_view content) const;

  // POSTs a JSON body to one of the server's /testing/ endpoints via curl.
  absl::StatusOr<std::string> Testing(absl::string_view endpoint,
                                      absl::string_view json_body) const;

  // Path of charts/gitops-controllers/crds in the source tree.
  static std::string CrdDir();

 private:
  TestApiServer() = default;
  absl::Status Launch();
  Options options_;
  std::unique_ptr<Subprocess> process_;
  std::string dir_, url_, kubeconfig_path_, token_;
  int port_ = 0;
  bool plain_ = false;
};

}  // namespace gitops::testing

#endif  // GITOPS_TEST_APISERVER_TEST_APISERVER_H_
