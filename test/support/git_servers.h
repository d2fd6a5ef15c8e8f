// Real Git servers on loopback for tests: repositories built with the git
// CLI, `git daemon` (git://), nginx + fcgiwrap + git http-backend (http and
// https with basic auth or a bearer token), and a private sshd (ssh://).
// Every server runs on a free port in its own temp dir; destructors kill the
// whole process group and remove the dir. Meant to run as root. Objects are
// not thread-safe.
#ifndef GITOPS_TEST_SUPPORT_GIT_SERVERS_H_
#define GITOPS_TEST_SUPPORT_GIT_SERVERS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "test/support/process.h"

namespace gitops::testing {

// Runs `git -C dir args...` with a fixed identity; returns its output
// (trailing newline stripped).
absl::StatusOr<std::string> Git(const std::string& dir, const std::vector<std::string>& args);

// `git init --bare path`.
absl::Status InitBareRepo(const std::string& path);

// A working repository (non-bare) driven by the git CLI.
class GitWorkRepo {
 public:
  // `git init -b <branch> dir`.
  static absl::StatusOr<GitWorkRepo> Create(const std::string& dir,
                                            absl::string_view branch = "main");
  const std::string& dir() const { return dir_; }

  // Writes `files` (path -> content, relative to the repo), stages everything
  // and commits. Returns the new commit's sha.
  absl::StatusOr<std::string> Commit(absl::string_view message,
                                     const std::vector<std::pair<std::string, std::string>>& files);
  // A lightweight tag / an annotated tag on `target`.
  absl::Status Tag(absl::string_view name, absl::string_view target = "HEAD");
  absl::Status AnnotatedTag(absl::string_view name, absl::string_view message,
                            absl::string_view target = "HEAD");
  // `git checkout -B name` (creates or resets the branch, switches to it).
  absl::Status CheckoutNewBranch(absl::string_view name);
  absl::Status Checkout(absl::string_view name);
  absl::StatusOr<std::string> RevParse(absl::string_view rev);
  // Force-pushes every branch and tag to `remote` (a path or URL).
  absl::Status PushAll(const std::string& remote);
  // Force-pushes `source` (a rev) to ref `dest` on `remote`.
  absl::Status Push(const std::string& remote, absl::string_view source, absl::string_view dest);

 private:
  explicit GitWorkRepo(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// A process group leader that is SIGKILLed with its group on destruction.
class ServerProcess {
 public:
  explicit ServerProcess(std::unique_ptr<Subprocess> proc) : proc_(std::move(proc)) {}
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  Subprocess& proc() { return *proc_; }

 private:
  std::unique_ptr<Subprocess> proc_;
};

// git daemon --export-all --enable=receive-pack on 127.0.0.1:<free port>
// serving repositories under base_path.
class GitDaemon {
 public:
  static absl::StatusOr<std::unique_ptr<GitDaemon>> Start(const std::string& base_path);
  ~GitDaemon();
  int port() const { return port_; }
  // git://127.0.0.1:<port>/<repo>
  std::string Url(absl::string_view repo) const;

 private:
  GitDaemon() = default;
  int port_ = 0;
  std::string log_dir_;
  std::unique_ptr<ServerProcess> daemon_;
};

// nginx + fcgiwrap + git http-backend serving repositories under root.
class GitHttpServer {
 public:
  struct Options {
    bool tls = false;      // https with a generated CA; use Url() (https://localhost:PORT)
    std::string username;  // basic auth when non-empty
    std::string password;
    std::string bearer_token;  // requires "Authorization: Bearer <token>" when non-empty
    // When redirect_to is non-empty, requests whose path starts with
    // redirect_prefix get a 302 to redirect_to + the rest of the path (and
    // the query), before any authentication: "/" and "http://h:p/" send
    // everything to another server, "/old/" and "/" move a path.
    std::string redirect_prefix = "/";
    std::string redirect_to;
  };
  static absl::StatusOr<std::unique_ptr<GitHttpServer>> Start(const std::string& root,
                                                              const Options& options);
  ~GitHttpServer();
  int port() const { return port_; }
  // http://127.0.0.1:<port>/<repo> or https://localhost:<port>/<repo>.
  std::string Url(absl::string_view repo) const;
  // PEM of the CA that signed the server certificate (tls only).
  const std::string& ca_pem() const { return ca_pem_; }
  // nginx's access log so far: one line per request,
  // `<status> <method> <uri> auth="<Authorization header or ->"`.
  std::string RequestLog() const;

 private:
  GitHttpServer() = default;
  int port_ = 0;
  bool tls_ = false;
  std::string dir_;
  std::string ca_pem_;
  std::unique_ptr<ServerProcess> fcgiwrap_;
  std::unique_ptr<ServerProcess> nginx_;
};

// A key pair made by ssh-keygen.
struct SshKeyPair {
  std::string private_key;  // OpenSSH PEM
  std::string public_key;   // "ssh-ed25519 AAAA..." (no comment)
};
// `type` is an ssh-keygen -t value ("ed25519", "ecdsa"); the private key is
// encrypted with `passphrase` when non-empty. Files go to dir/name(.pub).
absl::StatusOr<SshKeyPair> GenerateSshKey(const std::string& dir, absl::string_view name,
                                          absl::string_view type = "ed25519",
                                          absl::string_view passphrase = "");

// A private sshd (-f CONFIG, UsePAM no, StrictModes no) on 127.0.0.1:<free
// port> with an ed25519 host key, accepting one ed25519 client key for the
// current user; git runs through the user's shell.
class GitSshServer {
 public:
  static absl::StatusOr<std::unique_ptr<GitSshServer>> Start();
  ~GitSshServer();
  int port() const { return port_; }
  // ssh://<user>@127.0.0.1:<port><absolute_repo_path>
  std::string Url(absl::string_view absolute_repo_path) const;
  const std::string& client_private_key() const { return client_.private_key; }
  // "[127.0.0.1]:<port> ssh-ed25519 AAAA..." for known_hosts.
  std::string known_hosts_line() const;
  // Also accepts `public_key` ("<type> <base64>") from now on.
  absl::Status AuthorizeKey(const std::string& public_key);
  const std::string& host_public_key() const { return host_.public_key; }
  const std::string& user() const { return user_; }

 private:
  GitSshServer() = default;
  int port_ = 0;
  std::string dir_;
  std::string user_;
  SshKeyPair host_;
  SshKeyPair client_;
  std::unique_ptr<ServerProcess> sshd_;
};

// tinyproxy (an HTTP forward proxy that also does CONNECT) on 127.0.0.1:<free
// port>, in the foreground with its own config; basic auth when username is
// non-empty.
class TinyProxy {
 public:
  struct Options {
    std::string username;
    std::string password;
  };
  static absl::StatusOr<std::unique_ptr<TinyProxy>> Start(const Options& options);
  ~TinyProxy();
  int port() const { return port_; }
  // http://127.0.0.1:<port>
  std::string Address() const;
  // tinyproxy's log so far: one "Request (file descriptor N): GET http://..."
  // or "... CONNECT host:port ..." line per proxied request.
  std::string ReadLog() const;

 private:
  TinyProxy() = default;
  int port_ = 0;
  std::string dir_;
  std::string log_path_;
  std::unique_ptr<ServerProcess> proxy_;
};

// A SOCKS5 proxy on 127.0.0.1:<free port> without authentication: OpenSSH's
// dynamic forwarding (`ssh -N -D`) through `sshd`. Its verbose log names
// every connection it forwards.
class SshSocksProxy {
 public:
  static absl::StatusOr<std::unique_ptr<SshSocksProxy>> Start(const GitSshServer& sshd);
  ~SshSocksProxy();
  int port() const { return port_; }
  // socks5://127.0.0.1:<port>
  std::string Address() const;
  std::string ReadLog() const;

 private:
  SshSocksProxy() = default;
  int port_ = 0;
  std::string dir_;
  std::unique_ptr<ServerProcess> ssh_;
};

// A TCP listener on 127.0.0.1 that never accepts or answers: connections
// complete in the kernel backlog and then hang. For timeout tests.
class SilentTcpListener {
 public:
  static absl::StatusOr<std::unique_ptr<SilentTcpListener>> Create();
  ~SilentTcpListener();
  int port() const { return port_; }

 private:
  SilentTcpListener() = default;
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace gitops::testing

#endif  // GITOPS_TEST_SUPPORT_GIT_SERVERS_H_
