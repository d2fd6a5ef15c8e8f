// Process shutdown on SIGTERM / SIGINT.
#ifndef GITOPS_COMMON_RUNTIME_SHUTDOWN_H_
#define GITOPS_COMMON_RUNTIME_SHUTDOWN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gitops::common {

// Blocks SIGTERM and SIGINT in the calling thread (call from main before any
// thread starts, so every thread inherits the mask).
void BlockShutdownSignals();

// Waits until SIGTERM or SIGINT arrives, or `stop_requested` is set via
// RequestShutdown. Returns the signal's name ("SIGTERM", "SIGINT") or
// "requested".
std::string WaitForShutdownSignal();

// Makes WaitForShutdownSignal return (e.g. a fatal error in a worker).
void RequestShutdown();

// Host and port of a listen/dial address: ":9090", "0.0.0.0:9090",
// "127.0.0.1:0", "[::1]:9090", "host:9090". An empty host means all
// interfaces. InvalidArgument on anything else.
struct HostPort {
  std::string host;
  int port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_RUNTIME_SHUTDOWN_H_
