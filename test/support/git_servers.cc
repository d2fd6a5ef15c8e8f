#include "test/support/git_servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace gitops::testing {
namespace {

constexpr int kStartAttempts = 3;

std::string Trim(std::string s) { return std::string(absl::StripTrailingAsciiWhitespace(s)); }

// Starts a server on a fresh free port, retrying when another test grabbed
// the port between PickFreePort and bind.
template <typename StartFn>
absl::Status WithFreePort(StartFn start) {
  absl::Status last;
  for (int i = 0; i < kStartAttempts; ++i) {
    last = start(PickFreePort());
    if (last.ok()) return last;
  }
  return last;
}

absl::Status WaitUntilListening(ServerProcess& server, int port) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (!server.proc().Running()) {
      return absl::UnavailableError(absl::StrCat("server exited: ", server.proc().ReadLog()));
    }
    if (WaitForPort(port, absl::Milliseconds(100)).ok()) return absl::OkStatus();
  }
  return absl::DeadlineExceededError(
      absl::StrCat("server not listening on ", port, ": ", server.proc().ReadLog()));
}

absl::StatusOr<std::unique_ptr<ServerProcess>> StartServer(std::vector<std::string> argv,
                                                           const std::string& log) {
  auto proc = Subprocess::Start(std::move(argv), {}, log);
  if (!proc.ok()) return proc.status();
  return std::make_unique<ServerProcess>(*std::move(proc));
}

std::string CurrentUser() {
  struct passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? pw->pw_name : "root";
}

}  // namespace

absl::StatusOr<std::string> Git(const std::string& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"git",
                                   "-C",
                                   dir,
                                   "-c",
                                   "user.name=Gitops Test",
                                   "-c",
                                   "user.email=test@example.com",
                                   "-c",
                                   "safe.directory=*",
                                   "-c",
                                   "protocol.file.allow=always",
                                   "-c",
                                   "commit.gpgsign=false",
                                   "-c",
                                   "tag.gpgsign=false"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto out = RunCommand(argv, absl::Seconds(60));
  if (!out.ok()) return out.status();
  return Trim(*std::move(out));
}

absl::Status InitBareRepo(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  return Git(path, {"init", "--quiet", "--bare", "-b", "main"}).status();
}

absl::StatusOr<GitWorkRepo> GitWorkRepo::Create(const std::string& dir, absl::string_view branch) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  auto out = Git(dir, {"init", "--quiet", "-b", std::string(branch)});
  if (!out.ok()) return out.status();
  return GitWorkRepo(dir);
}

absl::StatusOr<std::string> GitWorkRepo::Commit(
    absl::string_view message, const std::vector<std::pair<std::string, std::string>>& files) {
  for (const auto& [path, content] : files) {
    if (absl::Status s = WriteFile(absl::StrCat(dir_, "/", path), content); !s.ok()) return s;
  }
  if (auto out = Git(dir_, {"add", "-A"}); !out.ok()) return out.status();
  if (auto out = Git(dir_, {"commit", "--quiet", "--allow-empty", "-m", std::string(message)});
      !out.ok()) {
    return out.status();
  }
  return RevParse("HEAD");
}

absl::Status GitWorkRepo::Tag(absl::string_view name, absl::string_view target) {
  return Git(dir_, {"tag", "-f", std::string(name), std::string(target)}).status();
}

absl::Status GitWorkRepo::AnnotatedTag(absl::string_view name, absl::string_view message,
                                       absl::string_view target) {
  return Git(dir_, {"tag", "-f", "-a", std::string(name), "-m", std::string(message),
                    std::string(target)})
      .status();
}

absl::Status GitWorkRepo::CheckoutNewBranch(absl::string_view name) {
  return Git(dir_, {"checkout", "--quiet", "-B", std::string(name)}).status();
}

absl::Status GitWorkRepo::Checkout(absl::string_view name) {
  return Git(dir_, {"checkout", "--quiet", std::string(name)}).status();
}

absl::StatusOr<std::string> GitWorkRepo::RevParse(absl::string_view rev) {
  return Git(dir_, {"rev-parse", std::string(rev)});
}

absl::Status GitWorkRepo::PushAll(const std::string& remote) {
  return Git(dir_, {"push", "--quiet", "--force", remote, "refs/heads/*:refs/heads/*",
                    "refs/tags/*:refs/tags/*"})
      .status();
}

absl::Status GitWorkRepo::Push(const std::string& remote, absl::string_view source,
                               absl::string_view dest) {
  return Git(dir_, {"push", "--quiet", "--force", remote, absl::StrCat(source, ":", dest)})
      .status();
}

ServerProcess::~ServerProcess() {
  if (proc_ && proc_->Running()) ::kill(-proc_->pid(), SIGKILL);
}

absl::StatusOr<std::unique_ptr<GitDaemon>> GitDaemon::Start(const std::string& base_path) {
  std::unique_ptr<GitDaemon> daemon(new GitDaemon());
  daemon->log_dir_ = MakeTempDir("git-daemon");
  const std::string& log_dir = daemon->log_dir_;
  absl::Status s = WithFreePort([&](int port) -> absl::Status {
    auto server =
        StartServer({"git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                     "--informative-errors", absl::StrCat("--base-path=", base_path),
                     "--listen=127.0.0.1", absl::StrCat("--port=", port), base_path},
                    absl::StrCat(log_dir, "/daemon-", port, ".log"));
    if (!server.ok()) return server.status();
    if (absl::Status ready = WaitUntilListening(**server, port); !ready.ok()) return ready;
    daemon->port_ = port;
    daemon->daemon_ = *std::move(server);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return daemon;
}

GitDaemon::~GitDaemon() {
  daemon_.reset();
  if (!log_dir_.empty()) RemoveTree(log_dir_);
}

std::string GitDaemon::Url(absl::string_view repo) const {
  return absl::StrCat("git://127.0.0.1:", port_, "/", repo);
}

absl::StatusOr<std::unique_ptr<GitHttpServer>> GitHttpServer::Start(const std::string& root,
                                                                    const Options& options) {
  std::unique_ptr<GitHttpServer> server(new GitHttpServer());
  server->tls_ = options.tls;
  server->dir_ = MakeTempDir("git-http");
  const std::string& dir = server->dir_;
  std::error_code ec;
  std::filesystem::create_directories(dir + "/tmp", ec);

  if (options.tls) {
    absl::Status s = WriteFile(dir + "/server.ext",
                               "subjectAltName=DNS:localhost\n"
                               "basicConstraints=CA:FALSE\n"
                               "keyUsage=critical,digitalSignature,keyEncipherment\n"
                               "extendedKeyUsage=serverAuth\n");
    if (!s.ok()) return s;
    std::vector<std::vector<std::string>> commands = {
        {"openssl",
         "req",
         "-x509",
         "-newkey",
         "ec",
         "-pkeyopt",
         "ec_paramgen_curve:prime256v1",
         "-nodes",
         "-keyout",
         dir + "/ca.key",
         "-out",
         dir + "/ca.crt",
         "-days",
         "2",
         "-subj",
         "/CN=gitops-test-ca",
         "-addext",
         "basicConstraints=critical,CA:TRUE",
         "-addext",
         "keyUsage=critical,keyCertSign,cRLSign"},
        {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", dir + "/server.key", "-out", dir + "/server.csr", "-subj", "/CN=localhost"},
        {"openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey",
         dir + "/ca.key", "-CAcreateserial", "-out", dir + "/server.crt", "-days", "2", "-extfile",
         dir + "/server.ext"},
    };
    for (const auto& argv : commands) {
      if (auto out = RunCommand(argv, absl::Seconds(30)); !out.ok()) return out.status();
    }
    auto ca = ReadFile(dir + "/ca.crt");
    if (!ca.ok()) return ca.status();
    server->ca_pem_ = *ca;
  }
  if (!options.username.empty()) {
    auto out =
        RunCommand({"htpasswd", "-bc", dir + "/htpasswd", options.username, options.password},
                   absl::Seconds(30));
    if (!out.ok()) return out.status();
  }

  std::string socket = dir + "/fcgiwrap.sock";
  auto fcgi = StartServer({"fcgiwrap", "-c", "4", "-s", "unix:" + socket}, dir + "/fcgiwrap.log");
  if (!fcgi.ok()) return fcgi.status();
  server->fcgiwrap_ = *std::move(fcgi);
  for (int i = 0; i < 250 && !std::filesystem::exists(socket, ec); ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (!std::filesystem::exists(socket, ec)) {
    return absl::UnavailableError(
        absl::StrCat("fcgiwrap did not create its socket: ", server->fcgiwrap_->proc().ReadLog()));
  }

  absl::Status s = WithFreePort([&](int port) -> absl::Status {
    std::string location;
    if (!options.username.empty()) {
      absl::StrAppend(&location, "      auth_basic \"git\";\n      auth_basic_user_file ", dir,
                      "/htpasswd;\n");
    }
    std::string redirect;
    if (!options.redirect_to.empty()) {
      // Server-level rewrites run before location matching and auth.
      absl::StrAppend(&redirect, "    rewrite ^", options.redirect_prefix, "(.*)$ ",
                      options.redirect_to, "$1 redirect;\n");
    }
    if (!options.bearer_token.empty()) {
      absl::StrAppend(&location, "      if ($http_authorization != \"Bearer ", options.bearer_token,
                      "\") {\n        add_header WWW-Authenticate 'Basic realm=\"git\"' always;\n"
                      "        return 401;\n      }\n");
    }
    std::string conf = absl::StrCat(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid ", dir, "/nginx.pid;\n",
        "error_log ", dir, "/error.log warn;\n", "events { worker_connections 256; }\n",
        "http {\n  log_format requests '$status $request_method $request_uri "
        "auth=\"$http_authorization\"';\n  access_log ",
        dir, "/access.log requests;\n", "  client_body_temp_path ", dir, "/tmp/body;\n",
        "  proxy_temp_path ", dir, "/tmp/proxy;\n", "  fastcgi_temp_path ", dir, "/tmp/fastcgi;\n",
        "  uwsgi_temp_path ", dir, "/tmp/uwsgi;\n", "  scgi_temp_path ", dir, "/tmp/scgi;\n",
        "  client_max_body_size 0;\n", "  server {\n    listen 127.0.0.1:", port,
        options.tls ? " ssl" : "", ";\n    server_name localhost;\n",
        options.tls ? absl::StrCat("    ssl_certificate ", dir, "/server.crt;\n",
                                   "    ssl_certificate_key ", dir, "/server.key;\n")
                    : "",
        redirect, "    location / {\n", location, "      include /etc/nginx/fastcgi_params;\n",
        "      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;\n",
        "      fastcgi_param GIT_PROJECT_ROOT ", root, ";\n",
        "      fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n", "      fastcgi_param PATH_INFO $uri;\n",
        "      fastcgi_param REMOTE_USER $remote_user;\n", "      fastcgi_pass unix:", socket,
        ";\n", "    }\n  }\n}\n");
    std::string conf_path = absl::StrCat(dir, "/nginx-", port, ".conf");
    if (absl::Status w = WriteFile(conf_path, conf); !w.ok()) return w;
    auto nginx = StartServer({"nginx", "-p", dir + "/", "-c", conf_path, "-e", dir + "/error.log"},
                             absl::StrCat(dir, "/nginx-", port, ".log"));
    if (!nginx.ok()) return nginx.status();
    if (absl::Status ready = WaitUntilListening(**nginx, port); !ready.ok()) return ready;
    server->port_ = port;
    server->nginx_ = *std::move(nginx);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return server;
}

GitHttpServer::~GitHttpServer() {
  nginx_.reset();
  fcgiwrap_.reset();
  if (!dir_.empty()) RemoveTree(dir_);
}

std::string GitHttpServer::RequestLog() const {
  auto log = ReadFile(dir_ + "/access.log");
  return log.ok() ? *log : "";
}

std::string GitHttpServer::Url(absl::string_view repo) const {
  return tls_ ? absl::StrCat("https://localhost:", port_, "/", repo)
              : absl::StrCat("http://127.0.0.1:", port_, "/", repo);
}

absl::StatusOr<SshKeyPair> GenerateSshKey(const std::string& dir, absl::string_view name,
                                          absl::string_view type, absl::string_view passphrase) {
  std::string path = absl::StrCat(dir, "/", name);
  auto out = RunCommand({"ssh-keygen", "-q", "-t", std::string(type), "-N", std::string(passphrase),
                         "-C", "", "-f", path},
                        absl::Seconds(30));
  if (!out.ok()) return out.status();
  SshKeyPair pair;
  auto priv = ReadFile(path);
  if (!priv.ok()) return priv.status();
  auto pub = ReadFile(path + ".pub");
  if (!pub.ok()) return pub.status();
  pair.private_key = *priv;
  std::vector<std::string> fields = absl::StrSplit(*pub, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  if (fields.size() < 2) return absl::InternalError("unexpected public key format");
  pair.public_key = absl::StrCat(fields[0], " ", fields[1]);
  return pair;
}

absl::StatusOr<std::unique_ptr<GitSshServer>> GitSshServer::Start() {
  std::unique_ptr<GitSshServer> server(new GitSshServer());
  server->dir_ = MakeTempDir("git-sshd");
  server->user_ = CurrentUser();
  const std::string& dir = server->dir_;
  ::mkdir("/run/sshd", 0755);
  auto host = GenerateSshKey(dir, "host_key");
  if (!host.ok()) return host.status();
  server->host_ = *host;
  auto client = GenerateSshKey(dir, "client_key");
  if (!client.ok()) return client.status();
  server->client_ = *client;
  if (absl::Status s = WriteFile(dir + "/authorized_keys", server->client_.public_key + "\n");
      !s.ok()) {
    return s;
  }
  absl::Status s = WithFreePort([&](int port) -> absl::Status {
    std::string conf =
        absl::StrCat("Port ", port, "\nListenAddress 127.0.0.1\nHostKey ", dir,
                     "/host_key\nPidFile ", dir, "/sshd-", port, ".pid\nAuthorizedKeysFile ", dir,
                     "/authorized_keys\nUsePAM no\nStrictModes no\nPubkeyAuthentication yes\n"
                     "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                     "PermitRootLogin prohibit-password\nLogLevel VERBOSE\n");
    std::string conf_path = absl::StrCat(dir, "/sshd-", port, ".conf");
    if (absl::Status w = WriteFile(conf_path, conf); !w.ok()) return w;
    auto sshd = StartServer({"/usr/sbin/sshd", "-D", "-e", "-f", conf_path},
                            absl::StrCat(dir, "/sshd-", port, ".log"));
    if (!sshd.ok()) return sshd.status();
    if (absl::Status ready = (*sshd)->proc().WaitForLog("Server listening", absl::Seconds(10));
        !ready.ok()) {
      return ready;
    }
    server->port_ = port;
    server->sshd_ = *std::move(sshd);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return server;
}

GitSshServer::~GitSshServer() {
  sshd_.reset();
  if (!dir_.empty()) RemoveTree(dir_);
}

std::string GitSshServer::Url(absl::string_view absolute_repo_path) const {
  return absl::StrCat("ssh://", user_, "@127.0.0.1:", port_, absolute_repo_path);
}

absl::Status GitSshServer::AuthorizeKey(const std::string& public_key) {
  auto keys = ReadFile(dir_ + "/authorized_keys");
  if (!keys.ok()) return keys.status();
  return WriteFile(dir_ + "/authorized_keys", *keys + public_key + "\n");
}

std::string GitSshServer::known_hosts_line() const {
  return absl::StrCat("[127.0.0.1]:", port_, " ", host_.public_key);
}

absl::StatusOr<std::unique_ptr<TinyProxy>> TinyProxy::Start(const Options& options) {
  std::unique_ptr<TinyProxy> proxy(new TinyProxy());
  proxy->dir_ = MakeTempDir("tinyproxy");
  const std::string& dir = proxy->dir_;
  absl::Status s = WithFreePort([&](int port) -> absl::Status {
    std::string log = absl::StrCat(dir, "/tinyproxy-", port, ".log");
    std::string conf = absl::StrCat("Port ", port, "\nListen 127.0.0.1\nTimeout 30\nLogFile \"",
                                    log, "\"\nLogLevel Info\nMaxClients 20\n");
    if (!options.username.empty()) {
      absl::StrAppend(&conf, "BasicAuth ", options.username, " ", options.password, "\n");
    }
    std::string conf_path = absl::StrCat(dir, "/tinyproxy-", port, ".conf");
    if (absl::Status w = WriteFile(conf_path, conf); !w.ok()) return w;
    auto server = StartServer({"tinyproxy", "-d", "-c", conf_path},
                              absl::StrCat(dir, "/tinyproxy-", port, ".out"));
    if (!server.ok()) return server.status();
    if (absl::Status ready = WaitUntilListening(**server, port); !ready.ok()) return ready;
    proxy->port_ = port;
    proxy->log_path_ = log;
    proxy->proxy_ = *std::move(server);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return proxy;
}

TinyProxy::~TinyProxy() {
  proxy_.reset();
  if (!dir_.empty()) RemoveTree(dir_);
}

std::string TinyProxy::Address() const { return absl::StrCat("http://127.0.0.1:", port_); }

std::string TinyProxy::ReadLog() const {
  auto log = ReadFile(log_path_);
  return log.ok() ? *log : "";
}

absl::StatusOr<std::unique_ptr<SshSocksProxy>> SshSocksProxy::Start(const GitSshServer& sshd) {
  std::unique_ptr<SshSocksProxy> proxy(new SshSocksProxy());
  proxy->dir_ = MakeTempDir("ssh-socks");
  const std::string& dir = proxy->dir_;
  std::string key = dir + "/client_key";
  if (absl::Status w = WriteFile(key, sshd.client_private_key()); !w.ok()) return w;
  ::chmod(key.c_str(), 0600);
  absl::Status s = WithFreePort([&](int port) -> absl::Status {
    auto server = StartServer({"ssh",
                               "-N",
                               "-v",
                               "-D",
                               absl::StrCat("127.0.0.1:", port),
                               "-p",
                               absl::StrCat(sshd.port()),
                               "-i",
                               key,
                               "-F",
                               "/dev/null",
                               "-o",
                               "StrictHostKeyChecking=no",
                               "-o",
                               "UserKnownHostsFile=/dev/null",
                               "-o",
                               "BatchMode=yes",
                               "-o",
                               "ExitOnForwardFailure=yes",
                               "-o",
                               "IdentitiesOnly=yes",
                               absl::StrCat(sshd.user(), "@127.0.0.1")},
                              absl::StrCat(dir, "/ssh-", port, ".log"));
    if (!server.ok()) return server.status();
    if (absl::Status ready = WaitUntilListening(**server, port); !ready.ok()) return ready;
    proxy->port_ = port;
    proxy->ssh_ = *std::move(server);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return proxy;
}

SshSocksProxy::~SshSocksProxy() {
  ssh_.reset();
  if (!dir_.empty()) RemoveTree(dir_);
}

std::string SshSocksProxy::Address() const { return absl::StrCat("socks5://127.0.0.1:", port_); }

std::string SshSocksProxy::ReadLog() const { return ssh_ ? ssh_->proc().ReadLog() : ""; }

absl::StatusOr<std::unique_ptr<SilentTcpListener>> SilentTcpListener::Create() {
  std::unique_ptr<SilentTcpListener> l(new SilentTcpListener());
  l->fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l->fd_ < 0) return absl::InternalError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(l->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(l->fd_, 64) != 0) {
    return absl::InternalError("bind/listen");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(l->fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  l->port_ = ntohs(addr.sin_port);
  return l;
}

SilentTcpListener::~SilentTcpListener() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace gitops::testing
