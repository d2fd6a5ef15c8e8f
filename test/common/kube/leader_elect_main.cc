// A process that campaigns for a Lease and reports, for the two-process
// leader election test:  leader-elect-helper KUBECONFIG IDENTITY LEASE_MS
// Prints "LEADER <id>" when it starts leading and "STOPPED <id>" when it
// stops; SIGTERM stops it (releasing the lease).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "common/kube/config.h"
#include "common/kube/http_kube_client.h"
#include "common/kube/leader_election.h"

namespace {
std::atomic<bool> g_stop{false};
void OnTerm(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s KUBECONFIG IDENTITY LEASE_MS\n", argv[0]);
    return 2;
  }
  std::signal(SIGTERM, OnTerm);
  auto cfg = gitops::common::LoadKubeConfigFile(argv[1]);
  if (!cfg.ok()) return 1;
  auto client = gitops::common::HttpKubeClient::Create(*cfg);
  if (!client.ok()) return 1;
  std::string id = argv[2];
  int lease_ms = std::atoi(argv[3]);
  gitops::common::LeaderElectionConfig config;
  config.lease_namespace = "default";
  config.lease_name = "helper-lock";
  config.identity = id;
  config.lease_duration = absl::Milliseconds(lease_ms);
  config.renew_deadline = absl::Milliseconds(lease_ms * 2 / 3);
  config.retry_period = absl::Milliseconds(lease_ms / 5);
  gitops::common::LeaderElector elector(**client, config,
                                        {[&] {
                                           std::printf("LEADER %s\n", id.c_str());
                                           std::fflush(stdout);
                                         },
                                         [&] {
                                           std::printf("STOPPED %s\n", id.c_str());
                                           std::fflush(stdout);
                                         },
                                         nullptr});
  absl::Status st = elector.Run(g_stop);
  return st.ok() ? 0 : 3;
}
