#include "source-controller/git/deadline_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace gitops::source::internal {
namespace {

thread_local NetworkOperation* current_operation = nullptr;

// Layout must begin like libgit2 1.5's internal git_socket_stream
// {git_stream parent; char* host; char* port; GIT_SOCKET s;}: the SSH
// transport hands `s` straight to libssh2.
struct DeadlineSocketStream {
  git_stream parent;
  char* host;
  char* port;
  int s;
  NetworkOperation* op;
};

DeadlineSocketStream* Cast(git_stream* stream) {
  return reinterpret_cast<DeadlineSocketStream*>(stream);
}

void SetNetError(const std::string& message) { git_error_set_str(GIT_ERROR_NET, message.c_str()); }

int CloseSocket(DeadlineSocketStream* st) {
  if (st->s >= 0) {
    if (st->op != nullptr) st->op->RemoveSocket(st->s);
    ::close(st->s);
    st->s = -1;
  }
  return 0;
}

// Connects one address; returns the fd or -1 with errno set. ETIMEDOUT when
// the operation's deadline passes first.
int ConnectOne(const addrinfo* ai, NetworkOperation* op) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
  if (fd < 0) return -1;
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      int saved = errno;
      ::close(fd);
      errno = saved;
      return -1;
    }
    while (true) {
      int timeout_ms = -1;
      if (op != nullptr) {
        absl::Duration left = op->deadline() - absl::Now();
        timeout_ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(left)));
      }
      pollfd p{fd, POLLOUT, 0};
      int rc = ::poll(&p, 1, timeout_ms);
      if (rc < 0 && errno == EINTR) continue;
      if (rc <= 0) {
        ::close(fd);
        errno = rc == 0 ? ETIMEDOUT : errno;
        return -1;
      }
      break;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ::close(fd);
      errno = err;
      return -1;
    }
  }
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

int StreamConnect(git_stream* stream) {
  DeadlineSocketStream* st = Cast(stream);
  CloseSocket(st);
  NetworkOperation* op = st->op;
  if (op != nullptr && op->Expired()) {
    SetNetError("operation timed out");
    return -1;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int gai = ::getaddrinfo(st->host, st->port, &hints, &result);
  if (gai != 0) {
    if (op != nullptr) op->NoteConnectFailure();
    SetNetError(absl::StrCat("failed to resolve address for ", st->host, ": ", gai_strerror(gai)));
    return -1;
  }
  int fd = -1;
  int last_errno = 0;
  for (addrinfo* ai = result; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ConnectOne(ai, op);
    if (fd < 0) last_errno = errno;
    if (fd < 0 && last_errno == ETIMEDOUT) break;
  }
  ::freeaddrinfo(result);
  if (fd < 0) {
    if (op != nullptr) {
      if (last_errno == ETIMEDOUT) {
        op->MarkTimedOut();
      } else {
        op->NoteConnectFailure();
      }
    }
    SetNetError(absl::StrCat("failed to connect to ", st->host, ":", st->port, ": ",
                             std::strerror(last_errno)));
    return -1;
  }
  st->s = fd;
  if (op != nullptr) op->AddSocket(fd);
  return 0;
}

int StreamCertificate(git_cert** out, git_stream* stream) {
  SetNetError("plain socket has no certificate");
  return -1;
}

ssize_t StreamRead(git_stream* stream, void* data, size_t len) {
  DeadlineSocketStream* st = Cast(stream);
  ssize_t n;
  do {
    n = ::recv(st->s, data, len, 0);
  } while (n < 0 && errno == EINTR);
  if (st->op != nullptr && st->op->timed_out()) {
    SetNetError("operation timed out");
    return -1;
  }
  if (n < 0) {
    SetNetError(absl::StrCat("error receiving data from socket: ", std::strerror(errno)));
    return -1;
  }
  return n;
}

ssize_t StreamWrite(git_stream* stream, const char* data, size_t len, int flags) {
  DeadlineSocketStream* st = Cast(stream);
  ssize_t n;
  do {
    n = ::send(st->s, data, len, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (st->op != nullptr && st->op->timed_out()) {
      SetNetError("operation timed out");
    } else {
      SetNetError(absl::StrCat("error sending data: ", std::strerror(errno)));
    }
    return -1;
  }
  return n;
}

int StreamClose(git_stream* stream) { return CloseSocket(Cast(stream)); }

void StreamFree(git_stream* stream) {
  DeadlineSocketStream* st = Cast(stream);
  CloseSocket(st);
  std::free(st->host);
  std::free(st->port);
  delete st;
}

int StreamInit(git_stream** out, const char* host, const char* port) {
  auto* st = new DeadlineSocketStream();
  st->parent.version = GIT_STREAM_VERSION;
  st->parent.encrypted = 0;
  st->parent.proxy_support = 0;
  st->parent.connect = StreamConnect;
  st->parent.certificate = StreamCertificate;
  st->parent.set_proxy = nullptr;
  st->parent.read = StreamRead;
  st->parent.write = StreamWrite;
  st->parent.close = StreamClose;
  st->parent.free = StreamFree;
  st->host = ::strdup(host);
  st->port = ::strdup(port);
  st->s = -1;
  st->op = current_operation;
  *out = &st->parent;
  return 0;
}

}  // namespace

NetworkOperation::NetworkOperation(absl::Time deadline)
    : deadline_(deadline), watchdog_([this] { Watch(); }) {}

NetworkOperation::~NetworkOperation() {
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  watchdog_.join();
}

void NetworkOperation::Watch() {
  absl::MutexLock lock(&mu_);
  if (mu_.AwaitWithDeadline(absl::Condition(&done_), deadline_)) return;
  // Deadline passed: wake whatever blocks on our sockets. SHUT_RD (not
  // SHUT_RDWR) so a late write by libssh2 cannot raise SIGPIPE.
  timed_out_ = true;
  for (int fd : sockets_) ::shutdown(fd, SHUT_RD);
}

bool NetworkOperation::Expired() {
  absl::MutexLock lock(&mu_);
  if (!timed_out_ && absl::Now() >= deadline_) timed_out_ = true;
  return timed_out_;
}

bool NetworkOperation::timed_out() const {
  absl::MutexLock lock(&mu_);
  return timed_out_;
}

void NetworkOperation::MarkTimedOut() {
  absl::MutexLock lock(&mu_);
  timed_out_ = true;
}

bool NetworkOperation::connect_failed() const {
  absl::MutexLock lock(&mu_);
  return connect_failed_;
}

void NetworkOperation::NoteConnectFailure() {
  absl::MutexLock lock(&mu_);
  connect_failed_ = true;
}

void NetworkOperation::AddSocket(int fd) {
  absl::MutexLock lock(&mu_);
  sockets_.push_back(fd);
  if (timed_out_) ::shutdown(fd, SHUT_RD);
}

void NetworkOperation::RemoveSocket(int fd) {
  absl::MutexLock lock(&mu_);
  sockets_.erase(std::remove(sockets_.begin(), sockets_.end(), fd), sockets_.end());
}

ScopedNetworkOperation::ScopedNetworkOperation(NetworkOperation* op)
    : previous_(current_operation) {
  current_operation = op;
}

ScopedNetworkOperation::~ScopedNetworkOperation() { current_operation = previous_; }

int RegisterDeadlineSocketStream() {
  git_stream_registration registration{};
  registration.version = GIT_STREAM_VERSION;
  registration.init = StreamInit;
  registration.wrap = nullptr;
  return git_stream_register(GIT_STREAM_STANDARD, &registration);
}

}  // namespace gitops::source::internal
