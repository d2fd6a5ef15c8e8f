#include "common/controller/work_queue.h"

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/controller/informer.h"
#include "gtest/gtest.h"

namespace gitops::common {
namespace {

TEST(WorkQueueTest, DeduplicatesQueuedKeys) {
  WorkQueue q;
  q.Add("a");
  q.Add("a");
  q.Add("b");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.Get(), "b");
}

TEST(WorkQueueTest, KeyAddedWhileProcessingIsQueuedAgainAfterDone) {
  WorkQueue q;
  q.Add("a");
  ASSERT_EQ(q.Get(), "a");
  q.Add("a");
  q.Add("a");
  EXPECT_EQ(q.Len(), 0u) << "not handed out twice at once";
  q.Done("a");
  EXPECT_EQ(q.Len(), 1u) << "re-queued exactly once";
  EXPECT_EQ(q.Get(), "a");
  q.Done("a");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueueTest, BackoffGrowsExponentiallyAndCaps) {
  absl::Duration base = absl::Milliseconds(750), max = absl::Minutes(15);
  EXPECT_EQ(ExponentialBackoff(1, base, max), absl::Milliseconds(750));
  EXPECT_EQ(ExponentialBackoff(2, base, max), absl::Milliseconds(1500));
  EXPECT_EQ(ExponentialBackoff(5, base, max), absl::Milliseconds(12000));
  EXPECT_EQ(ExponentialBackoff(30, base, max), max);
  EXPECT_EQ(ExponentialBackoff(1000, base, max), max);
  for (int i = 0; i < 100; ++i) {
    absl::Duration j = Jitter(absl::Seconds(10), 0.1);
    EXPECT_GE(j, absl::Seconds(10));
    EXPECT_LT(j, absl::Seconds(11));
  }
}

TEST(WorkQueueTest, RateLimitedAddWaitsForBackoffAndForgetResets) {
  WorkQueue q({.name = "test-rl",
               .base_delay = absl::Milliseconds(40),
               .max_delay = absl::Milliseconds(200)});
  q.AddRateLimited("k");
  EXPECT_EQ(q.NumRequeues("k"), 1);
  EXPECT_EQ(q.Len(), 0u);
  EXPECT_EQ(q.Waiting(), 1u);
  absl::Time start = absl::Now();
  ASSERT_EQ(q.Get(), "k");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(35));
  q.Done("k");
  q.AddRateLimited("k");
  start = absl::Now();
  ASSERT_EQ(q.Get(), "k");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(75)) << "second failure waits twice as long";
  q.Done("k");
  q.Forget("k");
  EXPECT_EQ(q.NumRequeues("k"), 0);
}

TEST(WorkQueueTest, AddAfterKeepsTheEarliestDueTime) {
  WorkQueue q;
  q.AddAfter("k", absl::Seconds(30));
  q.AddAfter("k", absl::Milliseconds(30));
  q.AddAfter("k", absl::Seconds(60));
  absl::Time start = absl::Now();
  ASSERT_EQ(q.Get(), "k");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// A worker already waiting for a later key wakes for an earlier one added
// meanwhile, instead of sleeping through it.
TEST(WorkQueueTest, EarlierAddAfterWakesAWaitingWorker) {
  WorkQueue q(WorkQueueOptions{"earlier"});
  // "late" is an hour away: a worker that slept through the earlier add
  // would return long after the bound below, whatever the machine's load.
  q.AddAfter("late", absl::Hours(1));
  std::optional<std::string> got;
  absl::Time returned;
  std::thread worker([&] {
    got = q.Get();
    returned = absl::Now();
  });
  absl::SleepFor(absl::Milliseconds(100));  // the worker is asleep on "late"
  const absl::Time added = absl::Now();
  q.AddAfter("soon", absl::Milliseconds(50));
  worker.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, "soon");
  EXPECT_LT(returned - added, absl::Seconds(30));
  q.ShutDown();
}

TEST(WorkQueueTest, ShutDownWakesBlockedGetters) {
  WorkQueue q;
  std::thread t([&] { EXPECT_EQ(q.Get(), std::nullopt); });
  absl::SleepFor(absl::Milliseconds(50));
  q.ShutDown();
  t.join();
  q.Add("ignored");
  EXPECT_EQ(q.Len(), 0u);
}

// Many producers and workers: no key is ever processed by two workers at
// once, and every add is followed by a processing of that key (none lost).
TEST(WorkQueueTest, ConcurrentWorkersNeverShareAKeyAndLoseNone) {
  WorkQueue q({.name = "test-concurrent"});
  constexpr int kKeys = 40;
  std::mutex mu;
  std::set<std::string> in_flight;
  std::map<std::string, int> last_added, last_started;
  std::atomic<int> seq{0};
  std::atomic<bool> overlap{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < 6; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.Get()) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!in_flight.insert(*key).second) overlap = true;
          last_started[*key] = seq.fetch_add(1);
        }
        absl::SleepFor(absl::Microseconds(200));
        {
          std::lock_guard<std::mutex> lock(mu);
          in_flight.erase(*key);
        }
        q.Done(*key);
      }
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < 4; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937 rng(p);
      for (int i = 0; i < 500; ++i) {
        std::string key = absl::StrCat("k", rng() % kKeys);
        {
          std::lock_guard<std::mutex> lock(mu);
          last_added[key] = seq.fetch_add(1);
        }
        q.Add(key);
        if (i % 50 == 0) absl::SleepFor(absl::Microseconds(500));
      }
    });
  }
  for (auto& t : producers) t.join();
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (q.Len() == 0 && in_flight.empty()) break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  q.ShutDown();
  for (auto& t : workers) t.join();
  EXPECT_FALSE(overlap.load());
  for (const auto& [key, added] : last_added) {
    ASSERT_TRUE(last_started.count(key)) << key;
    EXPECT_GT(last_started[key], added) << key << " lost its last add";
  }
}

TEST(ObjectKeyTest, SplitsNamespacedAndClusterKeys) {
  nlohmann::json obj = {{"metadata", {{"name", "apps"}, {"namespace", "flux-system"}}}};
  EXPECT_EQ(ObjectKey(obj), "flux-system/apps");
  EXPECT_EQ(SplitObjectKey("flux-system/apps"),
            std::make_pair(std::string("flux-system"), std::string("apps")));
  EXPECT_EQ(SplitObjectKey("cluster-thing"),
            std::make_pair(std::string(), std::string("cluster-thing")));
}

}  // namespace
}  // namespace gitops::common
