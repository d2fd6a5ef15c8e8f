// Test helpers to run real programs (servers, our binaries, kubectl, git) as
// child processes on loopback. Not thread-safe per object.
#ifndef GITOPS_TEST_SUPPORT_PROCESS_H_
#define GITOPS_TEST_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gitops::testing {

// A child process whose stdout and stderr go to a log file. The destructor
// kills (SIGKILL) and reaps it if it is still running.
class Subprocess {
 public:
  // Starts argv[0] (looked up in PATH) with the current environment plus
  // `extra_env` ("KEY=VALUE"). Output goes to `log_path`, or to a fresh temp
  // file when empty. Stdin is /dev/null.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(std::vector<std::string> argv,
                                                           std::vector<std::string> extra_env = {},
                                                           std::string log_path = "");
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Sends `sig` to the process (no-op once reaped).
  void Signal(int sig);
  // Waits for exit. Returns the exit code, or 128+signal when killed by one.
  // DeadlineExceeded if it is still running after `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // True while the process has not exited.
  bool Running();
  // Everything the process wrote so far.
  std::string ReadLog() const;
  // Polls the log until it contains `needle`. DeadlineExceeded after
  // `timeout`, Aborted if the process exits first (the message quotes the log tail).
  absl::Status WaitForLog(absl::string_view needle, absl::Duration timeout);
  // Waits for a JSON log line whose "msg" is `msg` and returns the string
  // value of its `field` (our controllers log e.g. "grpc_port" that way).
  absl::StatusOr<std::string> WaitForLogField(absl::string_view msg, absl::string_view field,
                                              absl::Duration timeout);

 private:
  Subprocess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  bool reaped_ = false;
  int exit_code_ = -1;
};

// Runs a command to completion (stdin /dev/null). Returns its combined
// stdout+stderr when it exits 0; Internal with the output otherwise.
absl::StatusOr<std::string> RunCommand(const std::vector<std::string>& argv,
                                       absl::Duration timeout = absl::Seconds(120),
                                       const std::string& cwd = "");

// A TCP port on 127.0.0.1 that was free a moment ago.
int PickFreePort();
// Waits until something accepts TCP connections on 127.0.0.1:port.
absl::Status WaitForPort(int port, absl::Duration timeout);

// Creates a fresh directory under $TMPDIR (or /tmp); the caller removes it.
std::string MakeTempDir(absl::string_view prefix);
// rm -rf.
void RemoveTree(const std::string& path);
// Writes `content` to `path`, creating parent directories.
absl::Status WriteFile(const std::string& path, absl::string_view content);
// Reads a whole file.
absl::StatusOr<std::string> ReadFile(const std::string& path);
// Every path below `dir`, relative to it and sorted (symlinks not followed):
// for "nothing was added or removed" checks.
std::vector<std::string> ListTree(const std::string& dir);

// Path of a product binary built next to the tests (build/bin/NAME).
std::string BinaryPath(absl::string_view name);

}  // namespace gitops::testing

#endif  // GITOPS_TEST_SUPPORT_PROCESS_H_
