// A token bucket: `qps` tokens per second, at most `burst` saved up, like
// client-go's flowcontrol.NewTokenBucketRateLimiter. Thread-safe.
#ifndef GITOPS_COMMON_KUBE_RATE_LIMITER_H_
#define GITOPS_COMMON_KUBE_RATE_LIMITER_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gitops::common {

class TokenBucket {
 public:
  // qps <= 0 disables limiting.
  TokenBucket(double qps, int burst);
  // Blocks until a token is available.
  void Wait();
  // Takes a token if one is available now.
  bool TryAccept();

 private:
  void RefillLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const double qps_;
  const double burst_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gitops::common

#endif  // GITOPS_COMMON_KUBE_RATE_LIMITER_H_
