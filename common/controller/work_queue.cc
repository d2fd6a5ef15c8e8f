#include "common/controller/work_queue.h"

#include <algorithm>
#include <random>

#include "absl/time/clock.h"
#include "common/metrics/metrics.h"

namespace gitops::common {

absl::Duration ExponentialBackoff(int failures, absl::Duration base, absl::Duration max) {
  if (failures <= 0) return absl::ZeroDuration();
  absl::Duration d = base;
  for (int i = 1; i < failures; ++i) {
    d *= 2;
    if (d >= max) return max;
  }
  return std::min(d, max);
}

absl::Duration Jitter(absl::Duration d, double fraction) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> dist(0.0, fraction);
  return d + d * dist(rng);
}

WorkQueue::WorkQueue(WorkQueueOptions options) : options_(std::move(options)) {
  Metrics& m = Metrics::Global();
  m.DefineGauge("workqueue_depth", "Current depth of workqueue");
  m.DefineCounter("workqueue_adds_total", "Total number of adds handled by workqueue");
  m.DefineCounter("workqueue_retries_total", "Total number of retries handled by workqueue");
}

WorkQueue::~WorkQueue() { ShutDown(); }

void WorkQueue::ReportDepthLocked() {
  Metrics::Global().Set("workqueue_depth", {{"name", options_.name}},
                        static_cast<double>(queue_.size()));
}

void WorkQueue::AddLocked(const std::string& key) {
  if (shutting_down_ || dirty_.count(key)) return;
  Metrics::Global().Add("workqueue_adds_total", {{"name", options_.name}});
  dirty_.insert(key);
  if (processing_.count(key)) return;  // re-queued by Done()
  queue_.push_back(key);
  ReportDepthLocked();
}

void WorkQueue::Add(const std::string& key) {
  absl::MutexLock lock(&mu_);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return;
  if (delay <= absl::ZeroDuration()) {
    AddLocked(key);
    return;
  }
  absl::Time due = absl::Now() + delay;
  auto it = waiting_.find(key);
  if (it != waiting_.end()) {
    if (it->second <= due) return;  // an earlier wake-up is already set
    waiting_order_.erase({it->second, key});
  }
  waiting_[key] = due;
  waiting_order_.insert({due, key});
  // A new earliest wake-up: a worker sleeping until a later one must
  // recompute its wait.
  if (waiting_order_.begin()->second == key) ++earliest_changed_;
}

void WorkQueue::AddRateLimited(const std::string& key) {
  absl::Duration delay;
  {
    absl::MutexLock lock(&mu_);
    int n = ++failures_[key];
    delay = ExponentialBackoff(n, options_.base_delay, options_.max_delay);
    Metrics::Global().Add("workqueue_retries_total", {{"name", options_.name}});
  }
  AddAfter(key, delay);
}

void WorkQueue::Forget(const std::string& key) {
  absl::MutexLock lock(&mu_);
  failures_.erase(key);
}

int WorkQueue::NumRequeues(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked(absl::Time now) {
  while (!waiting_order_.empty() && waiting_order_.begin()->first <= now) {
    std::string key = waiting_order_.begin()->second;
    waiting_order_.erase(waiting_order_.begin());
    waiting_.erase(key);
    AddLocked(key);
  }
}

std::optional<std::string> WorkQueue::Get() {
  absl::MutexLock lock(&mu_);
  while (true) {
    if (shutting_down_) return std::nullopt;
    PromoteDueLocked(absl::Now());
    if (!queue_.empty()) break;
    absl::Duration wait = absl::Seconds(1);
    if (!waiting_order_.empty()) {
      wait = std::min(wait, waiting_order_.begin()->first - absl::Now());
    }
    if (wait > absl::ZeroDuration()) {
      const uint64_t seen = earliest_changed_;
      auto wake = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return shutting_down_ || !queue_.empty() || earliest_changed_ != seen;
      };
      mu_.AwaitWithTimeout(absl::Condition(&wake), wait);
    }
  }
  std::string key = queue_.front();
  queue_.pop_front();
  dirty_.erase(key);
  processing_.insert(key);
  ReportDepthLocked();
  return key;
}

void WorkQueue::Done(const std::string& key) {
  absl::MutexLock lock(&mu_);
  processing_.erase(key);
  if (dirty_.count(key) && !shutting_down_) {
    queue_.push_back(key);
    ReportDepthLocked();
  }
}

void WorkQueue::ShutDown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
}

bool WorkQueue::ShuttingDown() const {
  absl::MutexLock lock(&mu_);
  return shutting_down_;
}

size_t WorkQueue::Len() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

size_t WorkQueue::Waiting() const {
  absl::MutexLock lock(&mu_);
  return waiting_.size();
}

}  // namespace gitops::common
