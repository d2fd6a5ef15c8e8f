#include "common/controller/informer.h"

#include "absl/time/clock.h"
#include "common/controller/work_queue.h"
#include "common/log/log.h"
#include "common/yaml/yaml.h"

namespace gitops::common {
namespace {

using json = nlohmann::json;

}  // namespace

std::string ObjectKey(const json& obj) {
  std::string ns = common::StringAt(obj, {"metadata", "namespace"});
  std::string name = common::StringAt(obj, {"metadata", "name"});
  return ns.empty() ? name : ns + "/" + name;
}

std::pair<std::string, std::string> SplitObjectKey(absl::string_view key) {
  size_t slash = key.find('/');
  if (slash == absl::string_view::npos) return {"", std::string(key)};
  return {std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

Informer::Informer(KubeClient& client, InformerOptions options, InformerHandlers handlers)
    : client_(client), options_(std::move(options)), handlers_(std::move(handlers)) {}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::optional<json> Informer::Get(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<json> Informer::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<json> out;
  out.reserve(cache_.size());
  for (const auto& [k, v] : cache_) out.push_back(v);
  return out;
}

std::vector<std::string> Informer::Keys() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [k, v] : cache_) out.push_back(k);
  return out;
}

std::string Informer::ResourceVersion() const {
  absl::MutexLock lock(&mu_);
  return resource_version_;
}

void Informer::SleepInterruptible(absl::Duration d) {
  absl::Time end = absl::Now() + d;
  while (!stop_ && absl::Now() < end) {
    absl::SleepFor(std::min(absl::Milliseconds(50), end - absl::Now()));
  }
}

absl::Status Informer::ListAndReplace() {
  std::map<std::string, json> fresh;
  ListOptions opts;
  opts.label_selector = options_.label_selector;
  opts.field_selector = options_.field_selector;
  opts.limit = options_.page_size;
  std::string rv;
  do {
    auto page = client_.List(options_.gvk, options_.namespace_, opts);
    if (!page.ok()) return page.status();
    const json& items = (*page)["items"];
    if (items.is_array()) {
      for (const auto& item : items) {
        json obj = item;
        // List items may omit apiVersion/kind; handlers expect them.
        obj["apiVersion"] = options_.gvk.ApiVersion();
        obj["kind"] = options_.gvk.kind;
        std::string key = ObjectKey(obj);  // before the move below
        fresh[key] = std::move(obj);
      }
    }
    const json& meta = (*page)["metadata"];
    rv = meta.is_object() && meta.contains("resourceVersion") && meta["resourceVersion"].is_string()
             ? meta["resourceVersion"].get<std::string>()
             : rv;
    opts.continue_token =
        meta.is_object() && meta.contains("continue") && meta["continue"].is_string()
            ? meta["continue"].get<std::string>()
            : "";
  } while (!opts.continue_token.empty() && !stop_);
  list_count_++;
  // Diff against the cache so a relist reports what the watch missed.
  std::vector<json> added, deleted;
  std::vector<std::pair<json, json>> updated;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, obj] : fresh) {
      auto it = cache_.find(key);
      if (it == cache_.end()) {
        added.push_back(obj);
      } else if (common::StringAt(it->second, {"metadata", "resourceVersion"}) !=
                 common::StringAt(obj, {"metadata", "resourceVersion"})) {
        updated.emplace_back(it->second, obj);
      }
    }
    for (const auto& [key, obj] : cache_) {
      if (!fresh.count(key)) deleted.push_back(obj);
    }
    cache_ = std::move(fresh);
    resource_version_ = rv;
  }
  for (const auto& o : added) {
    if (handlers_.on_add) handlers_.on_add(o);
  }
  for (const auto& [o, n] : updated) {
    if (handlers_.on_update) handlers_.on_update(o, n);
  }
  for (const auto& o : deleted) {
    if (handlers_.on_delete) handlers_.on_delete(o);
  }
  if (!synced_.HasBeenNotified()) synced_.Notify();
  return absl::OkStatus();
}

absl::Status Informer::WatchOnce() {
  WatchOptions opts;
  opts.resource_version = ResourceVersion();
  opts.label_selector = options_.label_selector;
  opts.field_selector = options_.field_selector;
  opts.allow_bookmarks = true;
  opts.timeout_seconds = options_.watch_timeout_seconds;
  opts.cancel = &stop_;
  return client_.Watch(options_.gvk, options_.namespace_, opts, [this](const WatchEvent& e) {
    std::string rv = common::StringAt(e.object, {"metadata", "resourceVersion"});
    if (e.type == WatchEvent::Type::kBookmark) {
      absl::MutexLock lock(&mu_);
      if (!rv.empty()) resource_version_ = rv;
      return !stop_;
    }
    json obj = e.object;
    std::string key = ObjectKey(obj);
    std::optional<json> old;
    {
      absl::MutexLock lock(&mu_);
      auto it = cache_.find(key);
      if (it != cache_.end()) old = it->second;
      if (e.type == WatchEvent::Type::kDeleted) {
        cache_.erase(key);
      } else {
        cache_[key] = obj;
      }
      if (!rv.empty()) resource_version_ = rv;
    }
    if (e.type == WatchEvent::Type::kDeleted) {
      if (handlers_.on_delete) handlers_.on_delete(obj);
    } else if (old.has_value()) {
      if (handlers_.on_update) handlers_.on_update(*old, obj);
    } else if (handlers_.on_add) {
      handlers_.on_add(obj);
    }
    return !stop_;
  });
}

void Informer::Run() {
  bool need_list = true;
  int failures = 0;
  while (!stop_) {
    absl::Status st;
    if (need_list) {
      st = ListAndReplace();
      if (st.ok()) need_list = false;
    } else {
      absl::Time started = absl::Now();
      st = WatchOnce();
      // A watch that ends at once (server dropping watches) must not spin.
      if (st.ok() && absl::Now() - started < absl::Milliseconds(100)) {
        SleepInterruptible(absl::Milliseconds(100));
      }
      // A watch the server closed normally (timeout) is simply re-opened.
      if (IsGone(st)) need_list = true;
    }
    if (stop_) break;
    if (st.ok() || IsGone(st)) {
      failures = 0;
      continue;
    }
    failures++;
    absl::Duration delay =
        Jitter(ExponentialBackoff(failures, absl::Milliseconds(200), options_.max_backoff), 0.2);
    LogError("informer: list/watch failed, retrying",
             {{"kind", options_.gvk.kind}, {"error", st.message()}});
    SleepInterruptible(delay);
  }
}

}  // namespace gitops::common
