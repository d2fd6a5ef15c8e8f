#include "common/kube/events.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/yaml/yaml.h"

namespace gitops::common {
namespace {

using json = nlohmann::json;

std::string MicroTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}
std::string Time(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

KubeEventRecorder::KubeEventRecorder(KubeClient& client, Options options)
    : client_(client), options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

KubeEventRecorder::~KubeEventRecorder() {
  Flush();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int64_t KubeEventRecorder::dropped() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mu_));
  return dropped_;
}

void KubeEventRecorder::Event(const json& involved, absl::string_view type,
                              absl::string_view reason, absl::string_view message,
                              const std::map<std::string, std::string>& annotations) {
  absl::Time now = absl::Now();
  std::string uid = common::StringAt(involved, {"metadata", "uid"});
  std::string ns = common::StringAt(involved, {"metadata", "namespace"});
  if (ns.empty()) ns = "default";  // events about cluster-scoped objects
  std::string name = common::StringAt(involved, {"metadata", "name"});
  json ev = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata",
       {{"name", absl::StrCat(name, ".", absl::Hex(absl::ToUnixNanos(now)))}, {"namespace", ns}}},
      {"involvedObject",
       {{"apiVersion", common::StringAt(involved, {"apiVersion"})},
        {"kind", common::StringAt(involved, {"kind"})},
        {"namespace", common::StringAt(involved, {"metadata", "namespace"})},
        {"name", name},
        {"uid", uid},
        {"resourceVersion", common::StringAt(involved, {"metadata", "resourceVersion"})}}},
      {"type", std::string(type)},
      {"reason", std::string(reason)},
      {"message", std::string(message)},
      {"source", {{"component", options_.component}, {"host", options_.host}}},
      {"reportingComponent", options_.component},
      {"reportingInstance", options_.host},
      {"firstTimestamp", Time(now)},
      {"lastTimestamp", Time(now)},
      {"count", 1}};
  if (!annotations.empty()) ev["metadata"]["annotations"] = annotations;
  std::string key =
      absl::StrCat(uid, "\x1f", ns, "/", name, "\x1f", type, "\x1f", reason, "\x1f", message);
  std::lock_guard<std::mutex> lock(mu_);
  // Per-object spam filter.
  Bucket& b =
      buckets_.try_emplace(uid + ns + name, Bucket{double(options_.burst), now}).first->second;
  b.tokens = std::min<double>(options_.burst,
                              b.tokens + absl::FDivDuration(now - b.last, options_.refill_every));
  b.last = now;
  if (b.tokens < 1 || queue_.size() >= options_.max_pending) {
    dropped_++;
    return;
  }
  b.tokens -= 1;
  queue_.push_back({std::move(ev), key});
  cv_.notify_all();
}

void KubeEventRecorder::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty() && in_flight_ == 0; });
}

void KubeEventRecorder::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) return;
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    in_flight_++;
    lock.unlock();
    Write(std::move(p));
    lock.lock();
    in_flight_--;
    cv_.notify_all();
  }
}

void KubeEventRecorder::Write(Pending p) {
  absl::Time now = absl::Now();
  auto it = seen_.find(p.aggregate_key);
  if (it != seen_.end() && now - it->second.last < options_.aggregation_window) {
    // Same event again: bump the existing one.
    Seen& s = it->second;
    s.count++;
    s.last = now;
    json patch = {{"count", s.count}, {"lastTimestamp", Time(now)}};
    auto r = client_.Patch({"", "v1", "Event"}, s.ns, s.name, PatchType::kMerge, patch);
    if (r.ok()) return;
    if (!absl::IsNotFound(r.status())) {
      LogError("event: update failed", {{"error", r.status().message()}});
      return;
    }
    seen_.erase(it);  // expired on the server: create a fresh one below
  }
  std::string ns = p.event["metadata"]["namespace"].get<std::string>();
  std::string name = p.event["metadata"]["name"].get<std::string>();
  auto r = client_.Create(p.event);
  if (!r.ok()) {
    LogError("event: create failed", {{"error", r.status().message()}});
    return;
  }
  seen_[p.aggregate_key] = Seen{ns, name, 1, now};
  // Keep the aggregation cache bounded.
  if (seen_.size() > 4096) {
    for (auto s = seen_.begin(); s != seen_.end();) {
      s = now - s->second.last > options_.aggregation_window ? seen_.erase(s) : std::next(s);
    }
  }
}

}  // namespace gitops::common
