#include "test/apiserver/test_apiserver.h"

#include <csignal>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace gitops::testing {

#ifndef GITOPS_SOURCE_DIR
#define GITOPS_SOURCE_DIR "."
#endif

std::string TestApiServer::CrdDir() {
  return absl::StrCat(GITOPS_SOURCE_DIR, "/charts/gitops-controllers/crds");
}

absl::StatusOr<std::unique_ptr<TestApiServer>> TestApiServer::Start(Options options) {
  std::unique_ptr<TestApiServer> s(new TestApiServer());
  s->dir_ = MakeTempDir("test-apiserver");
  s->kubeconfig_path_ = s->dir_ + "/kubeconfig";
  s->plain_ = options.plain_http;
  s->options_ = options;
  absl::Status st = s->Launch();
  if (!st.ok()) return st;
  if (options.install_crds) {
    auto out = s->Kubectl({"apply", "-f", CrdDir()});
    if (!out.ok()) return out.status();
  }
  return s;
}

absl::Status TestApiServer::Launch() {
  std::vector<std::string> argv = {BinaryPath("test-apiserver"),
                                   absl::StrCat("--port=", options_.port),
                                   "--kubeconfig-out=" + kubeconfig_path_};
  if (options_.plain_http) argv.push_back("--plain-http");
  if (!options_.token.empty()) argv.push_back("--token=" + options_.token);
  if (options_.client_cert_auth) argv.push_back("--client-cert-auth");
  auto proc = Subprocess::Start(argv, {}, dir_ + "/server.log");
  if (!proc.ok()) return proc.status();
  process_ = std::move(*proc);
  absl::Status ready = process_->WaitForLog("test-apiserver ready", absl::Seconds(20));
  if (!ready.ok()) return ready;
  std::string log = process_->ReadLog();
  size_t at = log.rfind("url=");
  size_t port_at = log.find(" port=", at);
  if (at == std::string::npos || port_at == std::string::npos) {
    return absl::InternalError("no url in test-apiserver output: " + log);
  }
  url_ = log.substr(at + 4, port_at - at - 4);
  size_t port_end = log.find(' ', port_at + 6);
  absl::SimpleAtoi(log.substr(port_at + 6, port_end - port_at - 6), &port_);
  // Restarts keep the port the first start picked.
  options_.port = port_;
  auto kc = ReadFile(kubeconfig_path_);
  if (!kc.ok()) return kc.status();
  size_t tok = kc->find("token: ");
  if (tok != std::string::npos) {
    size_t end = kc->find('\n', tok);
    token_ = kc->substr(tok + 7, end - tok - 7);
    options_.token = token_;
  }
  return absl::OkStatus();
}

void TestApiServer::Stop() {
  if (!process_) return;
  process_->Signal(SIGTERM);
  if (!process_->Wait(absl::Seconds(5)).ok()) process_->Signal(SIGKILL);
  process_.reset();
}

absl::Status TestApiServer::Restart() {
  Stop();
  // The port may linger in TIME_WAIT for a moment; the server binds with
  // SO_REUSEADDR, so a short retry loop suffices.
  absl::Status st;
  for (int i = 0; i < 20; ++i) {
    st = Launch();
    if (st.ok()) return st;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return st;
}

TestApiServer::~TestApiServer() {
  Stop();
  RemoveTree(dir_);
}

absl::StatusOr<std::string> TestApiServer::Kubectl(const std::vector<std::string>& args,
                                                   absl::Duration timeout) const {
  std::vector<std::string> argv = {"kubectl", "--kubeconfig=" + kubeconfig_path_,
                                   "--cache-dir=" + dir_ + "/kubectl-cache"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

absl::StatusOr<std::unique_ptr<Subprocess>> TestApiServer::KubectlBackground(
    const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"kubectl", "--kubeconfig=" + kubeconfig_path_,
                                   "--cache-dir=" + dir_ + "/kubectl-cache"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Subprocess::Start(argv);
}

absl::StatusOr<std::string> TestApiServer::WriteManifest(absl::string_view name,
                                                         absl::string_view content) const {
  std::string path = absl::StrCat(dir_, "/", name);
  absl::Status st = WriteFile(path, content);
  if (!st.ok()) return st;
  return path;
}

absl::StatusOr<std::string> TestApiServer::Testing(absl::string_view endpoint,
                                                   absl::string_view json_body) const {
  std::vector<std::string> argv = {"curl",
                                   "-sS",
                                   "-k",
                                   "-X",
                                   "POST",
                                   "--data-binary",
                                   std::string(json_body),
                                   "-H",
                                   "Content-Type: application/json"};
  if (!token_.empty()) {
    argv.push_back("-H");
    argv.push_back("Authorization: Bearer " + token_);
  }
  argv.push_back(absl::StrCat(url_, "/testing/", endpoint));
  return RunCommand(argv, absl::Seconds(20));
}

}  // namespace gitops::testing
