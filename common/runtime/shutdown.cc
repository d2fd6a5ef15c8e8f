#include "common/runtime/shutdown.h"

#include <pthread.h>
#include <signal.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gitops::common {
namespace {

sigset_t ShutdownSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR2);  // RequestShutdown
  return set;
}

}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A peer closing a socket must never kill the process.
  signal(SIGPIPE, SIG_IGN);
}

std::string WaitForShutdownSignal() {
  sigset_t set = ShutdownSet();
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return "requested";
  }
}

void RequestShutdown() { kill(getpid(), SIGUSR2); }

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid address \"", address, "\": want host:port or :port"));
  };
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return invalid();
  HostPort hp;
  absl::string_view host = address.substr(0, colon);
  if (!host.empty() && host.front() == '[') {
    if (host.back() != ']') return invalid();
    host = host.substr(1, host.size() - 2);
  }
  hp.host = std::string(host);
  if (!absl::SimpleAtoi(address.substr(colon + 1), &hp.port) || hp.port < 0 || hp.port > 65535) {
    return invalid();
  }
  return hp;
}

}  // namespace gitops::common
