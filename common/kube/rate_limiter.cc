#include "common/kube/rate_limiter.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace gitops::common {

TokenBucket::TokenBucket(double qps, int burst)
    : qps_(qps), burst_(std::max(1, burst)), tokens_(std::max(1, burst)), last_(absl::Now()) {}

void TokenBucket::RefillLocked(absl::Time now) {
  double elapsed = absl::ToDoubleSeconds(now - last_);
  if (elapsed > 0) {
    tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
    last_ = now;
  }
}

bool TokenBucket::TryAccept() {
  if (qps_ <= 0) return true;
  absl::MutexLock lock(&mu_);
  RefillLocked(absl::Now());
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return true;
  }
  return false;
}

void TokenBucket::Wait() {
  if (qps_ <= 0) return;
  absl::Duration sleep;
  {
    absl::MutexLock lock(&mu_);
    RefillLocked(absl::Now());
    // Reserve a token now (possibly going negative) and sleep until it exists.
    tokens_ -= 1;
    if (tokens_ >= 0) return;
    sleep = absl::Seconds(-tokens_ / qps_);
  }
  absl::SleepFor(sleep);
}

}  // namespace gitops::common
