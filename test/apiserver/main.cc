// test-apiserver: the in-memory Kubernetes API server for tests and demos.
//
//   test-apiserver --port N --kubeconfig-out FILE [--plain-http] [--token T]
//
// Writes a kubeconfig for kubectl and our controllers, then prints
// "test-apiserver ready url=... kubeconfig=..." on stdout. SIGTERM/SIGINT stop it.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "test/apiserver/api_server.h"

ABSL_FLAG(int, port, 0, "TCP port on 127.0.0.1 (0 picks a free one)");
ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(std::string, kubeconfig_out, "", "where to write the kubeconfig");
ABSL_FLAG(bool, plain_http, false, "serve plain HTTP without authentication");
ABSL_FLAG(std::string, token, "", "bearer token to require (generated when empty)");
ABSL_FLAG(bool, client_cert_auth, false,
          "require a client certificate (written to the kubeconfig) instead of a token");
ABSL_FLAG(int, event_history, 10000, "watch events kept for resuming");

int main(int argc, char** argv) {
  // Accept --kubeconfig-out and --plain-http spellings (Abseil wants '_').
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> argp;
  for (auto& a : args) {
    if (a.rfind("--", 0) == 0) {
      size_t end = a.find('=');
      if (end == std::string::npos) end = a.size();
      for (size_t i = 2; i < end; ++i) {
        if (a[i] == '-') a[i] = '_';
      }
    }
    argp.push_back(a.data());
  }
  absl::ParseCommandLine(static_cast<int>(argp.size()), argp.data());
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  gitops::testing::ApiServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.plain_http = absl::GetFlag(FLAGS_plain_http);
  options.token = absl::GetFlag(FLAGS_token);
  options.client_cert_auth = absl::GetFlag(FLAGS_client_cert_auth);
  options.event_history = static_cast<size_t>(absl::GetFlag(FLAGS_event_history));
  auto server = gitops::testing::ApiServer::Start(options);
  if (!server.ok()) {
    std::cerr << "test-apiserver: " << server.status() << std::endl;
    return 1;
  }
  std::string out = absl::GetFlag(FLAGS_kubeconfig_out);
  if (!out.empty()) {
    std::string tmp = out + ".tmp";
    {
      std::ofstream f(tmp);
      f << (*server)->Kubeconfig();
      if (!f) {
        std::cerr << "test-apiserver: cannot write " << out << std::endl;
        return 1;
      }
    }
    if (std::rename(tmp.c_str(), out.c_str()) != 0) {
      std::cerr << "test-apiserver: cannot write " << out << std::endl;
      return 1;
    }
  }
  std::cout << "test-apiserver ready url=" << (*server)->url() << " port=" << (*server)->port()
            << " kubeconfig=" << out << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->Stop();
  return 0;
}
