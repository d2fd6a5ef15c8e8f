#include "test/apiserver/api_server.h"

#include <openssl/pem.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "httplib.h"
#include "test/apiserver/json_util.h"
#include "test/apiserver/merge.h"
#include "test/apiserver/protobuf.h"
#include "test/apiserver/registry.h"
#include "test/apiserver/schema.h"
#include "test/apiserver/selector.h"
#include "test/apiserver/table.h"
#include "test/apiserver/tls.h"
#include "yaml-cpp/yaml.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;

// A finished response: HTTP code and JSON body.
struct Reply {
  int code = 200;
  json body;
};

std::string ReasonFor(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 406:
      return "NotAcceptable";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 504:
      return "Timeout";
    default:
      return "InternalError";
  }
}

json StatusBody(int code, const std::string& reason, const std::string& message,
                json details = json()) {
  json s = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
            {"status", "Failure"}, {"message", message}, {"reason", reason},
            {"code", code}};
  if (!details.is_null()) s["details"] = details;
  return s;
}

Reply Error(int code, const std::string& message, json details = json(), std::string reason = "") {
  return {code, StatusBody(code, reason.empty() ? ReasonFor(code) : reason, message, details)};
}

std::string NewUid() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  uint64_t a = rng(), b = rng();
  std::string hex = absl::StrCat(absl::Hex(a, absl::kZeroPad16), absl::Hex(b, absl::kZeroPad16));
  hex[12] = '4';
  hex[16] = "89ab"[b & 3];
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20, 12));
}

std::string RandomSuffix(size_t n) {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  static std::mutex mu;
  static std::mt19937 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  std::string out;
  for (size_t i = 0; i < n; ++i) out.push_back(kAlphabet[rng() % (sizeof(kAlphabet) - 1)]);
  return out;
}

// Converts a YAML node to JSON (for apply-patch+yaml bodies that are not JSON).
json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& e : node) arr.push_back(YamlToJson(e));
      return arr;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~") return nullptr;
      int64_t i;
      if (absl::SimpleAtoi(s, &i)) return i;
      double d;
      if (s.find_first_of("0123456789") != std::string::npos && absl::SimpleAtod(s, &d) &&
          s.find_first_not_of("0123456789.-+eE") == std::string::npos) {
        return d;
      }
      return s;
    }
    default:
      return nullptr;
  }
}

absl::StatusOr<json> ParseBody(const std::string& body, bool allow_yaml) {
  json parsed = json::parse(body, nullptr, false);
  if (!parsed.is_discarded()) return parsed;
  if (allow_yaml) {
    try {
      return YamlToJson(YAML::Load(body));
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("error decoding YAML: ", e.what()));
    }
  }
  return absl::InvalidArgumentError("the body of the request was in an unknown format");
}

bool IsDns1123Subdomain(const std::string& s) {
  static const std::regex re("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$");
  return !s.empty() && s.size() <= 253 && std::regex_match(s, re);
}
bool IsDns1123Label(const std::string& s) {
  static const std::regex re("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$");
  return !s.empty() && s.size() <= 63 && std::regex_match(s, re);
}

// Where a request points.
struct Target {
  const ResourceInfo* res = nullptr;
  std::string group, version, resource;
  std::string ns;
  std::string name;
  std::string sub;
  bool watch = false;
};

struct Event {
  uint64_t rv;
  std::string storage_key;
  std::string type;  // ADDED | MODIFIED | DELETED
  json object;
  json old;  // previous state for MODIFIED
};

struct Rule {
  std::string user;
  std::vector<std::string> verbs, resources, namespaces;
  bool allow = true;
};

bool MatchList(const std::vector<std::string>& list, const std::string& v) {
  return list.empty() || std::find(list.begin(), list.end(), "*") != list.end() ||
         std::find(list.begin(), list.end(), v) != list.end();
}

std::vector<std::string> StrList(const json& obj, const char* key) {
  std::vector<std::string> out;
  const json* v = Find(obj, {key});
  if (v != nullptr && v->is_array()) {
    for (const auto& e : *v) {
      if (e.is_string()) out.push_back(e.get<std::string>());
    }
  }
  return out;
}

bool WantsTable(const httplib::Request& req) {
  return absl::StrContains(req.get_header_value("Accept"), "as=Table");
}

}  // namespace

class ApiServer::Impl {
 public:
  explicit Impl(ApiServerOptions options) : options_(std::move(options)) {}
  ~Impl() { Stop(); }

  absl::Status Start();
  void Stop();
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopping_; });
  }
  int port() const { return port_; }
  std::string url() const {
    return absl::StrCat(options_.plain_http ? "http" : "https", "://", options_.host, ":", port_);
  }
  std::string Kubeconfig() const;

 private:
  using Lock = std::unique_lock<std::mutex>;

  void Route(const httplib::Request& req, httplib::Response& res);
  void Send(httplib::Response& res, const Reply& reply);
  Reply Dispatch(const httplib::Request& req, httplib::Response& res);
  Reply Testing(const httplib::Request& req);
  Reply Discovery(const std::string& path);
  absl::StatusOr<Target> ParseTarget(const std::string& path, bool* not_api);
  Reply Authorize(const httplib::Request& req, const Target& t, const std::string& verb);

  // Verbs. The caller holds mu_.
  Reply Get(const Target& t);
  Reply List(const Target& t, const httplib::Request& req);
  void Watch(const Target& t, const httplib::Request& req, httplib::Response& res);
  Reply Create(const Target& t, const httplib::Request& req);
  Reply Update(const Target& t, const httplib::Request& req);
  Reply Patch(const Target& t, const httplib::Request& req);
  Reply Delete(const Target& t, const httplib::Request& req);
  Reply DeleteCollection(const Target& t, const httplib::Request& req);

  // Validates, fills system fields, stores and emits. `old` is null for
  // creates. `managed` is the new managedFields array.
  Reply Commit(const Target& t, const json* old, json obj, json managed, bool dry_run,
               int success_code);
  // Removes an object for good (finalizers done) and cascades.
  void Remove(const std::string& storage_key, const std::string& key, bool dry_run);
  void MarkDeleting(const std::string& storage_key, const std::string& key);
  void MaybeFinishNamespace(const std::string& ns);
  void Emit(const std::string& storage_key, const std::string& type, const json& obj,
            const json& old = json());
  uint64_t NextRv() { return ++rv_; }

  json* FindObject(const std::string& storage_key, const std::string& key) {
    auto s = objects_.find(storage_key);
    if (s == objects_.end()) return nullptr;
    auto o = s->second.find(key);
    return o == s->second.end() ? nullptr : &o->second;
  }
  static std::string Key(const std::string& ns, const std::string& name) {
    return ns.empty() ? name : ns + "/" + name;
  }
  json Present(const ResourceInfo& res, json obj) const {
    obj["apiVersion"] = res.GroupVersion();
    obj["kind"] = res.kind;
    return obj;
  }
  ListShapeFn ShapeFn(const ResourceInfo& res) const;
  json FieldScope(const ResourceInfo& res, const json& obj, bool status_sub) const;
  json UpdatedManaged(const ResourceInfo& res, const json* old, const json& updated,
                      const std::string& manager, bool status_sub) const;
  Reply Apply(const Target& t, const httplib::Request& req, const json* live, json applied,
              bool dry_run);
  std::string Manager(const httplib::Request& req) const;
  void CrdWritten(json& crd, bool dry_run);
  void CrdRemoved(const json& crd);
  void SimulateControllers(const ResourceInfo& res, json& obj);
  Reply NotFound(const Target& t) const {
    return Error(404, absl::StrCat(t.res->QualifiedResource(), " \"", t.name, "\" not found"),
                 {{"name", t.name}, {"group", t.res->group}, {"kind", t.res->plural}});
  }

  ApiServerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::string ca_pem_;
  std::string client_cert_pem_, client_key_pem_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  Registry registry_;
  uint64_t rv_ = 1;
  std::map<std::string, std::map<std::string, json>> objects_;
  std::deque<Event> events_;
  uint64_t oldest_rv_ = 1;  // events with rv > oldest_rv_ are retained
  uint64_t watch_epoch_ = 0;
  int cluster_ip_counter_ = 10;

  // Fault switches.
  int fail_next_ = 0;
  int fail_code_ = 500;
  int latency_ms_ = 0;
  bool simulate_workloads_ = true;
  bool fail_watches_ = false;
  std::vector<Rule> rules_;
  json requests_ = json::array();
};

absl::Status ApiServer::Impl::Start() {
  if (options_.plain_http) {
    server_ = std::make_unique<httplib::Server>();
  } else {
    auto certs = GenerateServingCertificates();
    if (!certs.ok()) return certs.status();
    ca_pem_ = certs->ca_pem;
    BIO* cbio = BIO_new_mem_buf(certs->cert_pem.data(), static_cast<int>(certs->cert_pem.size()));
    X509* cert = PEM_read_bio_X509(cbio, nullptr, nullptr, nullptr);
    BIO_free(cbio);
    BIO* kbio = BIO_new_mem_buf(certs->key_pem.data(), static_cast<int>(certs->key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kbio, nullptr, nullptr, nullptr);
    BIO_free(kbio);
    if (cert == nullptr || key == nullptr) return absl::InternalError("load serving certificate");
    if (options_.client_cert_auth) {
      client_cert_pem_ = certs->client_cert_pem;
      client_key_pem_ = certs->client_key_pem;
      BIO* cabio = BIO_new_mem_buf(certs->ca_pem.data(), static_cast<int>(certs->ca_pem.size()));
      X509* ca = PEM_read_bio_X509(cabio, nullptr, nullptr, nullptr);
      BIO_free(cabio);
      X509_STORE* store = X509_STORE_new();  // owned by the SSL context
      X509_STORE_add_cert(store, ca);
      X509_free(ca);
      server_ = std::make_unique<httplib::SSLServer>(cert, key, store);
      options_.token.clear();
    } else {
      server_ = std::make_unique<httplib::SSLServer>(cert, key);
      if (options_.token.empty()) options_.token = absl::StrCat("test-token-", RandomSuffix(24));
    }
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  if (!server_->is_valid()) return absl::InternalError("http server is not valid");
  server_->new_task_queue = [] { return new httplib::ThreadPool(256); };
  server_->set_keep_alive_max_count(100000);
  server_->set_keep_alive_timeout(30);
  server_->set_read_timeout(30);
  server_->set_write_timeout(30);
  server_->set_tcp_nodelay(true);
  server_->set_payload_max_length(64 << 20);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) { Route(req, res); };
  server_->Get(".*", handler);
  server_->Post(".*", handler);
  server_->Put(".*", handler);
  server_->Patch(".*", handler);
  server_->Delete(".*", handler);

  // Seed the namespaces a fresh cluster has.
  {
    Lock lock(mu_);
    for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      Target t;
      t.res = registry_.Find("", "v1", "namespaces");
      t.name = ns;
      json obj = {{"metadata", {{"name", ns}}}};
      Commit(t, nullptr, obj, json::array(), false, 201);
    }
  }

  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
    if (port_ <= 0) return absl::UnavailableError("bind to a free port failed");
  } else {
    if (!server_->bind_to_port(options_.host, options_.port)) {
      return absl::UnavailableError(absl::StrCat("bind to port ", options_.port, " failed"));
    }
    port_ = options_.port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return absl::OkStatus();
}

void ApiServer::Impl::Stop() {
  {
    Lock lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string ApiServer::Impl::Kubeconfig() const {
  std::string cluster = absl::StrCat("    server: ", url(), "\n");
  if (!ca_pem_.empty()) {
    absl::StrAppend(&cluster, "    certificate-authority-data: ", absl::Base64Escape(ca_pem_),
                    "\n");
  }
  std::string user = "{}\n";
  if (!client_cert_pem_.empty()) {
    user = absl::StrCat("\n    client-certificate-data: ", absl::Base64Escape(client_cert_pem_),
                        "\n    client-key-data: ", absl::Base64Escape(client_key_pem_), "\n");
  } else if (!options_.token.empty()) {
    user = absl::StrCat("\n    token: ", options_.token, "\n");
  }
  return absl::StrCat(
      "apiVersion: v1\nkind: Config\nclusters:\n- name: test-apiserver\n  cluster:\n", cluster,
      "contexts:\n- name: test-apiserver\n  context:\n    cluster: test-apiserver\n"
      "    user: test-admin\n    namespace: default\n",
      "current-context: test-apiserver\nusers:\n- name: test-admin\n  user: ", user);
}

void ApiServer::Impl::Send(httplib::Response& res, const Reply& reply) {
  res.status = reply.code;
  if (reply.code == 429) res.set_header("Retry-After", "1");
  res.set_content(reply.body.dump(), "application/json");
}

void ApiServer::Impl::Route(const httplib::Request& req, httplib::Response& res) {
  try {
    Reply reply = Dispatch(req, res);
    if (reply.code != 0) Send(res, reply);
  } catch (const std::exception& e) {
    // nlohmann::json throws on type mismatches in odd inputs: answer 500.
    Send(res, Error(500, absl::StrCat("internal error: ", e.what())));
  }
}

Reply ApiServer::Impl::Dispatch(const httplib::Request& req, httplib::Response& res) {
  const std::string& path = req.path;
  if (path == "/healthz" || path == "/readyz" || path == "/livez") {
    res.set_content("ok", "text/plain");
    return {0, json()};
  }
  if (!options_.token.empty()) {
    std::string auth = req.get_header_value("Authorization");
    if (auth != "Bearer " + options_.token) return Error(401, "Unauthorized");
  }
  if (absl::StartsWith(path, "/testing/")) {
    Lock lock(mu_);
    return Testing(req);
  }
  int latency = 0;
  {
    Lock lock(mu_);
    latency = latency_ms_;
    if (fail_next_ > 0) {
      fail_next_--;
      int code = fail_code_;
      lock.unlock();
      if (code == 429) {
        return Error(429, "Too many requests, please try again later.", {{"retryAfterSeconds", 1}});
      }
      return Error(code, "injected fault: internal error");
    }
  }
  if (latency > 0) std::this_thread::sleep_for(std::chrono::milliseconds(latency));

  if (path == "/version" || path == "/api" || path == "/apis" || path == "/openapi/v2" ||
      path == "/openapi/v3" || absl::StartsWith(path, "/openapi/")) {
    if (req.method != "GET") return Error(405, "method not allowed");
    Lock lock(mu_);
    return Discovery(path);
  }
  Lock lock(mu_);
  bool not_api = false;
  auto target = ParseTarget(path, &not_api);
  if (not_api) {
    if (req.method != "GET") return Error(404, "the server could not find the requested resource");
    return Discovery(path);
  }
  if (!target.ok()) {
    return Error(404, "the server could not find the requested resource", json(), "NotFound");
  }
  Target t = *target;
  if (!t.sub.empty() && !(t.sub == "status" && t.res->status_subresource)) {
    return Error(404, "the server could not find the requested resource");
  }
  bool watch =
      t.watch || req.get_param_value("watch") == "true" || req.get_param_value("watch") == "1";
  std::string verb;
  if (req.method == "GET") {
    verb = watch ? "watch" : (t.name.empty() ? "list" : "get");
  } else if (req.method == "POST") {
    verb = "create";
  } else if (req.method == "PUT") {
    verb = "update";
  } else if (req.method == "PATCH") {
    verb = "patch";
  } else if (req.method == "DELETE") {
    verb = t.name.empty() ? "deletecollection" : "delete";
  }
  Reply denied = Authorize(req, t, verb);
  if (denied.code != 0) return denied;

  if (verb == "watch") {
    if (fail_watches_) return Error(500, "injected fault: watch refused");
    lock.unlock();
    Watch(t, req, res);
    return {0, json()};
  }
  if (verb == "get") {
    Reply got = Get(t);
    if (got.code == 200 && WantsTable(req)) {
      got.body = ToTable(*t.res, {got.body}, req.get_param_value("includeObject"), true);
    }
    return got;
  }
  if (verb == "list") return List(t, req);
  if (verb == "create") {
    if (!t.name.empty())
      return Error(405, "the server does not allow this method on the requested resource");
    return Create(t, req);
  }
  if (verb == "update") return Update(t, req);
  if (verb == "patch") return Patch(t, req);
  if (verb == "delete") return Delete(t, req);
  if (verb == "deletecollection") return DeleteCollection(t, req);
  return Error(405, "the server does not allow this method on the requested resource");
}

Reply ApiServer::Impl::Authorize(const httplib::Request& req, const Target& t,
                                 const std::string& verb) {
  std::string user = req.get_header_value("Impersonate-User");
  if (user.empty()) return {0, json()};
  json groups = json::array();
  for (size_t i = 0; i < req.get_header_value_count("Impersonate-Group"); ++i) {
    groups.push_back(req.get_header_value("Impersonate-Group", i));
  }
  requests_.push_back({{"user", user},
                       {"groups", groups},
                       {"verb", verb},
                       {"group", t.res->group},
                       {"resource", t.res->plural},
                       {"namespace", t.ns},
                       {"name", t.name}});
  if (requests_.size() > 5000) requests_.erase(requests_.begin());
  if (rules_.empty()) return {0, json()};
  for (const Rule& r : rules_) {
    if (r.user != user && r.user != "*") continue;
    if (!MatchList(r.verbs, verb) || !MatchList(r.resources, t.res->plural) ||
        !MatchList(r.namespaces, t.ns)) {
      continue;
    }
    if (r.allow) return {0, json()};
    break;
  }
  std::string where =
      t.ns.empty() ? " at the cluster scope" : absl::StrCat(" in the namespace \"", t.ns, "\"");
  std::string what = t.name.empty() ? t.res->QualifiedResource()
                                    : absl::StrCat(t.res->QualifiedResource(), " \"", t.name, "\"");
  return Error(
      403,
      absl::StrCat(what, " is forbidden: User \"", user, "\" cannot ", verb, " resource \"",
                   t.res->plural, "\" in API group \"", t.res->group, "\"", where),
      {{"name", t.name}, {"group", t.res->group}, {"kind", t.res->plural}});
}

Reply ApiServer::Impl::Testing(const httplib::Request& req) {
  if (req.path == "/testing/requests") return {200, requests_};
  auto body = ParseBody(req.body, false);
  if (!body.ok()) return Error(400, std::string(body.status().message()));
  if (req.path == "/testing/faults") {
    const json& f = *body;
    if (const json* v = Find(f, {"failNext"}); v && v->is_number_integer())
      fail_next_ = v->get<int>();
    if (const json* v = Find(f, {"failCode"}); v && v->is_number_integer())
      fail_code_ = v->get<int>();
    if (const json* v = Find(f, {"latencyMs"}); v && v->is_number_integer())
      latency_ms_ = v->get<int>();
    if (const json* v = Find(f, {"workloads"}); v && v->is_boolean())
      simulate_workloads_ = v->get<bool>();
    if (const json* v = Find(f, {"dropWatches"}); v && *v == true) watch_epoch_++;
    if (const json* v = Find(f, {"failWatches"}); v && v->is_boolean())
      fail_watches_ = v->get<bool>();
    if (const json* v = Find(f, {"compact"}); v && *v == true) {
      events_.clear();
      oldest_rv_ = rv_;
    }
    cv_.notify_all();
    return {200, {{"rv", std::to_string(rv_)}}};
  }
  if (req.path == "/testing/rules") {
    rules_.clear();
    if (body->is_array()) {
      for (const auto& r : *body) {
        Rule rule;
        rule.user = Str(r, {"user"});
        rule.verbs = StrList(r, "verbs");
        rule.resources = StrList(r, "resources");
        rule.namespaces = StrList(r, "namespaces");
        const json* allow = Find(r, {"allow"});
        rule.allow = allow == nullptr || *allow != false;
        rules_.push_back(rule);
      }
    }
    return {200, {{"rules", rules_.size()}}};
  }
  return Error(404, "unknown testing endpoint");
}

Reply ApiServer::Impl::Discovery(const std::string& path) {
  if (path == "/version") {
    return {200,
            {{"major", "1"},
             {"minor", "32"},
             {"gitVersion", "v1.32.0-gitops-test"},
             {"gitCommit", "0000000000000000000000000000000000000000"},
             {"gitTreeState", "clean"},
             {"buildDate", "2026-01-01T00:00:00Z"},
             {"goVersion", "n/a"},
             {"compiler", "gc"},
             {"platform", "linux/amd64"}}};
  }
  if (path == "/api") {
    return {200,
            {{"kind", "APIVersions"},
             {"versions", {"v1"}},
             {"serverAddressByClientCIDRs",
              {{{"clientCIDR", "0.0.0.0/0"},
                {"serverAddress", absl::StrCat(options_.host, ":", port_)}}}}}};
  }
  auto groups = registry_.Groups();
  if (path == "/openapi/v3") {
    // Just enough OpenAPI v3 for kubectl to see that the server validates
    // fields itself (fieldValidation on PATCH), so it skips client-side
    // schema validation. No schemas: `kubectl explain` does not work.
    json paths = json::object();
    for (const auto& [group, versions] : groups) {
      for (const auto& v : versions) {
        std::string gv = group.empty() ? "api/" + v : "apis/" + group + "/" + v;
        json doc = Discovery("/openapi/v3/" + gv).body;
        paths[gv] = {{"serverRelativeURL",
                      absl::StrCat("/openapi/v3/", gv,
                                   "?hash=", absl::Hex(std::hash<std::string>()(doc.dump())))}};
      }
    }
    return {200, {{"paths", paths}}};
  }
  if (absl::StartsWith(path, "/openapi/v3/")) {
    std::vector<std::string> seg = absl::StrSplit(path.substr(12), '/', absl::SkipEmpty());
    std::string group, version;
    if (seg.size() == 2 && seg[0] == "api") {
      version = seg[1];
    } else if (seg.size() == 3 && seg[0] == "apis") {
      group = seg[1];
      version = seg[2];
    } else {
      return Error(404, "the server could not find the requested resource");
    }
    json paths = json::object();
    for (const auto& r : registry_.all()) {
      if (r->group != group || r->version != version) continue;
      std::string base = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
      std::string p = r->namespaced
                          ? absl::StrCat(base, "/namespaces/{namespace}/", r->plural, "/{name}")
                          : absl::StrCat(base, "/", r->plural, "/{name}");
      json params = json::array();
      for (const char* q : {"dryRun", "fieldManager", "fieldValidation", "force"}) {
        params.push_back({{"name", q}, {"in", "query"}, {"schema", {{"type", "string"}}}});
      }
      json gvk = {{"group", r->group}, {"version", r->version}, {"kind", r->kind}};
      paths[p] = {{"patch",
                   {{"operationId", "patch" + r->kind},
                    {"parameters", params},
                    {"x-kubernetes-action", "patch"},
                    {"x-kubernetes-group-version-kind", gvk},
                    {"responses", {{"200", {{"description", "OK"}}}}}}}};
    }
    if (paths.empty()) return Error(404, "the server could not find the requested resource");
    return {200,
            {{"openapi", "3.0.0"},
             {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
             {"paths", paths},
             {"components", {{"schemas", json::object()}}}}};
  }
  if (path == "/apis") {
    json list = json::array();
    for (const auto& [group, versions] : groups) {
      if (group.empty()) continue;
      json vs = json::array();
      for (const auto& v : versions)
        vs.push_back({{"groupVersion", group + "/" + v}, {"version", v}});
      list.push_back({{"name", group},
                      {"versions", vs},
                      {"preferredVersion",
                       {{"groupVersion", group + "/" + versions[0]}, {"version", versions[0]}}}});
    }
    return {200, {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", list}}};
  }
  // /api/v1, /apis/<g>, /apis/<g>/<v>
  std::vector<std::string> seg = absl::StrSplit(path.substr(1), '/', absl::SkipEmpty());
  std::string group, version;
  if (seg.size() == 2 && seg[0] == "api") {
    version = seg[1];
  } else if (seg.size() == 2 && seg[0] == "apis") {
    for (const auto& [g, versions] : groups) {
      if (g != seg[1]) continue;
      json vs = json::array();
      for (const auto& v : versions) vs.push_back({{"groupVersion", g + "/" + v}, {"version", v}});
      return {200,
              {{"kind", "APIGroup"},
               {"apiVersion", "v1"},
               {"name", g},
               {"versions", vs},
               {"preferredVersion",
                {{"groupVersion", g + "/" + versions[0]}, {"version", versions[0]}}}}};
    }
    return Error(404, "the server could not find the requested resource");
  } else if (seg.size() == 3 && seg[0] == "apis") {
    group = seg[1];
    version = seg[2];
  } else {
    return Error(404, "the server could not find the requested resource");
  }
  json resources = json::array();
  for (const auto& r : registry_.all()) {
    if (r->group != group || r->version != version) continue;
    json verbs = {"create", "delete", "deletecollection", "get",
                  "list",   "patch",  "update",           "watch"};
    json entry = {{"name", r->plural},
                  {"singularName", r->singular},
                  {"namespaced", r->namespaced},
                  {"kind", r->kind},
                  {"verbs", verbs}};
    if (!r->short_names.empty()) entry["shortNames"] = r->short_names;
    if (!r->categories.empty()) entry["categories"] = r->categories;
    resources.push_back(entry);
    if (r->status_subresource) {
      resources.push_back({{"name", r->plural + "/status"},
                           {"singularName", ""},
                           {"namespaced", r->namespaced},
                           {"kind", r->kind},
                           {"verbs", {"get", "patch", "update"}}});
    }
  }
  if (resources.empty()) return Error(404, "the server could not find the requested resource");
  return {200,
          {{"kind", "APIResourceList"},
           {"apiVersion", "v1"},
           {"groupVersion", group.empty() ? version : group + "/" + version},
           {"resources", resources}}};
}

absl::StatusOr<Target> ApiServer::Impl::ParseTarget(const std::string& path, bool* not_api) {
  std::vector<std::string> seg =
      absl::StrSplit(path.substr(std::min<size_t>(1, path.size())), '/', absl::SkipEmpty());
  Target t;
  size_t i = 0;
  if (seg.size() >= 2 && seg[0] == "api") {
    t.version = seg[1];
    i = 2;
  } else if (seg.size() >= 3 && seg[0] == "apis") {
    t.group = seg[1];
    t.version = seg[2];
    i = 3;
  } else {
    *not_api = true;
    return absl::NotFoundError("not an API path");
  }
  if (i == seg.size()) {
    *not_api = true;
    return absl::NotFoundError("discovery");
  }
  if (seg[i] == "watch") {
    t.watch = true;
    ++i;
  }
  std::vector<std::string> rest(seg.begin() + i, seg.end());
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    const ResourceInfo* r = registry_.Find(t.group, t.version, rest[2]);
    if (r != nullptr && r->namespaced) {
      t.ns = rest[1];
      t.res = r;
      if (rest.size() >= 4) t.name = rest[3];
      if (rest.size() >= 5) t.sub = rest[4];
      if (rest.size() > 5) return absl::NotFoundError("too deep");
      return t;
    }
  }
  if (rest.empty()) return absl::NotFoundError("empty");
  t.res = registry_.Find(t.group, t.version, rest[0]);
  if (t.res == nullptr) return absl::NotFoundError("unknown resource");
  if (rest.size() >= 2) t.name = rest[1];
  if (rest.size() >= 3) t.sub = rest[2];
  if (rest.size() > 3) return absl::NotFoundError("too deep");
  if (t.res->namespaced && !t.name.empty()) return absl::NotFoundError("namespaced needs ns");
  return t;
}

ListShapeFn ApiServer::Impl::ShapeFn(const ResourceInfo& res) const {
  bool custom = !res.crd_name.empty();
  json schema = res.schema;
  return [custom, schema](const std::vector<std::string>& path) -> ListShape {
    if (path.size() == 2 && path[0] == "metadata") {
      if (path[1] == "finalizers") return {ListType::kSet, {}};
      if (path[1] == "ownerReferences") return {ListType::kMap, {"uid"}};
      return {};
    }
    if (custom) return SchemaListShape(schema, path);
    if (path.empty()) return {};
    const std::string& last = path.back();
    const std::string prev = path.size() >= 2 ? path[path.size() - 2] : "";
    if (last == "containers" || last == "initContainers" || last == "ephemeralContainers" ||
        last == "volumes" || last == "env" || last == "imagePullSecrets") {
      return {ListType::kMap, {"name"}};
    }
    if (last == "volumeMounts") return {ListType::kMap, {"mountPath"}};
    if (last == "volumeDevices") return {ListType::kMap, {"devicePath"}};
    if (last == "ports") {
      if (prev == "spec" && path.size() == 2) return {ListType::kMap, {"port"}};
      return {ListType::kMap, {"containerPort"}};
    }
    if (last == "conditions") return {ListType::kMap, {"type"}};
    if (last == "hostAliases") return {ListType::kMap, {"ip"}};
    return {};
  };
}

json ApiServer::Impl::FieldScope(const ResourceInfo& res, const json& obj, bool status_sub) const {
  json o = obj.is_object() ? obj : json::object();
  o.erase("apiVersion");
  o.erase("kind");
  if (o.contains("metadata") && o["metadata"].is_object()) {
    json& m = o["metadata"];
    for (const char* k : {"managedFields", "resourceVersion", "uid", "creationTimestamp",
                          "generation", "name", "namespace", "selfLink", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generateName"}) {
      m.erase(k);
    }
    if (m.empty()) o.erase("metadata");
  }
  if (res.status_subresource) {
    if (status_sub) {
      json s = json::object();
      if (o.contains("status")) s["status"] = o["status"];
      return s;
    }
    o.erase("status");
  }
  return o;
}

json ApiServer::Impl::UpdatedManaged(const ResourceInfo& res, const json* old, const json& updated,
                                     const std::string& manager, bool status_sub) const {
  ListShapeFn shape = ShapeFn(res);
  json new_scope = FieldScope(res, updated, status_sub);
  FieldSet now = FieldsOf(new_scope, shape);
  FieldSet changed, removed;
  json managed = json::array();
  if (old != nullptr) {
    const json* m = Find(*old, {"metadata", "managedFields"});
    if (m != nullptr && m->is_array()) managed = *m;
    json old_scope = FieldScope(res, *old, status_sub);
    for (const auto& p : now) {
      const json* before = ValueAt(old_scope, p);
      if (before == nullptr) {
        changed.insert(p);
      } else if (absl::StartsWith(p.back(), "f:") && *before != *ValueAt(new_scope, p)) {
        changed.insert(p);
      }
    }
    for (const auto& p : FieldsOf(old_scope, shape)) {
      if (!now.count(p)) removed.insert(p);
    }
  } else {
    changed = now;
  }
  std::string want_sub = status_sub ? "status" : "";
  json out = json::array();
  bool found = false;
  std::string now_time = KubeTime(absl::Now());
  for (auto e : managed) {
    std::string sub = Str(e, {"subresource"});
    FieldSet set = FieldSetFromV1(e.contains("fieldsV1") ? e["fieldsV1"] : json::object());
    bool mine =
        Str(e, {"manager"}) == manager && Str(e, {"operation"}) == "Update" && sub == want_sub;
    if (sub == want_sub) {
      for (const auto& p : removed) set.erase(p);
      if (mine) {
        set.insert(changed.begin(), changed.end());
        found = true;
        e["time"] = now_time;
        e["apiVersion"] = res.GroupVersion();
      } else {
        for (const auto& p : changed) set.erase(p);
      }
    }
    if (set.empty()) continue;
    e["fieldsV1"] = FieldSetToV1(set);
    out.push_back(e);
  }
  if (!found && !changed.empty()) {
    json e = {
        {"manager", manager}, {"operation", "Update"},    {"apiVersion", res.GroupVersion()},
        {"time", now_time},   {"fieldsType", "FieldsV1"}, {"fieldsV1", FieldSetToV1(changed)}};
    if (status_sub) e["subresource"] = "status";
    out.push_back(e);
  }
  return out;
}

std::string ApiServer::Impl::Manager(const httplib::Request& req) const {
  std::string m = req.get_param_value("fieldManager");
  if (!m.empty()) return m;
  std::string ua = req.get_header_value("User-Agent");
  size_t slash = ua.find('/');
  if (slash != std::string::npos) ua = ua.substr(0, slash);
  return ua.empty() ? "unknown" : ua;
}

Reply ApiServer::Impl::Get(const Target& t) {
  if (t.name.empty()) return Error(405, "method not allowed");
  json* obj = FindObject(t.res->StorageKey(), Key(t.ns, t.name));
  if (obj == nullptr) return NotFound(t);
  return {200, Present(*t.res, *obj)};
}

Reply ApiServer::Impl::List(const Target& t, const httplib::Request& req) {
  auto labels = Selector::ParseLabels(req.get_param_value("labelSelector"));
  if (!labels.ok()) return Error(400, std::string(labels.status().message()));
  auto fields = Selector::ParseFields(req.get_param_value("fieldSelector"));
  if (!fields.ok()) return Error(400, std::string(fields.status().message()));
  int64_t limit = 0;
  if (req.has_param("limit")) absl::SimpleAtoi(req.get_param_value("limit"), &limit);
  std::string start;
  if (req.has_param("continue") && !req.get_param_value("continue").empty()) {
    if (!absl::WebSafeBase64Unescape(req.get_param_value("continue"), &start)) {
      return Error(400, "continue key is not valid");
    }
  }
  std::vector<json> items;
  std::string next;
  int64_t remaining = 0;
  auto s = objects_.find(t.res->StorageKey());
  if (s != objects_.end()) {
    for (auto it = start.empty() ? s->second.begin() : s->second.upper_bound(start);
         it != s->second.end(); ++it) {
      const json& obj = it->second;
      if (!t.ns.empty() && Str(obj, {"metadata", "namespace"}) != t.ns) continue;
      if (!labels->Matches(obj) || !fields->Matches(obj)) continue;
      if (limit > 0 && static_cast<int64_t>(items.size()) >= limit) {
        remaining++;
        continue;
      }
      items.push_back(Present(*t.res, obj));
      next = it->first;
    }
  }
  json meta = {{"resourceVersion", std::to_string(rv_)}};
  if (remaining > 0) {
    meta["continue"] = absl::WebSafeBase64Escape(next);
    meta["remainingItemCount"] = remaining;
  }
  if (WantsTable(req)) {
    json table = ToTable(*t.res, items, req.get_param_value("includeObject"), true);
    table["metadata"] = meta;
    return {200, table};
  }
  json list = {{"kind", t.res->kind + "List"},
               {"apiVersion", t.res->GroupVersion()},
               {"metadata", meta},
               {"items", items}};
  return {200, list};
}

void ApiServer::Impl::Watch(const Target& target, const httplib::Request& req,
                            httplib::Response& res) {
  auto labels = Selector::ParseLabels(req.get_param_value("labelSelector"));
  auto fields = Selector::ParseFields(req.get_param_value("fieldSelector"));
  if (!labels.ok() || !fields.ok()) {
    Send(res, Error(400, "invalid selector"));
    return;
  }
  struct State {
    ResourceInfo res;
    std::string ns, name;
    Selector labels, fields;
    uint64_t cursor = 0;
    uint64_t epoch = 0;
    bool bookmarks = false;
    bool table = false;
    bool sent_columns = false;
    std::string include_object;
    absl::Time deadline = absl::InfiniteFuture();
    absl::Time last_sent = absl::Now();
    std::deque<std::string> pending;
    bool done = false;
  };
  auto st = std::make_shared<State>();
  st->res = *target.res;
  st->ns = target.ns;
  st->name = target.name;
  st->labels = *labels;
  st->fields = *fields;
  st->bookmarks = req.get_param_value("allowWatchBookmarks") == "true";
  st->table = WantsTable(req);
  st->include_object = req.get_param_value("includeObject");
  int64_t timeout = 0;
  if (absl::SimpleAtoi(req.get_param_value("timeoutSeconds"), &timeout) && timeout > 0) {
    st->deadline = absl::Now() + absl::Seconds(timeout);
  }
  std::string from = req.get_param_value("resourceVersion");
  if (!st->name.empty()) {
    // /namespaces/ns/things/name?watch=true watches one object.
    auto sel = Selector::ParseFields("metadata.name=" + st->name);
    if (sel.ok()) st->fields = *sel;
  }
  auto matches = [st](const json& obj) {
    if (obj.is_null()) return false;
    if (!st->ns.empty() && Str(obj, {"metadata", "namespace"}) != st->ns) return false;
    return st->labels.Matches(obj) && st->fields.Matches(obj);
  };
  auto encode = [this, st](const std::string& type, const json& obj) {
    json o = obj;
    if (type != "BOOKMARK" && type != "ERROR") {
      o["apiVersion"] = st->res.GroupVersion();
      o["kind"] = st->res.kind;
      if (st->table) {
        o = ToTable(st->res, {o}, st->include_object, !st->sent_columns);
        st->sent_columns = true;
      }
    }
    (void)this;
    return json({{"type", type}, {"object", o}}).dump() + "\n";
  };
  {
    Lock lock(mu_);
    st->epoch = watch_epoch_;
    uint64_t rv = 0;
    if (from.empty() || from == "0") {
      auto s = objects_.find(st->res.StorageKey());
      if (s != objects_.end()) {
        for (const auto& [key, obj] : s->second) {
          if (matches(obj)) st->pending.push_back(encode("ADDED", obj));
        }
      }
      st->cursor = rv_;
    } else if (!absl::SimpleAtoi(from, &rv)) {
      lock.unlock();
      Send(res, Error(400, "invalid resourceVersion"));
      return;
    } else if (rv < oldest_rv_ || rv > rv_) {
      // Too old (compacted), or from the future (a restarted server): the
      // client must relist. A real server answers the latter with a 504
      // "Too large resource version" after a wait; 410 has the same effect.
      st->pending.push_back(encode(
          "ERROR",
          StatusBody(410, "Expired",
                     absl::StrCat("too old resource version: ", rv, " (", oldest_rv_, ")"))));
      st->done = true;
    } else {
      st->cursor = rv;
    }
  }
  res.status = 200;
  res.set_header("Cache-Control", "no-cache, private");
  res.set_chunked_content_provider(
      "application/json;stream=watch",
      [this, st, matches, encode](size_t, httplib::DataSink& sink) -> bool {
        if (!st->pending.empty()) {
          std::string chunk;
          while (!st->pending.empty()) {
            chunk += st->pending.front();
            st->pending.pop_front();
          }
          st->last_sent = absl::Now();
          return sink.write(chunk.data(), chunk.size());
        }
        if (st->done) {
          sink.done();
          return true;
        }
        Lock lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(500), [&] {
          return stopping_ || watch_epoch_ != st->epoch ||
                 (!events_.empty() && events_.back().rv > st->cursor) || st->cursor < oldest_rv_;
        });
        if (stopping_ || watch_epoch_ != st->epoch || absl::Now() >= st->deadline) {
          st->done = true;
          return true;
        }
        if (st->cursor < oldest_rv_) {
          st->pending.push_back(
              encode("ERROR", StatusBody(410, "Expired",
                                         absl::StrCat("too old resource version: ", st->cursor,
                                                      " (", oldest_rv_, ")"))));
          st->done = true;
          return true;
        }
        const std::string key = st->res.StorageKey();
        auto it = std::upper_bound(events_.begin(), events_.end(), st->cursor,
                                   [](uint64_t rv, const Event& e) { return rv < e.rv; });
        for (; it != events_.end(); ++it) {
          st->cursor = it->rv;
          if (it->storage_key != key) continue;
          bool now = matches(it->object);
          if (it->type == "MODIFIED") {
            bool before = matches(it->old);
            if (before && now) {
              st->pending.push_back(encode("MODIFIED", it->object));
            } else if (!before && now) {
              st->pending.push_back(encode("ADDED", it->object));
            } else if (before && !now) {
              st->pending.push_back(encode("DELETED", it->object));
            }
          } else if (now) {
            st->pending.push_back(encode(it->type, it->object));
          }
        }
        if (st->pending.empty() && st->bookmarks &&
            absl::Now() - st->last_sent > absl::Seconds(1)) {
          json bm = {{"kind", st->res.kind},
                     {"apiVersion", st->res.GroupVersion()},
                     {"metadata", {{"resourceVersion", std::to_string(st->cursor)}}}};
          st->pending.push_back(encode("BOOKMARK", bm));
        }
        if (st->pending.empty() && absl::Now() - st->last_sent > absl::Seconds(5)) {
          // Probe the connection so a gone client frees this thread.
          st->last_sent = absl::Now();
          lock.unlock();
          return sink.is_writable();
        }
        return true;
      });
}

Reply ApiServer::Impl::Create(const Target& t, const httplib::Request& req) {
  absl::StatusOr<json> body;
  if (absl::StartsWith(req.get_header_value("Content-Type"),
                       "application/vnd.kubernetes.protobuf")) {
    body = DecodeKubeProtobuf(req.body);
    if (absl::IsUnimplemented(body.status())) {
      return Error(415, std::string(body.status().message()));
    }
  } else {
    body = ParseBody(req.body, false);
  }
  if (!body.ok()) return Error(400, std::string(body.status().message()));
  json obj = *body;
  if (!obj.is_object()) return Error(400, "the body must be a JSON object");
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
  json& meta = obj["metadata"];
  std::string name = Str(meta, {"name"});
  if (name.empty() && !Str(meta, {"generateName"}).empty()) {
    name = Str(meta, {"generateName"}) + RandomSuffix(5);
    meta["name"] = name;
  }
  std::string body_ns = Str(meta, {"namespace"});
  if (t.res->namespaced) {
    if (!body_ns.empty() && body_ns != t.ns) {
      return Error(400,
                   "the namespace of the provided object does not match the namespace "
                   "sent on the request");
    }
    meta["namespace"] = t.ns;
  } else {
    meta.erase("namespace");
  }
  std::string kind = Str(obj, {"kind"});
  if (!kind.empty() && kind != t.res->kind) {
    return Error(400, absl::StrCat("the API version in the data (", Str(obj, {"apiVersion"}),
                                   ") does not match the expected API version (",
                                   t.res->GroupVersion(), ")"));
  }
  if (name.empty()) {
    return Error(422,
                 absl::StrCat(t.res->QualifiedKind(),
                              " \"\" is invalid: metadata.name: Required value: name or "
                              "generateName is required"),
                 {{"group", t.res->group},
                  {"kind", t.res->kind},
                  {"causes",
                   {{{"reason", "FieldValueRequired"},
                     {"message", "Required value: name or generateName is required"},
                     {"field", "metadata.name"}}}}});
  }
  Target target = t;
  target.name = name;
  if (FindObject(t.res->StorageKey(), Key(t.ns, name)) != nullptr) {
    return Error(409, absl::StrCat(t.res->QualifiedResource(), " \"", name, "\" already exists"),
                 {{"name", name}, {"group", t.res->group}, {"kind", t.res->plural}},
                 "AlreadyExists");
  }
  meta.erase("managedFields");
  if (t.res->status_subresource && t.res->crd_name.empty() == false) obj.erase("status");
  bool dry = req.get_param_value("dryRun") == "All";
  json managed = UpdatedManaged(*t.res, nullptr, obj, Manager(req), false);
  return Commit(target, nullptr, obj, managed, dry, 201);
}

Reply ApiServer::Impl::Update(const Target& t, const httplib::Request& req) {
  auto body = ParseBody(req.body, false);
  if (!body.ok()) return Error(400, std::string(body.status().message()));
  json obj = *body;
  if (!obj.is_object()) return Error(400, "the body must be a JSON object");
  if (Str(obj, {"metadata", "name"}) != t.name) {
    return Error(400, "the name of the object (" + Str(obj, {"metadata", "name"}) +
                          ") does not match the name on the URL (" + t.name + ")");
  }
  json* live = FindObject(t.res->StorageKey(), Key(t.ns, t.name));
  if (live == nullptr) {
    if (t.res->kind == "Lease" || t.res->kind == "Event") {
      // Leases allow create-on-update like the real registry.
      httplib::Request copy = req;
      Target ct = t;
      ct.name.clear();
      return Create(ct, copy);
    }
    return NotFound(t);
  }
  std::string rv = Str(obj, {"metadata", "resourceVersion"});
  if (!rv.empty() && rv != Str(*live, {"metadata", "resourceVersion"})) {
    return Error(
        409,
        absl::StrCat("Operation cannot be fulfilled on ", t.res->QualifiedResource(), " \"", t.name,
                     "\": the object has been modified; please apply your changes to "
                     "the latest version and try again"),
        {{"name", t.name}, {"group", t.res->group}, {"kind", t.res->plural}});
  }
  json old = *live;
  bool status_sub = t.sub == "status";
  if (t.res->status_subresource) {
    json merged = old;
    if (status_sub) {
      if (obj.contains("status")) {
        merged["status"] = obj["status"];
      } else {
        merged.erase("status");
      }
      obj = merged;
    } else {
      if (old.contains("status")) {
        obj["status"] = old["status"];
      } else {
        obj.erase("status");
      }
    }
  }
  obj["metadata"]["namespace"] = Str(old, {"metadata", "namespace"});
  if (!t.res->namespaced) obj["metadata"].erase("namespace");
  json managed = UpdatedManaged(*t.res, &old, obj, Manager(req), status_sub);
  return Commit(t, &old, obj, managed, req.get_param_value("dryRun") == "All", 200);
}

Reply ApiServer::Impl::Patch(const Target& t, const httplib::Request& req) {
  std::string ctype = req.get_header_value("Content-Type");
  size_t semi = ctype.find(';');
  if (semi != std::string::npos) ctype = ctype.substr(0, semi);
  bool dry = req.get_param_value("dryRun") == "All";
  json* live = FindObject(t.res->StorageKey(), Key(t.ns, t.name));
  if (ctype == "application/apply-patch+yaml") {
    auto body = ParseBody(req.body, true);
    if (!body.ok()) return Error(400, std::string(body.status().message()));
    return Apply(t, req, live, *body, dry);
  }
  auto body = ParseBody(req.body, false);
  if (!body.ok()) return Error(400, std::string(body.status().message()));
  if (live == nullptr) return NotFound(t);
  json old = *live;
  json patched;
  if (ctype == "application/merge-patch+json") {
    patched = MergePatch(old, *body);
  } else if (ctype == "application/strategic-merge-patch+json") {
    if (!t.res->crd_name.empty()) {
      return Error(415, absl::StrCat("the body of the request was in an unknown format - accepted "
                                     "media types include: application/json-patch+json, "
                                     "application/merge-patch+json, application/apply-patch+yaml"));
    }
    patched = StrategicMergePatch(old, *body, ShapeFn(*t.res));
  } else if (ctype == "application/json-patch+json") {
    try {
      patched = old.patch(*body);
    } catch (const std::exception& e) {
      return Error(422, absl::StrCat("the server rejected our request due to an error in our "
                                     "request: ",
                                     e.what()));
    }
  } else {
    return Error(415,
                 "the body of the request was in an unknown format - accepted media types "
                 "include: application/json-patch+json, application/merge-patch+json, "
                 "application/apply-patch+yaml, application/strategic-merge-patch+json");
  }
  if (!patched.is_object()) return Error(422, "patch did not produce an object");
  std::string rv = Str(patched, {"metadata", "resourceVersion"});
  if (!rv.empty() && rv != Str(old, {"metadata", "resourceVersion"})) {
    return Error(
        409,
        absl::StrCat("Operation cannot be fulfilled on ", t.res->QualifiedResource(), " \"", t.name,
                     "\": the object has been modified; please apply your changes to "
                     "the latest version and try again"),
        {{"name", t.name}, {"group", t.res->group}, {"kind", t.res->plural}});
  }
  bool status_sub = t.sub == "status";
  if (t.res->status_subresource) {
    json merged = old;
    if (status_sub) {
      if (patched.contains("status")) {
        merged["status"] = patched["status"];
      } else {
        merged.erase("status");
      }
      patched = merged;
    } else if (old.contains("status")) {
      patched["status"] = old["status"];
    } else {
      patched.erase("status");
    }
  }
  if (!patched.contains("metadata") || !patched["metadata"].is_object()) {
    patched["metadata"] = old["metadata"];
  }
  patched["metadata"]["name"] = t.name;
  if (t.res->namespaced) patched["metadata"]["namespace"] = t.ns;
  json managed = UpdatedManaged(*t.res, &old, patched, Manager(req), status_sub);
  return Commit(t, &old, patched, managed, dry, 200);
}

Reply ApiServer::Impl::Apply(const Target& t, const httplib::Request& req, const json* live_ptr,
                             json applied, bool dry_run) {
  std::string manager = req.get_param_value("fieldManager");
  if (manager.empty()) {
    return Error(400, "PATCH, fieldManager: Required value: is required for apply patch");
  }
  if (!applied.is_object()) return Error(400, "apply patch must be an object");
  if (Str(applied, {"kind"}) != t.res->kind ||
      Str(applied, {"apiVersion"}) != t.res->GroupVersion()) {
    return Error(400, absl::StrCat("the API version in the data (", Str(applied, {"apiVersion"}),
                                   ") does not match the expected API version (",
                                   t.res->GroupVersion(), ")"));
  }
  std::string applied_name = Str(applied, {"metadata", "name"});
  if (applied_name != t.name) {
    return Error(400, "the name of the object (" + applied_name +
                          ") does not match the name on the URL (" + t.name + ")");
  }
  bool force = req.get_param_value("force") == "true";
  bool status_sub = t.sub == "status";
  ListShapeFn shape = ShapeFn(*t.res);
  json scoped_applied = FieldScope(*t.res, applied, status_sub);
  FieldSet new_set = FieldsOf(scoped_applied, shape);
  std::string want_sub = status_sub ? "status" : "";

  json live = live_ptr != nullptr ? *live_ptr : json{{"metadata", {{"name", t.name}}}};
  if (live_ptr == nullptr && status_sub) return NotFound(t);
  json live_scope = FieldScope(*t.res, live, status_sub);
  json managed = json::array();
  if (const json* m = Find(live, {"metadata", "managedFields"}); m && m->is_array()) managed = *m;

  // Conflicts: fields another manager owns whose value this apply changes.
  std::map<std::string, std::vector<FieldPath>> conflicts;
  FieldSet own_old;
  for (const auto& e : managed) {
    if (Str(e, {"subresource"}) != want_sub) continue;
    FieldSet set = FieldSetFromV1(e.contains("fieldsV1") ? e["fieldsV1"] : json::object());
    std::string m = Str(e, {"manager"});
    if (m == manager && Str(e, {"operation"}) == "Apply") {
      own_old = set;
      continue;
    }
    for (const auto& p : new_set) {
      if (!set.count(p) || !absl::StartsWith(p.back(), "f:")) continue;
      const json* lv = ValueAt(live_scope, p);
      const json* av = ValueAt(scoped_applied, p);
      if (lv != nullptr && av != nullptr && *lv != *av) conflicts[m].push_back(p);
    }
  }
  if (!conflicts.empty() && !force) {
    size_t n = 0;
    json causes = json::array();
    std::vector<std::string> parts;
    for (const auto& [m, paths] : conflicts) {
      n += paths.size();
      std::vector<std::string> ps;
      for (const auto& p : paths) {
        std::string ps1 = FieldPathString(p);
        ps.push_back(ps1);
        causes.push_back({{"reason", "FieldManagerConflict"},
                          {"message", absl::StrCat("conflict with \"", m, "\": ", ps1)},
                          {"field", ps1}});
      }
      if (ps.size() == 1) {
        parts.push_back(absl::StrCat("conflict with \"", m, "\": ", ps[0]));
      } else {
        parts.push_back(absl::StrCat("conflicts with \"", m, "\":\n- ", absl::StrJoin(ps, "\n- ")));
      }
    }
    std::string msg =
        absl::StrCat("Apply failed with ", n,
                     n == 1 ? " conflict: " : " conflicts: ", absl::StrJoin(parts, "\n"));
    return Error(
        409, msg,
        {{"name", t.name}, {"group", t.res->group}, {"kind", t.res->plural}, {"causes", causes}});
  }
  // Fields this manager applied before but not now, and nobody else owns, go.
  FieldSet others;
  json out_managed = json::array();
  std::string now_time = KubeTime(absl::Now());
  for (auto e : managed) {
    std::string m = Str(e, {"manager"});
    bool same_scope = Str(e, {"subresource"}) == want_sub;
    if (same_scope && m == manager && Str(e, {"operation"}) == "Apply") continue;
    if (same_scope) {
      FieldSet set = FieldSetFromV1(e.contains("fieldsV1") ? e["fieldsV1"] : json::object());
      auto c = conflicts.find(m);
      if (c != conflicts.end()) {
        for (const auto& p : c->second) set.erase(p);
      }
      if (set.empty()) continue;
      others.insert(set.begin(), set.end());
      e["fieldsV1"] = FieldSetToV1(set);
    }
    out_managed.push_back(e);
  }
  json merged = live;
  for (const auto& p : own_old) {
    if (new_set.count(p)) continue;
    bool owned = false;
    for (const auto& o : others) {
      if (o.size() >= p.size() && std::equal(p.begin(), p.end(), o.begin())) {
        owned = true;
        break;
      }
    }
    if (!owned) RemoveAt(merged, p);
  }
  json to_merge = scoped_applied;
  if (status_sub) {
    to_merge = json{{"status", scoped_applied.value("status", json::object())}};
  }
  json applied_meta = Find(applied, {"metadata"}) ? applied["metadata"] : json::object();
  merged = ApplyMerge(merged, to_merge, shape);
  merged["metadata"]["name"] = t.name;
  if (t.res->namespaced) merged["metadata"]["namespace"] = t.ns;
  json entry = {
      {"manager", manager}, {"operation", "Apply"},     {"apiVersion", t.res->GroupVersion()},
      {"time", now_time},   {"fieldsType", "FieldsV1"}, {"fieldsV1", FieldSetToV1(new_set)}};
  if (status_sub) entry["subresource"] = "status";
  if (!new_set.empty()) out_managed.push_back(entry);
  if (live_ptr == nullptr) {
    // Apply creates.
    Target target = t;
    json meta = merged["metadata"];
    if (FindObject(t.res->StorageKey(), Key(t.ns, t.name)) == nullptr && t.res->namespaced) {
      // Commit checks the namespace.
    }
    (void)meta;
    return Commit(target, nullptr, merged, out_managed, dry_run, 201);
  }
  json old = *live_ptr;
  return Commit(t, &old, merged, out_managed, dry_run, 200);
}

Reply ApiServer::Impl::Commit(const Target& t, const json* old, json obj, json managed,
                              bool dry_run, int success_code) {
  const ResourceInfo& res = *t.res;
  std::string name = t.name;
  json& meta = obj["metadata"];
  if (!meta.is_object()) meta = json::object();
  meta["name"] = name;
  std::string ns = t.ns;
  if (res.namespaced) {
    meta["namespace"] = ns;
    json* nsobj = FindObject("/namespaces", ns);
    if (nsobj == nullptr) {
      return Error(404, absl::StrCat("namespaces \"", ns, "\" not found"),
                   {{"name", ns}, {"kind", "namespaces"}});
    }
    if (old == nullptr && Find(*nsobj, {"metadata", "deletionTimestamp"}) != nullptr) {
      return Error(403,
                   absl::StrCat(res.QualifiedResource(), " \"", name,
                                "\" is forbidden: unable to create new content in namespace ", ns,
                                " because it is being terminated"),
                   {{"name", name},
                    {"group", res.group},
                    {"kind", res.plural},
                    {"causes",
                     {{{"reason", "NamespaceTerminating"},
                       {"message", "namespace " + ns + " is being terminated"},
                       {"field", "metadata.namespace"}}}}});
    }
  }
  // Shapes the real server would fail to decode (400, like its JSON decoder).
  auto string_map = [](const json* v) {
    if (v == nullptr || v->is_null()) return true;
    if (!v->is_object()) return false;
    for (const auto& e : *v) {
      if (!e.is_string()) return false;
    }
    return true;
  };
  const json* fins = Find(meta, {"finalizers"});
  bool fins_ok = fins == nullptr || fins->is_null() || fins->is_array();
  if (fins_ok && fins != nullptr && fins->is_array()) {
    for (const auto& f : *fins) fins_ok = fins_ok && f.is_string();
  }
  if (!string_map(Find(meta, {"labels"})) || !string_map(Find(meta, {"annotations"})) || !fins_ok ||
      ((res.kind == "ConfigMap" || res.kind == "Secret") &&
       (!string_map(Find(obj, {"data"})) || !string_map(Find(obj, {"stringData"})) ||
        !string_map(Find(obj, {"binaryData"}))))) {
    return Error(400, absl::StrCat("unable to decode ", res.QualifiedKind(), " \"", name,
                                   "\": labels, annotations and data must be maps of strings, "
                                   "finalizers a list of strings"));
  }
  obj["apiVersion"] = res.GroupVersion();
  obj["kind"] = res.kind;
  // System-owned metadata comes from the stored object, never the client.
  if (old != nullptr) {
    for (const char* k : {"uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"}) {
      const json* v = Find(*old, {"metadata", k});
      if (v != nullptr) {
        meta[k] = *v;
      } else {
        meta.erase(k);
      }
    }
  } else {
    meta["uid"] = NewUid();
    meta["creationTimestamp"] = KubeTime(absl::Now());
    meta.erase("deletionTimestamp");
    meta.erase("deletionGracePeriodSeconds");
    meta.erase("generation");
  }
  meta.erase("selfLink");
  meta.erase("resourceVersion");
  meta.erase("managedFields");
  if (meta.contains("labels") && (meta["labels"].is_null() || meta["labels"].empty())) {
    meta.erase("labels");
  }
  if (meta.contains("annotations") &&
      (meta["annotations"].is_null() || meta["annotations"].empty())) {
    meta.erase("annotations");
  }
  if (meta.contains("finalizers") && (meta["finalizers"].is_null() || meta["finalizers"].empty())) {
    meta.erase("finalizers");
  }

  // Kind-specific defaulting and validation.
  std::vector<FieldError> errors;
  bool valid_name = res.kind == "Namespace" ? IsDns1123Label(name) : IsDns1123Subdomain(name);
  if (!valid_name && old == nullptr) {
    errors.push_back({"metadata.name", "FieldValueInvalid",
                      absl::StrCat("Invalid value: \"", name, "\": a lowercase RFC 1123 ",
                                   res.kind == "Namespace" ? "label" : "subdomain",
                                   " must consist of lower case alphanumeric characters, '-' or "
                                   "'.', and must start and end with an alphanumeric character")});
  }
  if (!res.crd_name.empty()) {
    std::vector<std::string> unknown;
    Prune(obj, res.schema, &unknown);
    ApplyDefaults(obj, res.schema);
    for (auto& e : Validate(obj, res.schema)) errors.push_back(e);
  } else if (res.kind == "Secret") {
    if (obj.contains("stringData") && obj["stringData"].is_object()) {
      for (auto it = obj["stringData"].begin(); it != obj["stringData"].end(); ++it) {
        if (it.value().is_string()) {
          obj["data"][it.key()] = absl::Base64Escape(it.value().get<std::string>());
        }
      }
    }
    obj.erase("stringData");
    if (Str(obj, {"type"}).empty()) obj["type"] = "Opaque";
  } else if (res.kind == "Namespace") {
    if (!obj.contains("spec")) obj["spec"] = {{"finalizers", {"kubernetes"}}};
    if (Str(obj, {"status", "phase"}).empty()) obj["status"] = {{"phase", "Active"}};
    meta["labels"]["kubernetes.io/metadata.name"] = name;
  } else if (res.kind == "Service") {
    json& spec = obj["spec"];
    if (!spec.is_object()) spec = json::object();
    if (Str(spec, {"type"}).empty()) spec["type"] = "ClusterIP";
    if (Str(spec, {"sessionAffinity"}).empty()) spec["sessionAffinity"] = "None";
    std::string old_ip = old != nullptr ? Str(*old, {"spec", "clusterIP"}) : "";
    std::string ip = Str(spec, {"clusterIP"});
    if (ip.empty()) {
      ip = !old_ip.empty() ? old_ip
                           : absl::StrCat("10.96.", cluster_ip_counter_ / 250, ".",
                                          cluster_ip_counter_ % 250 + 1);
      if (old_ip.empty() && !dry_run) cluster_ip_counter_++;
    }
    if (!old_ip.empty() && ip != old_ip) {
      errors.push_back({"spec.clusterIP", "FieldValueInvalid",
                        absl::StrCat("Invalid value: \"", ip, "\": field is immutable")});
    }
    spec["clusterIP"] = ip;
    if (ip != "None") spec["clusterIPs"] = {ip};
    if (spec.contains("ports") && spec["ports"].is_array()) {
      for (auto& p : spec["ports"]) {
        if (!p.is_object()) continue;
        if (!p.contains("protocol")) p["protocol"] = "TCP";
        if (!p.contains("targetPort") && p.contains("port")) p["targetPort"] = p["port"];
      }
    }
  } else if (res.kind == "Deployment" || res.kind == "StatefulSet" || res.kind == "ReplicaSet") {
    if (Find(obj, {"spec"}) != nullptr && !obj["spec"].contains("replicas")) {
      obj["spec"]["replicas"] = 1;
    }
  }
  if (old != nullptr) {
    // Immutable fields the real server guards.
    auto immutable = [&](std::initializer_list<const char*> path, const std::string& field) {
      const json* before = Find(*old, path);
      const json* after = Find(obj, path);
      if (before != nullptr && (after == nullptr || *before != *after)) {
        errors.push_back({field, "FieldValueInvalid",
                          absl::StrCat("Invalid value: ", after ? after->dump() : "null",
                                       ": field is immutable")});
      }
    };
    if (res.kind == "Deployment" || res.kind == "StatefulSet" || res.kind == "DaemonSet") {
      immutable({"spec", "selector"}, "spec.selector");
    }
    if (res.kind == "Job") {
      immutable({"spec", "template"}, "spec.template");
      immutable({"spec", "selector"}, "spec.selector");
    }
    if ((res.kind == "ConfigMap" || res.kind == "Secret") && Find(*old, {"immutable"}) &&
        *Find(*old, {"immutable"}) == true) {
      immutable({"data"}, "data");
    }
    if (res.kind == "CustomResourceDefinition") immutable({"spec", "group"}, "spec.group");
  }
  if (res.kind == "CustomResourceDefinition") {
    std::string group = Str(obj, {"spec", "group"});
    std::string plural = Str(obj, {"spec", "names", "plural"});
    if (name != plural + "." + group) {
      errors.push_back({"metadata.name", "FieldValueInvalid",
                        absl::StrCat("Invalid value: \"", name,
                                     "\": must be spec.names.plural+\".\"+spec.group")});
    }
    if (Str(obj, {"spec", "names", "kind"}).empty()) {
      errors.push_back({"spec.names.kind", "FieldValueRequired", "Required value"});
    }
    const json* versions = Find(obj, {"spec", "versions"});
    if (versions == nullptr || !versions->is_array() || versions->empty()) {
      errors.push_back({"spec.versions", "FieldValueInvalid",
                        "Invalid value: must have exactly one version marked as storage version"});
    }
  }
  if (!errors.empty()) {
    json causes = json::array();
    std::vector<std::string> msgs;
    for (const auto& e : errors) {
      causes.push_back({{"reason", e.reason}, {"message", e.message}, {"field", e.field}});
      msgs.push_back(e.field + ": " + e.message);
    }
    std::string joined = msgs.size() == 1 ? msgs[0] : "[" + absl::StrJoin(msgs, ", ") + "]";
    return Error(422, absl::StrCat(res.QualifiedKind(), " \"", name, "\" is invalid: ", joined),
                 {{"name", name}, {"group", res.group}, {"kind", res.kind}, {"causes", causes}});
  }

  // generation: 1 on create, +1 when anything but metadata and status changes.
  if (res.has_generation || !res.crd_name.empty()) {
    if (old == nullptr) {
      meta["generation"] = 1;
    } else {
      json a = *old, b = obj;
      for (json* o : {&a, &b}) {
        o->erase("metadata");
        o->erase("status");
        o->erase("apiVersion");
        o->erase("kind");
      }
      int64_t gen = 1;
      if (const json* g = Find(*old, {"metadata", "generation"}); g && g->is_number()) {
        gen = g->get<int64_t>();
      }
      meta["generation"] = a != b ? gen + 1 : gen;
    }
  }
  if (res.kind == "CustomResourceDefinition") CrdWritten(obj, dry_run);
  if (simulate_workloads_) SimulateControllers(res, obj);
  if (managed.is_array() && !managed.empty()) meta["managedFields"] = managed;

  const std::string storage_key = res.StorageKey();
  const std::string key = Key(ns, name);
  if (old != nullptr) {
    // A no-op write keeps the resourceVersion and emits nothing.
    json a = *old, b = obj;
    a["metadata"].erase("resourceVersion");
    for (json* o : {&a, &b}) {
      o->erase("apiVersion");
      if (o->contains("metadata")) {
        json& m = (*o)["metadata"];
        if (m.contains("managedFields")) {
          for (auto& e : m["managedFields"]) e.erase("time");
        }
      }
    }
    if (a == b) return {200, Present(res, *old)};
    // Last finalizer gone on an object being deleted: delete it now.
    if (Find(obj, {"metadata", "deletionTimestamp"}) != nullptr &&
        Find(obj, {"metadata", "finalizers"}) == nullptr) {
      if (dry_run) return {200, Present(res, obj)};
      meta["resourceVersion"] = Str(*old, {"metadata", "resourceVersion"});
      objects_[storage_key][key] = obj;
      Remove(storage_key, key, false);
      return {200, Present(res, obj)};
    }
  }
  if (dry_run) {
    if (old != nullptr) meta["resourceVersion"] = Str(*old, {"metadata", "resourceVersion"});
    return {success_code, Present(res, obj)};
  }
  meta["resourceVersion"] = std::to_string(NextRv());
  objects_[storage_key][key] = obj;
  Emit(storage_key, old == nullptr ? "ADDED" : "MODIFIED", obj, old ? *old : json());
  if (old == nullptr && res.kind == "Namespace") {
    Target sa;
    sa.res = registry_.Find("", "v1", "serviceaccounts");
    sa.ns = name;
    sa.name = "default";
    Commit(sa, nullptr, {{"metadata", {{"name", "default"}}}}, json::array(), false, 201);
  }
  return {success_code, Present(res, obj)};
}

void ApiServer::Impl::SimulateControllers(const ResourceInfo& res, json& obj) {
  if (!res.crd_name.empty() || !res.group.size()) return;
  const json* gen = Find(obj, {"metadata", "generation"});
  int64_t g = gen != nullptr && gen->is_number() ? gen->get<int64_t>() : 1;
  const json* rep = Find(obj, {"spec", "replicas"});
  int64_t n = rep != nullptr && rep->is_number() ? rep->get<int64_t>() : 1;
  std::string now = KubeTime(absl::Now());
  if (res.kind == "Deployment") {
    obj["status"] = {{"observedGeneration", g},
                     {"replicas", n},
                     {"updatedReplicas", n},
                     {"readyReplicas", n},
                     {"availableReplicas", n},
                     {"conditions",
                      {{{"type", "Available"},
                        {"status", "True"},
                        {"reason", "MinimumReplicasAvailable"},
                        {"message", "Deployment has minimum availability."},
                        {"lastUpdateTime", now},
                        {"lastTransitionTime", now}},
                       {{"type", "Progressing"},
                        {"status", "True"},
                        {"reason", "NewReplicaSetAvailable"},
                        {"message", "ReplicaSet has successfully progressed."},
                        {"lastUpdateTime", now},
                        {"lastTransitionTime", now}}}}};
    if (n == 0) {
      obj["status"].erase("readyReplicas");
      obj["status"].erase("availableReplicas");
    }
  } else if (res.kind == "StatefulSet") {
    obj["status"] = {{"observedGeneration", g},
                     {"replicas", n},
                     {"readyReplicas", n},
                     {"currentReplicas", n},
                     {"updatedReplicas", n},
                     {"availableReplicas", n},
                     {"currentRevision", Str(obj, {"metadata", "name"}) + "-1"},
                     {"updateRevision", Str(obj, {"metadata", "name"}) + "-1"}};
  } else if (res.kind == "DaemonSet") {
    obj["status"] = {{"observedGeneration", g},     {"desiredNumberScheduled", 1},
                     {"currentNumberScheduled", 1}, {"numberReady", 1},
                     {"updatedNumberScheduled", 1}, {"numberAvailable", 1},
                     {"numberMisscheduled", 0}};
  } else if (res.kind == "ReplicaSet") {
    obj["status"] = {{"observedGeneration", g},
                     {"replicas", n},
                     {"readyReplicas", n},
                     {"availableReplicas", n},
                     {"fullyLabeledReplicas", n}};
  } else if (res.kind == "Job" && Find(obj, {"status", "succeeded"}) == nullptr) {
    obj["status"] = {{"startTime", now},
                     {"completionTime", now},
                     {"succeeded", 1},
                     {"conditions",
                      {{{"type", "Complete"},
                        {"status", "True"},
                        {"lastProbeTime", now},
                        {"lastTransitionTime", now}}}}};
  }
}

void ApiServer::Impl::CrdWritten(json& crd, bool dry_run) {
  const json& spec = crd["spec"];
  std::string group = Str(spec, {"group"});
  std::vector<ResourceInfo> infos;
  std::vector<std::string> stored;
  const json* versions = Find(spec, {"versions"});
  if (versions != nullptr && versions->is_array()) {
    for (const auto& v : *versions) {
      const json* served = Find(v, {"served"});
      const json* storage = Find(v, {"storage"});
      if (storage != nullptr && *storage == true) stored.push_back(Str(v, {"name"}));
      if (served != nullptr && *served == false) continue;
      ResourceInfo r;
      r.group = group;
      r.version = Str(v, {"name"});
      r.kind = Str(spec, {"names", "kind"});
      r.plural = Str(spec, {"names", "plural"});
      r.singular = Str(spec, {"names", "singular"});
      if (r.singular.empty()) {
        r.singular = r.kind;
        std::transform(r.singular.begin(), r.singular.end(), r.singular.begin(), ::tolower);
      }
      r.namespaced = Str(spec, {"scope"}) != "Cluster";
      r.short_names = StrList(spec["names"], "shortNames");
      r.categories = StrList(spec["names"], "categories");
      r.status_subresource = Find(v, {"subresources", "status"}) != nullptr;
      r.has_generation = true;
      r.storage_version = storage != nullptr && *storage == true;
      const json* schema = Find(v, {"schema", "openAPIV3Schema"});
      r.schema = schema != nullptr ? *schema : json::object();
      const json* cols = Find(v, {"additionalPrinterColumns"});
      r.printer_columns = cols != nullptr ? *cols : json::array();
      infos.push_back(r);
    }
  }
  std::string now = KubeTime(absl::Now());
  json names = spec.contains("names") ? spec["names"] : json::object();
  if (!names.contains("singular")) {
    std::string s = Str(names, {"kind"});
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    names["singular"] = s;
  }
  if (!names.contains("listKind")) names["listKind"] = Str(names, {"kind"}) + "List";
  crd["status"] = {{"acceptedNames", names},
                   {"storedVersions", stored},
                   {"conditions",
                    {{{"type", "NamesAccepted"},
                      {"status", "True"},
                      {"reason", "NoConflicts"},
                      {"message", "no conflicts found"},
                      {"lastTransitionTime", now}},
                     {{"type", "Established"},
                      {"status", "True"},
                      {"reason", "InitialNamesAccepted"},
                      {"message", "the initial names have been accepted"},
                      {"lastTransitionTime", now}}}}};
  if (!dry_run) registry_.SetCrdResources(Str(crd, {"metadata", "name"}), std::move(infos));
}

void ApiServer::Impl::Emit(const std::string& storage_key, const std::string& type, const json& obj,
                           const json& old) {
  uint64_t rv = 0;
  absl::SimpleAtoi(Str(obj, {"metadata", "resourceVersion"}), &rv);
  events_.push_back({rv, storage_key, type, obj, old});
  while (events_.size() > options_.event_history) {
    oldest_rv_ = events_.front().rv;
    events_.pop_front();
  }
  cv_.notify_all();
}

void ApiServer::Impl::Remove(const std::string& storage_key, const std::string& key, bool dry_run) {
  json* found = FindObject(storage_key, key);
  if (found == nullptr || dry_run) return;
  json obj = *found;
  objects_[storage_key].erase(key);
  obj["metadata"]["resourceVersion"] = std::to_string(NextRv());
  Emit(storage_key, "DELETED", obj);
  std::string uid = Str(obj, {"metadata", "uid"});
  std::string ns = Str(obj, {"metadata", "namespace"});
  std::string kind = Str(obj, {"kind"});
  if (kind == "CustomResourceDefinition") CrdRemoved(obj);
  // Garbage collection: dependents whose owner is gone are deleted too.
  std::vector<std::pair<std::string, std::string>> dependents;
  for (auto& [skey, objs] : objects_) {
    for (auto& [k, o] : objs) {
      const json* refs = Find(o, {"metadata", "ownerReferences"});
      if (refs == nullptr || !refs->is_array()) continue;
      for (const auto& r : *refs) {
        if (Str(r, {"uid"}) == uid) dependents.emplace_back(skey, k);
      }
    }
  }
  for (const auto& [skey, k] : dependents) MarkDeleting(skey, k);
  if (!ns.empty()) MaybeFinishNamespace(ns);
}

void ApiServer::Impl::MarkDeleting(const std::string& storage_key, const std::string& key) {
  json* found = FindObject(storage_key, key);
  if (found == nullptr) return;
  const json* fin = Find(*found, {"metadata", "finalizers"});
  if (fin != nullptr && fin->is_array() && !fin->empty()) {
    if (Find(*found, {"metadata", "deletionTimestamp"}) != nullptr) return;
    json old = *found;
    (*found)["metadata"]["deletionTimestamp"] = KubeTime(absl::Now());
    (*found)["metadata"]["deletionGracePeriodSeconds"] = 0;
    (*found)["metadata"]["resourceVersion"] = std::to_string(NextRv());
    Emit(storage_key, "MODIFIED", *found, old);
    return;
  }
  Remove(storage_key, key, false);
}

void ApiServer::Impl::MaybeFinishNamespace(const std::string& ns) {
  json* nsobj = FindObject("/namespaces", ns);
  if (nsobj == nullptr || Find(*nsobj, {"metadata", "deletionTimestamp"}) == nullptr) return;
  for (const auto& [skey, objs] : objects_) {
    for (const auto& [k, o] : objs) {
      if (absl::StartsWith(k, ns + "/") && Str(o, {"metadata", "namespace"}) == ns) return;
    }
  }
  Remove("/namespaces", ns, false);
}

void ApiServer::Impl::CrdRemoved(const json& crd) {
  std::string name = Str(crd, {"metadata", "name"});
  std::string group = Str(crd, {"spec", "group"});
  std::string plural = Str(crd, {"spec", "names", "plural"});
  std::string skey = group + "/" + plural;
  std::vector<std::string> keys;
  for (const auto& [k, o] : objects_[skey]) keys.push_back(k);
  for (const auto& k : keys) Remove(skey, k, false);
  registry_.RemoveCrd(name);
}

Reply ApiServer::Impl::Delete(const Target& t, const httplib::Request& req) {
  json* live = FindObject(t.res->StorageKey(), Key(t.ns, t.name));
  if (live == nullptr) return NotFound(t);
  json opts = json::object();
  if (!req.body.empty()) {
    json parsed = json::parse(req.body, nullptr, false);
    if (parsed.is_object()) opts = parsed;
  }
  std::string want_uid = Str(opts, {"preconditions", "uid"});
  std::string want_rv = Str(opts, {"preconditions", "resourceVersion"});
  if ((!want_uid.empty() && want_uid != Str(*live, {"metadata", "uid"})) ||
      (!want_rv.empty() && want_rv != Str(*live, {"metadata", "resourceVersion"}))) {
    return Error(409,
                 absl::StrCat("Operation cannot be fulfilled on ", t.res->QualifiedResource(),
                              " \"", t.name, "\": Precondition failed"),
                 {{"name", t.name}, {"group", t.res->group}, {"kind", t.res->plural}});
  }
  bool dry = req.get_param_value("dryRun") == "All";
  json before = Present(*t.res, *live);
  if (dry) return {200, before};
  std::string policy = Str(opts, {"propagationPolicy"});
  if (policy.empty()) policy = req.get_param_value("propagationPolicy");
  const std::string skey = t.res->StorageKey();
  const std::string key = Key(t.ns, t.name);
  if (t.res->kind == "Namespace") {
    if (Find(*live, {"metadata", "deletionTimestamp"}) == nullptr) {
      json old = *live;
      (*live)["metadata"]["deletionTimestamp"] = KubeTime(absl::Now());
      (*live)["metadata"]["deletionGracePeriodSeconds"] = 0;
      (*live)["status"]["phase"] = "Terminating";
      (*live)["metadata"]["resourceVersion"] = std::to_string(NextRv());
      Emit(skey, "MODIFIED", *live, old);
      json result = Present(*t.res, *live);
      std::vector<std::pair<std::string, std::string>> contents;
      for (const auto& [sk, objs] : objects_) {
        for (const auto& [k, o] : objs) {
          if (Str(o, {"metadata", "namespace"}) == t.name) contents.emplace_back(sk, k);
        }
      }
      for (const auto& [sk, k] : contents) MarkDeleting(sk, k);
      MaybeFinishNamespace(t.name);
      return {200, result};
    }
    return {200, before};
  }
  if (policy == "Foreground") {
    json old = *live;
    json& fin = (*live)["metadata"]["finalizers"];
    if (!fin.is_array()) fin = json::array();
    if (std::find(fin.begin(), fin.end(), "foregroundDeletion") == fin.end()) {
      fin.push_back("foregroundDeletion");
    }
    // Dependents go first; then the owner's finalizer is dropped.
    std::string uid = Str(*live, {"metadata", "uid"});
    std::vector<std::pair<std::string, std::string>> deps;
    for (auto& [sk, objs] : objects_) {
      for (auto& [k, o] : objs) {
        const json* refs = Find(o, {"metadata", "ownerReferences"});
        if (refs == nullptr || !refs->is_array()) continue;
        for (const auto& r : *refs) {
          if (Str(r, {"uid"}) == uid) deps.emplace_back(sk, k);
        }
      }
    }
    for (const auto& [sk, k] : deps) MarkDeleting(sk, k);
    live = FindObject(skey, key);
    if (live == nullptr) return {200, before};
    json& fin2 = (*live)["metadata"]["finalizers"];
    fin2.erase(std::remove(fin2.begin(), fin2.end(), "foregroundDeletion"), fin2.end());
    if (fin2.empty()) (*live)["metadata"].erase("finalizers");
  }
  const json* fin = Find(*live, {"metadata", "finalizers"});
  if (fin != nullptr && fin->is_array() && !fin->empty()) {
    MarkDeleting(skey, key);
    json* after = FindObject(skey, key);
    return {200, Present(*t.res, after ? *after : *live)};
  }
  Remove(skey, key, false);
  return {200, before};
}

Reply ApiServer::Impl::DeleteCollection(const Target& t, const httplib::Request& req) {
  auto labels = Selector::ParseLabels(req.get_param_value("labelSelector"));
  if (!labels.ok()) return Error(400, std::string(labels.status().message()));
  std::vector<std::string> keys;
  json items = json::array();
  for (const auto& [k, o] : objects_[t.res->StorageKey()]) {
    if (!t.ns.empty() && Str(o, {"metadata", "namespace"}) != t.ns) continue;
    if (!labels->Matches(o)) continue;
    keys.push_back(k);
    items.push_back(Present(*t.res, o));
  }
  if (req.get_param_value("dryRun") != "All") {
    for (const auto& k : keys) MarkDeleting(t.res->StorageKey(), k);
  }
  return {200,
          {{"kind", t.res->kind + "List"},
           {"apiVersion", t.res->GroupVersion()},
           {"metadata", {{"resourceVersion", std::to_string(rv_)}}},
           {"items", items}}};
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(ApiServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  absl::Status st = impl->Start();
  if (!st.ok()) return st;
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiServer::~ApiServer() { impl_->Stop(); }
int ApiServer::port() const { return impl_->port(); }
std::string ApiServer::url() const { return impl_->url(); }
std::string ApiServer::Kubeconfig() const { return impl_->Kubeconfig(); }
void ApiServer::Wait() { impl_->Wait(); }
void ApiServer::Stop() { impl_->Stop(); }

}  // namespace gitops::testing
