#include "test/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

#ifndef GITOPS_BIN_DIR
#define GITOPS_BIN_DIR "build/bin"
#endif

namespace gitops::testing {
namespace {

std::string Tail(const std::string& text, size_t n) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(std::vector<std::string> argv,
                                                              std::vector<std::string> extra_env,
                                                              std::string log_path) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  if (log_path.empty()) {
    std::string dir = MakeTempDir("proc-log");
    log_path = dir + "/output.log";
  }
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("open ", log_path, ": ", std::strerror(errno)));
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: own process group so a test can signal the whole tree.
    ::setpgid(0, 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    for (auto& e : extra_env) ::putenv(e.data());
    ::execvp(args[0], args.data());
    dprintf(STDERR_FILENO, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
  return std::unique_ptr<Subprocess>(new Subprocess(pid, log_path));
}

Subprocess::~Subprocess() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

void Subprocess::Signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

bool Subprocess::Running() {
  if (reaped_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("pid ", pid_, " still running"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return exit_code_;
}

std::string Subprocess::ReadLog() const {
  auto content = ReadFile(log_path_);
  return content.ok() ? *content : std::string();
}

absl::Status Subprocess::WaitForLog(absl::string_view needle, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::string log = ReadLog();
    if (log.find(std::string(needle)) != std::string::npos) return absl::OkStatus();
    if (!Running()) {
      return absl::AbortedError(absl::StrCat("process exited (", exit_code_, ") before logging \"",
                                             needle, "\"; log tail:\n", Tail(log, 2000)));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("no \"", needle, "\" in log after ",
                                                      absl::FormatDuration(timeout),
                                                      "; log tail:\n", Tail(log, 2000)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<std::string> Subprocess::WaitForLogField(absl::string_view msg,
                                                        absl::string_view field,
                                                        absl::Duration timeout) {
  std::string msg_token = absl::StrCat("\"msg\":\"", msg, "\"");
  std::string field_token = absl::StrCat("\"", field, "\":\"");
  absl::Status found = WaitForLog(msg_token, timeout);
  if (!found.ok()) return found;
  std::string log = ReadLog();
  size_t line_start = log.rfind('\n', log.find(msg_token));
  line_start = line_start == std::string::npos ? 0 : line_start + 1;
  size_t line_end = log.find('\n', line_start);
  std::string line = log.substr(line_start, line_end - line_start);
  size_t at = line.find(field_token);
  if (at == std::string::npos) {
    return absl::NotFoundError(absl::StrCat("no field ", field, " in: ", line));
  }
  at += field_token.size();
  return line.substr(at, line.find('"', at) - at);
}

absl::StatusOr<std::string> RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                                       const std::string& cwd) {
  std::string dir = MakeTempDir("run");
  std::string log = dir + "/out";
  std::vector<std::string> args = argv;
  if (!cwd.empty()) {
    args = {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", cwd};
    args.insert(args.end(), argv.begin(), argv.end());
  }
  auto proc = Subprocess::Start(args, {}, log);
  if (!proc.ok()) return proc.status();
  auto code = (*proc)->Wait(timeout);
  std::string output = (*proc)->ReadLog();
  RemoveTree(dir);
  if (!code.ok()) {
    return absl::DeadlineExceededError(
        absl::StrCat(absl::StrJoin(argv, " "), ": timed out; output:\n", Tail(output, 4000)));
  }
  if (*code != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), ": exit ", *code,
                                            "; output:\n", Tail(output, 4000)));
  }
  return output;
}

int PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

absl::Status WaitForPort(int port, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::close(fd);
    if (rc == 0) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("nothing listens on 127.0.0.1:", port));
}

std::string MakeTempDir(absl::string_view prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/gitops-", prefix, "-XXXXXX");
  char* dir = ::mkdtemp(tmpl.data());
  return dir ? std::string(dir) : std::string();
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::vector<std::string> ListTree(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    out.push_back(fs::relative(it->path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status WriteFile(const std::string& path, absl::string_view content) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat("open ", path, " for writing"));
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) return absl::InternalError(absl::StrCat("write ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string BinaryPath(absl::string_view name) { return absl::StrCat(GITOPS_BIN_DIR, "/", name); }

}  // namespace gitops::testing
