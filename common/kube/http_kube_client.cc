#include "common/kube/http_kube_client.h"

#include <curl/curl.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/kube/rate_limiter.h"
#include "common/metrics/metrics.h"
#include "common/status/status_macros.h"
#include "common/yaml/yaml.h"

namespace gitops::common {
namespace {

using json = nlohmann::json;

std::string UrlEncode(absl::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

void AddParam(std::string& query, absl::string_view key, absl::string_view value) {
  if (value.empty()) return;
  absl::StrAppend(&query, query.empty() ? "?" : "&", key, "=", UrlEncode(value));
}

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t CaptureHeader(char* data, size_t size, size_t n, void* out) {
  absl::string_view line(data, size * n);
  if (absl::StartsWithIgnoreCase(line, "retry-after:")) {
    *static_cast<std::string*>(out) =
        std::string(absl::StripAsciiWhitespace(line.substr(strlen("retry-after:"))));
  }
  return size * n;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Metrics::Global().DefineCounter(
        "rest_client_requests_total",
        "Number of HTTP requests to the Kubernetes API, partitioned by status code and method.");
  });
}

// client-go's metric; code "<error>" for requests that got no response.
void CountRequest(const std::string& method, long code) {
  Metrics::Global().Add(
      "rest_client_requests_total",
      {{"code", code > 0 ? std::to_string(code) : "<error>"}, {"method", method}});
}

}  // namespace

struct HttpKubeClient::Shared {
  KubeConfig config;
  HttpKubeClientOptions options;
  TokenBucket limiter;
  std::atomic<int64_t> requests{0};

  absl::Mutex pool_mu;
  std::vector<CURL*> pool ABSL_GUARDED_BY(pool_mu);

  absl::Mutex discovery_mu;
  std::map<GroupVersionKind, ResourceMapping> mappings ABSL_GUARDED_BY(discovery_mu);

  Shared(KubeConfig c, HttpKubeClientOptions o)
      : config(std::move(c)), options(o), limiter(config.qps, config.burst) {}
  ~Shared() {
    absl::MutexLock lock(&pool_mu);
    for (CURL* h : pool) curl_easy_cleanup(h);
  }
  CURL* Acquire() {
    {
      absl::MutexLock lock(&pool_mu);
      if (!pool.empty()) {
        CURL* h = pool.back();
        pool.pop_back();
        curl_easy_reset(h);
        return h;
      }
    }
    return curl_easy_init();
  }
  void Release(CURL* h) {
    absl::MutexLock lock(&pool_mu);
    if (pool.size() < 16) {
      pool.push_back(h);
    } else {
      curl_easy_cleanup(h);
    }
  }
  std::string Token() const {
    if (!config.token_file.empty()) {
      std::ifstream f(config.token_file);
      if (f) {
        std::stringstream ss;
        ss << f.rdbuf();
        std::string t = ss.str();
        while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
        if (!t.empty()) return t;
      }
    }
    return config.bearer_token;
  }
};

// Applies connection, TLS and auth settings shared by every request.
static curl_slist* Setup(CURL* h, const HttpKubeClient::Shared& s, const std::string& url,
                         const std::string& method, const std::string& content_type,
                         const std::string& user, const std::vector<std::string>& groups) {
  const KubeConfig& c = s.config;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, c.user_agent.c_str());
  if (method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (!c.ca_pem.empty()) {
    curl_blob blob{const_cast<char*>(c.ca_pem.data()), c.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (c.insecure_skip_tls_verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!c.client_cert_pem.empty() && !c.client_key_pem.empty()) {
    curl_blob cert{const_cast<char*>(c.client_cert_pem.data()), c.client_cert_pem.size(),
                   CURL_BLOB_COPY};
    curl_blob key{const_cast<char*>(c.client_key_pem.data()), c.client_key_pem.size(),
                  CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  if (!content_type.empty()) {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  }
  std::string token = s.Token();
  if (!token.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  } else if (!c.username.empty()) {
    curl_easy_setopt(h, CURLOPT_USERNAME, c.username.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, c.password.c_str());
  }
  if (!user.empty()) {
    headers = curl_slist_append(headers, ("Impersonate-User: " + user).c_str());
    for (const auto& g : groups) {
      headers = curl_slist_append(headers, ("Impersonate-Group: " + g).c_str());
    }
  }
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  return headers;
}

absl::StatusOr<std::unique_ptr<HttpKubeClient>> HttpKubeClient::Create(
    const KubeConfig& config, const HttpKubeClientOptions& options) {
  if (config.server.empty()) return absl::InvalidArgumentError("kube config has no server");
  GlobalInit();
  auto shared = std::make_shared<Shared>(config, options);
  return std::unique_ptr<HttpKubeClient>(new HttpKubeClient(std::move(shared), "", {}));
}

HttpKubeClient::HttpKubeClient(std::shared_ptr<Shared> shared, std::string user,
                               std::vector<std::string> groups)
    : shared_(std::move(shared)),
      impersonate_user_(std::move(user)),
      impersonate_groups_(std::move(groups)) {}

HttpKubeClient::~HttpKubeClient() = default;

int64_t HttpKubeClient::request_count() const { return shared_->requests.load(); }

std::unique_ptr<KubeClient> HttpKubeClient::Impersonate(const std::string& user,
                                                        const std::vector<std::string>& groups) {
  return std::unique_ptr<KubeClient>(new HttpKubeClient(shared_, user, groups));
}

absl::StatusOr<HttpKubeClient::Response> HttpKubeClient::Do(const std::string& method,
                                                            const std::string& path,
                                                            const std::string& body,
                                                            const std::string& content_type) {
  const auto& opts = shared_->options;
  absl::Duration backoff = opts.initial_backoff;
  std::string url = shared_->config.server + path;
  absl::Status last = absl::UnavailableError("no attempt made");
  for (int attempt = 1; attempt <= std::max(1, opts.max_attempts); ++attempt) {
    shared_->limiter.Wait();
    shared_->requests.fetch_add(1);
    CURL* h = shared_->Acquire();
    if (h == nullptr) return absl::InternalError("curl_easy_init failed");
    Response resp;
    curl_slist* headers = Setup(h, *shared_, url, method, body.empty() ? "" : content_type,
                                impersonate_user_, impersonate_groups_);
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(shared_->config.timeout)));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, AppendBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, CaptureHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp.retry_after);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.code);
    CountRequest(method, rc == CURLE_OK ? resp.code : 0);
    curl_slist_free_all(headers);
    shared_->Release(h);
    bool retryable;
    if (rc != CURLE_OK) {
      last = absl::UnavailableError(absl::StrCat(method, " ", path, ": ", curl_easy_strerror(rc)));
      // A request that may have reached the server is retried only if idempotent.
      retryable =
          method == "GET" || rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
    } else if (resp.code == 429 || resp.code >= 500) {
      last = StatusFromResponse(resp.code, resp.body, absl::StrCat(method, " ", path));
      retryable = true;
    } else {
      return resp;
    }
    if (!retryable || attempt >= opts.max_attempts) break;
    absl::Duration wait = backoff;
    int64_t retry_after = 0;
    if (absl::SimpleAtoi(resp.retry_after, &retry_after) && retry_after > 0) {
      wait = std::max(wait, absl::Seconds(std::min<int64_t>(retry_after, 10)));
    }
    // Full jitter on top of the exponential step.
    static thread_local std::mt19937 rng{std::random_device{}()};
    wait += absl::Milliseconds(std::uniform_int_distribution<int>(
        0, static_cast<int>(absl::ToInt64Milliseconds(backoff) / 2))(rng));
    absl::SleepFor(wait);
    backoff = std::min(backoff * 2, opts.max_backoff);
  }
  return last;
}

absl::StatusOr<json> HttpKubeClient::DoJson(const std::string& method, const std::string& path,
                                            const std::string& body,
                                            const std::string& content_type,
                                            absl::string_view context) {
  ASSIGN_OR_RETURN(Response resp, Do(method, path, body, content_type));
  if (resp.code < 200 || resp.code >= 300) {
    return StatusFromResponse(resp.code, resp.body, context);
  }
  json j = json::parse(resp.body, nullptr, false);
  if (j.is_discarded()) {
    return absl::InternalError(absl::StrCat(context, ": response is not JSON"));
  }
  return j;
}

absl::StatusOr<std::string> HttpKubeClient::Raw(const std::string& method, const std::string& path,
                                                const std::string& body,
                                                const std::string& content_type) {
  ASSIGN_OR_RETURN(Response resp, Do(method, path, body, content_type));
  if (resp.code < 200 || resp.code >= 300) {
    return StatusFromResponse(resp.code, resp.body, absl::StrCat(method, " ", path));
  }
  return resp.body;
}

absl::StatusOr<ResourceMapping> HttpKubeClient::Mapping(const GroupVersionKind& gvk) {
  {
    absl::MutexLock lock(&shared_->discovery_mu);
    auto it = shared_->mappings.find(gvk);
    if (it != shared_->mappings.end()) return it->second;
  }
  std::string path = gvk.group.empty() ? "/api/" + gvk.version
                                       : absl::StrCat("/apis/", gvk.group, "/", gvk.version);
  auto resp = Do("GET", path, "", "");
  if (!resp.ok()) return resp.status();
  std::string no_match =
      absl::StrCat("no matches for kind \"", gvk.kind, "\" in version \"", gvk.ApiVersion(), "\"");
  if (resp->code == 404) return absl::NotFoundError(no_match);
  if (resp->code != 200) {
    return StatusFromResponse(resp->code, resp->body, "discovery " + gvk.ApiVersion());
  }
  json list = json::parse(resp->body, nullptr, false);
  if (list.is_discarded() || !list.is_object() || !list.contains("resources") ||
      !list["resources"].is_array()) {
    return absl::InternalError("discovery " + gvk.ApiVersion() + ": malformed APIResourceList");
  }
  std::map<std::string, bool> status_of;
  for (const auto& r : list["resources"]) {
    std::string name = common::StringAt(r, {"name"});
    size_t slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash + 1) == "status") {
      status_of[name.substr(0, slash)] = true;
    }
  }
  absl::MutexLock lock(&shared_->discovery_mu);
  for (const auto& r : list["resources"]) {
    std::string name = common::StringAt(r, {"name"});
    if (name.empty() || name.find('/') != std::string::npos) continue;
    ResourceMapping m;
    m.gvk = {gvk.group, gvk.version, common::StringAt(r, {"kind"})};
    m.resource = name;
    m.namespaced = r.contains("namespaced") && r["namespaced"] == true;
    m.has_status = status_of.count(name) > 0;
    shared_->mappings[m.gvk] = m;
  }
  auto it = shared_->mappings.find(gvk);
  if (it == shared_->mappings.end()) return absl::NotFoundError(no_match);
  return it->second;
}

absl::StatusOr<std::string> HttpKubeClient::ObjectPath(const GroupVersionKind& gvk,
                                                       absl::string_view ns, absl::string_view name,
                                                       bool collection) {
  ASSIGN_OR_RETURN(ResourceMapping m, Mapping(gvk));
  std::string path = gvk.group.empty() ? "/api/" + gvk.version
                                       : absl::StrCat("/apis/", gvk.group, "/", gvk.version);
  if (m.namespaced) {
    if (ns.empty() && !collection) {
      return absl::InvalidArgumentError(
          absl::StrCat(gvk.kind, " \"", name, "\" is namespaced: namespace is required"));
    }
    if (!ns.empty()) absl::StrAppend(&path, "/namespaces/", UrlEncode(ns));
  }
  absl::StrAppend(&path, "/", m.resource);
  if (!collection) absl::StrAppend(&path, "/", UrlEncode(name));
  return path;
}

absl::StatusOr<std::string> HttpKubeClient::PathFor(const json& obj, bool collection) {
  GroupVersionKind gvk = GroupVersionKind::Of(obj);
  if (gvk.kind.empty() || gvk.version.empty()) {
    return absl::InvalidArgumentError("object has no apiVersion or kind");
  }
  std::string name = common::StringAt(obj, {"metadata", "name"});
  if (name.empty() && !collection) return absl::InvalidArgumentError("object has no metadata.name");
  return ObjectPath(gvk, common::StringAt(obj, {"metadata", "namespace"}), name, collection);
}

std::string HttpKubeClient::Query(const WriteOptions& options, bool apply) const {
  std::string q;
  std::string manager = options.field_manager;
  if (manager.empty() && !apply) manager = shared_->config.user_agent;
  AddParam(q, "fieldManager", manager);
  if (options.dry_run) AddParam(q, "dryRun", "All");
  if (apply && options.force) AddParam(q, "force", "true");
  return q;
}

absl::StatusOr<json> HttpKubeClient::Get(const GroupVersionKind& gvk, absl::string_view ns,
                                         absl::string_view name) {
  ASSIGN_OR_RETURN(std::string path, ObjectPath(gvk, ns, name));
  return DoJson("GET", path, "", "", "");
}

absl::StatusOr<json> HttpKubeClient::List(const GroupVersionKind& gvk, absl::string_view ns,
                                          const ListOptions& options) {
  ASSIGN_OR_RETURN(std::string path, ObjectPath(gvk, ns, "", true));
  std::string q;
  AddParam(q, "labelSelector", options.label_selector);
  AddParam(q, "fieldSelector", options.field_selector);
  if (options.limit > 0) AddParam(q, "limit", absl::StrCat(options.limit));
  AddParam(q, "continue", options.continue_token);
  AddParam(q, "resourceVersion", options.resource_version);
  return DoJson("GET", path + q, "", "", "");
}

namespace {

struct WatchState {
  const std::function<bool(const WatchEvent&)>* on_event;
  const std::atomic<bool>* cancel;
  std::string buffer;
  std::string error_body;
  long http_code = 0;
  CURL* handle = nullptr;
  bool stopped_by_handler = false;
  absl::Status stream_error;
};

bool DeliverLine(WatchState& st, absl::string_view line) {
  json ev = json::parse(line.begin(), line.end(), nullptr, false);
  if (ev.is_discarded() || !ev.is_object()) {
    st.stream_error = absl::InternalError("watch: undecodable event");
    return false;
  }
  std::string type = common::StringAt(ev, {"type"});
  const json& obj = ev.contains("object") ? ev["object"] : json();
  WatchEvent out;
  if (type == "ADDED") {
    out.type = WatchEvent::Type::kAdded;
  } else if (type == "MODIFIED") {
    out.type = WatchEvent::Type::kModified;
  } else if (type == "DELETED") {
    out.type = WatchEvent::Type::kDeleted;
  } else if (type == "BOOKMARK") {
    out.type = WatchEvent::Type::kBookmark;
  } else if (type == "ERROR") {
    long code = obj.is_object() && obj.contains("code") && obj["code"].is_number_integer()
                    ? obj["code"].get<long>()
                    : 500;
    st.stream_error = StatusFromResponse(code, obj.dump(), "watch");
    return false;
  } else {
    return true;  // unknown event types are skipped
  }
  out.object = obj;
  if (!(*st.on_event)(out)) {
    st.stopped_by_handler = true;
    return false;
  }
  return true;
}

size_t WatchWrite(char* data, size_t size, size_t n, void* arg) {
  auto& st = *static_cast<WatchState*>(arg);
  size_t len = size * n;
  if (st.http_code == 0) curl_easy_getinfo(st.handle, CURLINFO_RESPONSE_CODE, &st.http_code);
  if (st.http_code != 200) {
    st.error_body.append(data, len);
    return len;
  }
  st.buffer.append(data, len);
  size_t start = 0, nl;
  while ((nl = st.buffer.find('\n', start)) != std::string::npos) {
    absl::string_view line(st.buffer.data() + start, nl - start);
    start = nl + 1;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    if (!DeliverLine(st, line)) return 0;  // aborts the transfer
  }
  st.buffer.erase(0, start);
  return len;
}

int WatchProgress(void* arg, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& st = *static_cast<WatchState*>(arg);
  return st.cancel != nullptr && st.cancel->load() ? 1 : 0;
}

}  // namespace

absl::Status HttpKubeClient::Watch(const GroupVersionKind& gvk, absl::string_view ns,
                                   const WatchOptions& options,
                                   const std::function<bool(const WatchEvent&)>& on_event) {
  ASSIGN_OR_RETURN(std::string path, ObjectPath(gvk, ns, "", true));
  std::string q = "?watch=true";
  AddParam(q, "resourceVersion", options.resource_version);
  AddParam(q, "labelSelector", options.label_selector);
  AddParam(q, "fieldSelector", options.field_selector);
  if (options.allow_bookmarks) AddParam(q, "allowWatchBookmarks", "true");
  if (options.timeout_seconds > 0)
    AddParam(q, "timeoutSeconds", absl::StrCat(options.timeout_seconds));
  shared_->limiter.Wait();
  shared_->requests.fetch_add(1);
  CURL* h = curl_easy_init();
  if (h == nullptr) return absl::InternalError("curl_easy_init failed");
  WatchState st;
  st.on_event = &on_event;
  st.cancel = options.cancel;
  st.handle = h;
  curl_slist* headers = Setup(h, *shared_, shared_->config.server + path + q, "GET", "",
                              impersonate_user_, impersonate_groups_);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WatchWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, WatchProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &st);
  CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  CountRequest("WATCH", code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  if (st.stopped_by_handler) return absl::OkStatus();
  if (!st.stream_error.ok()) return st.stream_error;
  if (rc == CURLE_ABORTED_BY_CALLBACK) return absl::CancelledError("watch cancelled");
  if (code != 0 && code != 200) return StatusFromResponse(code, st.error_body, "watch " + gvk.kind);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("watch ", gvk.kind, ": ", curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

absl::StatusOr<json> HttpKubeClient::Create(const json& obj, const WriteOptions& options) {
  ASSIGN_OR_RETURN(std::string path, PathFor(obj, true));
  return DoJson("POST", path + Query(options, false), obj.dump(), "application/json", "");
}

absl::StatusOr<json> HttpKubeClient::Update(const json& obj, const WriteOptions& options) {
  ASSIGN_OR_RETURN(std::string path, PathFor(obj, false));
  return DoJson("PUT", path + Query(options, false), obj.dump(), "application/json", "");
}

absl::StatusOr<json> HttpKubeClient::UpdateStatus(const json& obj, const WriteOptions& options) {
  ASSIGN_OR_RETURN(std::string path, PathFor(obj, false));
  return DoJson("PUT", path + "/status" + Query(options, false), obj.dump(), "application/json",
                "");
}

absl::StatusOr<json> HttpKubeClient::Patch(const GroupVersionKind& gvk, absl::string_view ns,
                                           absl::string_view name, PatchType type,
                                           const json& patch, const WriteOptions& options,
                                           bool status) {
  ASSIGN_OR_RETURN(std::string path, ObjectPath(gvk, ns, name));
  const char* ctype = type == PatchType::kMerge  ? "application/merge-patch+json"
                      : type == PatchType::kJson ? "application/json-patch+json"
                                                 : "application/strategic-merge-patch+json";
  return DoJson("PATCH", path + (status ? "/status" : "") + Query(options, false), patch.dump(),
                ctype, "");
}

absl::StatusOr<json> HttpKubeClient::Apply(const json& obj, const WriteOptions& options) {
  if (options.field_manager.empty()) {
    return absl::InvalidArgumentError("server-side apply needs a field manager");
  }
  ASSIGN_OR_RETURN(std::string path, PathFor(obj, false));
  return DoJson("PATCH", path + Query(options, true), obj.dump(), "application/apply-patch+yaml",
                "");
}

absl::StatusOr<json> HttpKubeClient::ApplyStatus(const json& obj, const WriteOptions& options) {
  if (options.field_manager.empty()) {
    return absl::InvalidArgumentError("server-side apply needs a field manager");
  }
  ASSIGN_OR_RETURN(std::string path, PathFor(obj, false));
  return DoJson("PATCH", path + "/status" + Query(options, true), obj.dump(),
                "application/apply-patch+yaml", "");
}

absl::Status HttpKubeClient::Delete(const GroupVersionKind& gvk, absl::string_view ns,
                                    absl::string_view name, const DeleteOptions& options) {
  ASSIGN_OR_RETURN(std::string path, ObjectPath(gvk, ns, name));
  json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (!options.propagation_policy.empty()) body["propagationPolicy"] = options.propagation_policy;
  if (options.dry_run) body["dryRun"] = {"All"};
  if (!options.precondition_uid.empty()) body["preconditions"]["uid"] = options.precondition_uid;
  if (!options.precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = options.precondition_resource_version;
  }
  std::string q;
  if (options.dry_run) AddParam(q, "dryRun", "All");
  auto result = DoJson("DELETE", path + q, body.dump(), "application/json", "");
  return result.status();
}

}  // namespace gitops::common
