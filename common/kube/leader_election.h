// Leader election on a coordination.k8s.io/v1 Lease, like client-go's
// leaderelection with a LeaseLock: one holder at a time; others take over
// once the holder has not renewed for lease_duration (measured on the local
// clock from when the record last changed, so clock skew does not matter);
// the leader gives up when it cannot renew within renew_deadline.
#ifndef GITOPS_COMMON_KUBE_LEADER_ELECTION_H_
#define GITOPS_COMMON_KUBE_LEADER_ELECTION_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kube/kube_client.h"

namespace gitops::common {

struct LeaderElectionConfig {
  std::string lease_namespace;
  std::string lease_name;
  std::string identity;  // unique per process, e.g. pod name + random suffix
  // Flux's defaults (--leader-election-lease-duration etc.).
  absl::Duration lease_duration = absl::Seconds(35);
  absl::Duration renew_deadline = absl::Seconds(30);
  absl::Duration retry_period = absl::Seconds(5);
  bool release_on_cancel = true;
};

struct LeaderCallbacks {
  std::function<void()> on_started_leading;
  std::function<void()> on_stopped_leading;
  std::function<void(const std::string& identity)> on_new_leader;
};

class LeaderElector {
 public:
  LeaderElector(KubeClient& client, LeaderElectionConfig config, LeaderCallbacks callbacks);

  // Blocks: campaigns until leader (or `stop`), calls on_started_leading,
  // renews until the lease is lost or `stop` is set, then (releasing the
  // lease on stop if configured) calls on_stopped_leading. Returns OK after a
  // stop, Aborted when leadership was lost.
  absl::Status Run(const std::atomic<bool>& stop);
  bool IsLeader() const { return leader_.load(); }

  // One acquire-or-renew attempt; true when we hold the lease afterwards.
  absl::StatusOr<bool> TryAcquireOrRenew();

 private:
  absl::Status Release();
  bool SleepUnlessStopped(absl::Duration d, const std::atomic<bool>& stop);

  KubeClient& client_;
  const LeaderElectionConfig config_;
  const LeaderCallbacks callbacks_;
  std::atomic<bool> leader_{false};
  std::string observed_record_;
  absl::Time observed_time_ = absl::InfinitePast();
  std::string last_leader_;
};

// Runs `start` once this process may work and `stop` when it must stop, then
// returns. With `config` null (no --enable-leader-election) `start` runs at
// once and `stop` after `shutdown` is set; OK. With a config, `start` runs on
// acquiring the lease; losing it calls `stop` and returns Aborted (the
// caller should exit, like controller-runtime), `shutdown` releases it.
absl::Status RunWithLeaderElection(KubeClient& client, const LeaderElectionConfig* config,
                                   const std::function<void()>& start,
                                   const std::function<void()>& stop,
                                   const std::atomic<bool>& shutdown);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_KUBE_LEADER_ELECTION_H_
