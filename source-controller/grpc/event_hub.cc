#include "source-controller/grpc/event_hub.h"

#include <random>

#include "absl/strings/str_format.h"

namespace gitops::source {
namespace {

std::string NewEpoch() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  return absl::StrFormat("%016x", gen());
}

}  // namespace

bool EventFilter::Matches(const v1::SourceReference& ref) const {
  return (kind.empty() || kind == ref.kind()) &&
         (namespace_name.empty() || namespace_name == ref.namespace_()) &&
         (name.empty() || name == ref.name());
}

ArtifactEventHub::ArtifactEventHub(size_t history)
    : history_(history == 0 ? 1 : history), epoch_(NewEpoch()) {}

ArtifactEventHub::Key ArtifactEventHub::KeyOf(const v1::SourceReference& ref) {
  return {ref.kind(), ref.namespace_(), ref.name()};
}

uint64_t ArtifactEventHub::AppendLocked(v1::ArtifactEvent event) {
  event.set_sequence(++sequence_);
  event.set_epoch(epoch_);
  log_.push_back(std::move(event));
  while (log_.size() > history_) log_.pop_front();
  return sequence_;
}

uint64_t ArtifactEventHub::PublishUpdated(const v1::Artifact& artifact) {
  absl::MutexLock lock(&mu_);
  Key key = KeyOf(artifact.source());
  auto it = current_.find(key);
  if (it != current_.end() && it->second.first.digest() == artifact.digest() &&
      it->second.first.revision() == artifact.revision()) {
    return it->second.second;
  }
  v1::ArtifactEvent event;
  event.set_type(v1::ArtifactEvent::UPDATED);
  *event.mutable_artifact() = artifact;
  uint64_t seq = AppendLocked(std::move(event));
  current_[key] = {artifact, seq};
  return seq;
}

uint64_t ArtifactEventHub::PublishDeleted(const v1::SourceReference& source) {
  absl::MutexLock lock(&mu_);
  auto it = current_.find(KeyOf(source));
  if (it == current_.end()) return 0;
  v1::ArtifactEvent event;
  event.set_type(v1::ArtifactEvent::DELETED);
  *event.mutable_artifact() = it->second.first;
  current_.erase(it);
  return AppendLocked(std::move(event));
}

std::optional<v1::Artifact> ArtifactEventHub::Current(const v1::SourceReference& source) const {
  absl::MutexLock lock(&mu_);
  auto it = current_.find(KeyOf(source));
  if (it == current_.end()) return std::nullopt;
  return it->second.first;
}

ArtifactEventHub::Snapshot ArtifactEventHub::TakeSnapshot(const EventFilter& filter) const {
  absl::MutexLock lock(&mu_);
  Snapshot snap;
  snap.sequence = sequence_;
  for (const auto& [key, entry] : current_) {
    if (!filter.Matches(entry.first.source())) continue;
    v1::ArtifactEvent event;
    event.set_type(v1::ArtifactEvent::UPDATED);
    event.set_sequence(entry.second);
    event.set_epoch(epoch_);
    *event.mutable_artifact() = entry.first;
    snap.events.push_back(std::move(event));
  }
  return snap;
}

bool ArtifactEventHub::CanResume(absl::string_view epoch, uint64_t sequence) const {
  absl::MutexLock lock(&mu_);
  if (epoch != epoch_ || sequence > sequence_) return false;
  if (sequence == sequence_) return true;
  // The first retained event must be the one right after `sequence` or earlier.
  return !log_.empty() && log_.front().sequence() <= sequence + 1;
}

absl::StatusOr<std::vector<v1::ArtifactEvent>> ArtifactEventHub::WaitForEvents(
    const EventFilter& filter, uint64_t after, absl::Time deadline, uint64_t* next_after,
    size_t max_events) {
  absl::MutexLock lock(&mu_);
  auto ready = [this, after]()
                   ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_ || sequence_ > after; };
  mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
  *next_after = after;
  if (shutdown_) return absl::CancelledError("source-controller is shutting down");
  if (sequence_ <= after) return std::vector<v1::ArtifactEvent>{};
  if (log_.empty() || log_.front().sequence() > after + 1) {
    return absl::OutOfRangeError("watcher fell behind the event history; resync required");
  }
  std::vector<v1::ArtifactEvent> out;
  for (const auto& event : log_) {
    if (event.sequence() <= after) continue;
    if (!filter.Matches(event.artifact().source())) continue;
    out.push_back(event);
    if (out.size() >= max_events) {
      *next_after = event.sequence();
      return out;
    }
  }
  *next_after = sequence_;
  return out;
}

void ArtifactEventHub::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

}  // namespace gitops::source
