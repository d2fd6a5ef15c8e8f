// Socket set-up shared by our cpp-httplib servers.
#ifndef GITOPS_COMMON_HTTP_HTTPLIB_SOCKET_H_
#define GITOPS_COMMON_HTTP_HTTPLIB_SOCKET_H_

#include <httplib.h>
#include <sys/socket.h>

namespace gitops::common {

// SO_REUSEADDR only. cpp-httplib's default also sets SO_REUSEPORT, which
// lets a second process bind the same port and silently share its
// connections instead of failing with "address in use".
inline void UseExclusivePort(httplib::Server& server) {
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
}

}  // namespace gitops::common

#endif  // GITOPS_COMMON_HTTP_HTTPLIB_SOCKET_H_
