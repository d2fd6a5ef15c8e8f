#include "common/kube/leader_election.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"

namespace gitops::common {
namespace {

using json = nlohmann::json;
const GroupVersionKind kLease{"coordination.k8s.io", "v1", "Lease"};

std::string MicroTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string SpecStr(const json& lease, const char* field) {
  if (!lease.contains("spec") || !lease["spec"].is_object()) return "";
  auto it = lease["spec"].find(field);
  return it != lease["spec"].end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t SpecInt(const json& lease, const char* field) {
  if (!lease.contains("spec") || !lease["spec"].is_object()) return 0;
  auto it = lease["spec"].find(field);
  return it != lease["spec"].end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

}  // namespace

LeaderElector::LeaderElector(KubeClient& client, LeaderElectionConfig config,
                             LeaderCallbacks callbacks)
    : client_(client), config_(std::move(config)), callbacks_(std::move(callbacks)) {}

absl::StatusOr<bool> LeaderElector::TryAcquireOrRenew() {
  absl::Time now = absl::Now();
  int64_t duration_s = std::max<int64_t>(1, absl::ToInt64Seconds(config_.lease_duration));
  auto got = client_.Get(kLease, config_.lease_namespace, config_.lease_name);
  if (absl::IsNotFound(got.status())) {
    json lease = {
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata", {{"name", config_.lease_name}, {"namespace", config_.lease_namespace}}},
        {"spec",
         {{"holderIdentity", config_.identity},
          {"leaseDurationSeconds", duration_s},
          {"acquireTime", MicroTime(now)},
          {"renewTime", MicroTime(now)},
          {"leaseTransitions", 0}}}};
    auto created = client_.Create(lease);
    if (!created.ok()) {
      if (absl::IsAlreadyExists(created.status())) return false;
      return created.status();
    }
    observed_record_ = created->dump();
    observed_time_ = now;
    return true;
  }
  if (!got.ok()) return got.status();
  json lease = *got;
  std::string holder = SpecStr(lease, "holderIdentity");
  std::string record = absl::StrCat(holder, "|", SpecStr(lease, "renewTime"));
  if (record != observed_record_) {
    observed_record_ = record;
    observed_time_ = now;
  }
  if (holder != last_leader_ && !holder.empty()) {
    last_leader_ = holder;
    if (callbacks_.on_new_leader) callbacks_.on_new_leader(holder);
  }
  int64_t their_duration = SpecInt(lease, "leaseDurationSeconds");
  absl::Duration valid_for =
      their_duration > 0 ? absl::Seconds(their_duration) : config_.lease_duration;
  bool held_by_other = !holder.empty() && holder != config_.identity;
  if (held_by_other && observed_time_ + valid_for > now) return false;

  json& spec = lease["spec"];
  if (holder != config_.identity) {
    spec["acquireTime"] = MicroTime(now);
    spec["leaseTransitions"] = SpecInt(lease, "leaseTransitions") + (holder.empty() ? 0 : 1);
  }
  spec["holderIdentity"] = config_.identity;
  spec["leaseDurationSeconds"] = duration_s;
  spec["renewTime"] = MicroTime(now);
  auto updated = client_.Update(lease);  // carries resourceVersion: one winner
  if (!updated.ok()) {
    if (IsConflict(updated.status())) return false;
    return updated.status();
  }
  observed_record_ = absl::StrCat(config_.identity, "|", MicroTime(now));
  observed_time_ = now;
  return true;
}

absl::Status LeaderElector::Release() {
  auto got = client_.Get(kLease, config_.lease_namespace, config_.lease_name);
  if (!got.ok()) return got.status();
  if (SpecStr(*got, "holderIdentity") != config_.identity) return absl::OkStatus();
  json lease = *got;
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  lease["spec"]["renewTime"] = MicroTime(absl::Now());
  return client_.Update(lease).status();
}

bool LeaderElector::SleepUnlessStopped(absl::Duration d, const std::atomic<bool>& stop) {
  absl::Time end = absl::Now() + d;
  while (!stop.load() && absl::Now() < end) {
    absl::SleepFor(std::min(absl::Milliseconds(20), end - absl::Now()));
  }
  return !stop.load();
}

absl::Status LeaderElector::Run(const std::atomic<bool>& stop) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  auto jittered = [&](absl::Duration d) {
    return d + d * std::uniform_real_distribution<double>(0, 0.2)(rng);
  };
  // Campaign.
  while (true) {
    if (stop.load()) return absl::OkStatus();
    auto ok = TryAcquireOrRenew();
    if (ok.ok() && *ok) break;
    if (!ok.ok()) {
      LogError("leader election: acquire failed",
               {{"lease", config_.lease_name}, {"error", ok.status().message()}});
    }
    if (!SleepUnlessStopped(jittered(config_.retry_period), stop)) return absl::OkStatus();
  }
  leader_ = true;
  LogInfo("leader election: acquired lease",
          {{"lease", config_.lease_name}, {"identity", config_.identity}});
  if (callbacks_.on_started_leading) callbacks_.on_started_leading();
  // Renew until lost or stopped.
  absl::Status result = absl::OkStatus();
  absl::Time last_renew = absl::Now();
  while (SleepUnlessStopped(config_.retry_period, stop)) {
    bool renewed = false;
    while (!stop.load() && absl::Now() - last_renew < config_.renew_deadline) {
      auto ok = TryAcquireOrRenew();
      if (ok.ok() && *ok) {
        renewed = true;
        last_renew = absl::Now();
        break;
      }
      if (ok.ok()) break;  // someone else holds it now
      if (!SleepUnlessStopped(std::min(config_.retry_period, absl::Milliseconds(500)), stop)) {
        break;
      }
    }
    if (stop.load()) break;
    if (!renewed) {
      result = absl::AbortedError(absl::StrCat("leader election lost lease ", config_.lease_name));
      break;
    }
  }
  leader_ = false;
  if (stop.load() && config_.release_on_cancel) {
    absl::Status st = Release();
    if (!st.ok()) LogError("leader election: release failed", {{"error", st.message()}});
  }
  LogInfo("leader election: stopped leading",
          {{"lease", config_.lease_name}, {"identity", config_.identity}});
  if (callbacks_.on_stopped_leading) callbacks_.on_stopped_leading();
  return result;
}

absl::Status RunWithLeaderElection(KubeClient& client, const LeaderElectionConfig* config,
                                   const std::function<void()>& start,
                                   const std::function<void()>& stop,
                                   const std::atomic<bool>& shutdown) {
  if (config == nullptr) {
    if (start) start();
    while (!shutdown.load()) absl::SleepFor(absl::Milliseconds(50));
    if (stop) stop();
    return absl::OkStatus();
  }
  LeaderElector elector(client, *config, {start, stop, nullptr});
  return elector.Run(shutdown);
}

}  // namespace gitops::common
