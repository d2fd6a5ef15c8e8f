#include "common/runtime/memory_trim.h"

#include <malloc.h>

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"

namespace gitops::common {

bool TrimFreedMemory(absl::Duration min_interval) {
  static std::atomic<int64_t> last_trim_ns{INT64_MIN};
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t last = last_trim_ns.load(std::memory_order_relaxed);
  if (last != INT64_MIN && now - last < absl::ToInt64Nanoseconds(min_interval)) return false;
  // One caller wins the slot; the others skip rather than wait.
  if (!last_trim_ns.compare_exchange_strong(last, now, std::memory_order_relaxed)) return false;
  malloc_trim(0);
  return true;
}

}  // namespace gitops::common
