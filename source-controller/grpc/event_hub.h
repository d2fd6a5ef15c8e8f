// The source-controller's artifact event history: the current artifact of
// every source and a bounded log of recent changes, with sequence numbers, so
// that watchers can get a snapshot and then every change, and reconnecting
// watchers can resume. No gRPC here; the server adapts it.
#ifndef GITOPS_SOURCE_CONTROLLER_GRPC_EVENT_HUB_H_
#define GITOPS_SOURCE_CONTROLLER_GRPC_EVENT_HUB_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gitops/artifact/v1/artifact.pb.h"

namespace gitops::source {

namespace v1 = ::gitops::artifact::v1;

// Which sources a watcher wants; empty fields match everything.
struct EventFilter {
  std::string kind;
  std::string namespace_name;
  std::string name;
  bool Matches(const v1::SourceReference& ref) const;
};

// Thread-safe. Publishers never block on watchers.
class ArtifactEventHub {
 public:
  // Keeps the last `history` events for resuming watchers.
  explicit ArtifactEventHub(size_t history = 4096);

  // Random per process: sequence numbers only compare within one epoch.
  const std::string& epoch() const { return epoch_; }

  // Records `artifact` as its source's current one and appends an UPDATED
  // event. Publishing the same digest again for a source is a no-op (returns
  // the sequence of the earlier event).
  uint64_t PublishUpdated(const v1::Artifact& artifact);
  // Forgets the source and appends a DELETED event carrying its last
  // artifact. No-op (returns 0) for an unknown source.
  uint64_t PublishDeleted(const v1::SourceReference& source);

  // The current artifact of a source.
  std::optional<v1::Artifact> Current(const v1::SourceReference& source) const;

  // Current artifacts matching `filter` (as UPDATED events carrying the
  // sequence they were published with) and the last sequence they cover,
  // taken atomically.
  struct Snapshot {
    std::vector<v1::ArtifactEvent> events;
    uint64_t sequence = 0;
  };
  Snapshot TakeSnapshot(const EventFilter& filter) const;

  // True when events after `sequence` of this epoch are still all in the
  // history, so a watcher can resume from it without a snapshot.
  bool CanResume(absl::string_view epoch, uint64_t sequence) const;

  // Waits until events with a sequence above `after` exist (or `deadline`,
  // or Shutdown) and returns those matching `filter`, in order, at most
  // `max_events` of them (so a slow watcher holds a bounded batch, not the
  // whole history), with the last sequence examined in `*next_after`.
  // OutOfRange when `after` has fallen out of the history (the watcher must
  // take a snapshot again); Cancelled after Shutdown.
  absl::StatusOr<std::vector<v1::ArtifactEvent>> WaitForEvents(
      const EventFilter& filter, uint64_t after, absl::Time deadline, uint64_t* next_after,
      size_t max_events = std::numeric_limits<size_t>::max());

  // Wakes every waiter; later waits return Cancelled at once.
  void Shutdown();

 private:
  using Key = std::tuple<std::string, std::string, std::string>;
  static Key KeyOf(const v1::SourceReference& ref);
  uint64_t AppendLocked(v1::ArtifactEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t history_;
  const std::string epoch_;
  mutable absl::Mutex mu_;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Current artifact and the sequence it was published at.
  std::map<Key, std::pair<v1::Artifact, uint64_t>> current_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::ArtifactEvent> log_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GRPC_EVENT_HUB_H_
