// Deadlines for libgit2 network I/O. libgit2 1.5 has no timeout option, so the
// fetcher registers a socket stream (GIT_STREAM_STANDARD, also under TLS) that
// bounds connect() by the operation's deadline and records every socket of
// the operation; a watchdog shuts those sockets down for reading when the
// deadline passes, which unblocks libgit2 and libssh2 wherever they wait.
// Internal to the libgit2 fetcher.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_DEADLINE_STREAM_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_DEADLINE_STREAM_H_

#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gitops::source::internal {

// State of one network operation (one ls-remote or fetch). Thread-safe.
class NetworkOperation {
 public:
  // Starts the watchdog thread.
  explicit NetworkOperation(absl::Time deadline);
  // Stops the watchdog.
  ~NetworkOperation();
  NetworkOperation(const NetworkOperation&) = delete;
  NetworkOperation& operator=(const NetworkOperation&) = delete;

  absl::Time deadline() const { return deadline_; }
  // True once the deadline passed (marks the operation timed out).
  bool Expired();
  bool timed_out() const;
  void MarkTimedOut();

  bool connect_failed() const;
  void NoteConnectFailure();

  void AddSocket(int fd);
  void RemoveSocket(int fd);

 private:
  void Watch();

  const absl::Time deadline_;
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool timed_out_ ABSL_GUARDED_BY(mu_) = false;
  bool connect_failed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int> sockets_ ABSL_GUARDED_BY(mu_);
  std::thread watchdog_;
};

// Makes `op` the operation whose deadline the streams opened on this thread
// obey, for the lifetime of the guard.
class ScopedNetworkOperation {
 public:
  explicit ScopedNetworkOperation(NetworkOperation* op);
  ~ScopedNetworkOperation();

 private:
  NetworkOperation* previous_;
};

// Registers the stream with libgit2. Call once, after git_libgit2_init.
// Returns libgit2's result code.
int RegisterDeadlineSocketStream();

}  // namespace gitops::source::internal

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_DEADLINE_STREAM_H_
