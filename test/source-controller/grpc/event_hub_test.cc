#include "source-controller/grpc/event_hub.h"

#include <thread>

#include "gtest/gtest.h"

namespace gitops::source {
namespace {

v1::Artifact MakeArtifact(const std::string& ns, const std::string& name,
                          const std::string& digest) {
  v1::Artifact a;
  a.mutable_source()->set_kind("GitRepository");
  a.mutable_source()->set_namespace_(ns);
  a.mutable_source()->set_name(name);
  a.set_digest(digest);
  a.set_revision("main@sha1:" + digest);
  return a;
}

TEST(ArtifactEventHubTest, SnapshotListsCurrentArtifactsWithTheirSequences) {
  ArtifactEventHub hub;
  uint64_t a = hub.PublishUpdated(MakeArtifact("ns", "a", "d1"));
  uint64_t b = hub.PublishUpdated(MakeArtifact("ns", "b", "d2"));
  uint64_t a2 = hub.PublishUpdated(MakeArtifact("ns", "a", "d3"));
  EXPECT_LT(a, b);
  EXPECT_LT(b, a2);
  auto snap = hub.TakeSnapshot(EventFilter{});
  ASSERT_EQ(snap.events.size(), 2u);
  EXPECT_EQ(snap.sequence, a2);
  EXPECT_EQ(snap.events[0].artifact().digest(), "d3");
  EXPECT_EQ(snap.events[0].sequence(), a2);
  EXPECT_EQ(snap.events[1].artifact().digest(), "d2");
}

TEST(ArtifactEventHubTest, RepublishingTheSameDigestIsNotANewEvent) {
  ArtifactEventHub hub;
  uint64_t first = hub.PublishUpdated(MakeArtifact("ns", "a", "d1"));
  uint64_t again = hub.PublishUpdated(MakeArtifact("ns", "a", "d1"));
  EXPECT_EQ(first, again);
  EXPECT_EQ(hub.TakeSnapshot(EventFilter{}).sequence, first);
}

TEST(ArtifactEventHubTest, FilterSelectsByNamespaceAndName) {
  ArtifactEventHub hub;
  hub.PublishUpdated(MakeArtifact("one", "a", "d1"));
  hub.PublishUpdated(MakeArtifact("two", "a", "d2"));
  hub.PublishUpdated(MakeArtifact("two", "b", "d3"));
  EXPECT_EQ(hub.TakeSnapshot(EventFilter{"", "two", ""}).events.size(), 2u);
  EXPECT_EQ(hub.TakeSnapshot(EventFilter{"", "two", "b"}).events.size(), 1u);
  EXPECT_EQ(hub.TakeSnapshot(EventFilter{"OCIRepository", "", ""}).events.size(), 0u);
}

TEST(ArtifactEventHubTest, DeleteForgetsTheSourceAndCarriesItsLastArtifact) {
  ArtifactEventHub hub;
  hub.PublishUpdated(MakeArtifact("ns", "a", "d1"));
  uint64_t seq = hub.PublishDeleted(MakeArtifact("ns", "a", "").source());
  EXPECT_GT(seq, 0u);
  EXPECT_FALSE(hub.Current(MakeArtifact("ns", "a", "").source()).has_value());
  EXPECT_EQ(hub.PublishDeleted(MakeArtifact("ns", "a", "").source()), 0u);
  uint64_t next = 0;
  auto events = hub.WaitForEvents(EventFilter{}, 1, absl::Now(), &next);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type(), v1::ArtifactEvent::DELETED);
  EXPECT_EQ((*events)[0].artifact().digest(), "d1");
}

// A watcher takes the events it missed a batch at a time, so one that
// stalls holds a bounded batch, not the whole history (issue 17, item 7).
TEST(ArtifactEventHubTest, WaitForEventsReturnsAtMostMaxEvents) {
  ArtifactEventHub hub;
  for (int i = 0; i < 10; ++i) {
    hub.PublishUpdated(MakeArtifact("ns", "s" + std::to_string(i), "d" + std::to_string(i)));
  }
  uint64_t after = 0;
  std::vector<uint64_t> seen;
  for (int round = 0; round < 4; ++round) {
    uint64_t next = after;
    auto batch = hub.WaitForEvents(EventFilter{}, after, absl::Now(), &next, 4);
    ASSERT_TRUE(batch.ok()) << batch.status();
    EXPECT_LE(batch->size(), 4u);
    for (const auto& e : *batch) seen.push_back(e.sequence());
    after = next;
  }
  ASSERT_EQ(seen.size(), 10u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
  EXPECT_EQ(after, 10u);
}

TEST(ArtifactEventHubTest, WaiterWakesOnPublish) {
  ArtifactEventHub hub;
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(50));
    hub.PublishUpdated(MakeArtifact("ns", "a", "d1"));
  });
  uint64_t next = 0;
  absl::Time start = absl::Now();
  auto events = hub.WaitForEvents(EventFilter{}, 0, absl::Now() + absl::Seconds(10), &next);
  publisher.join();
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(next, 1u);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(ArtifactEventHubTest, ResumeWorksWithinHistoryAndEpochOnly) {
  ArtifactEventHub hub(/*history=*/3);
  for (int i = 0; i < 5; ++i) hub.PublishUpdated(MakeArtifact("ns", "a", "d" + std::to_string(i)));
  EXPECT_TRUE(hub.CanResume(hub.epoch(), 5));
  EXPECT_TRUE(hub.CanResume(hub.epoch(), 2));
  EXPECT_FALSE(hub.CanResume(hub.epoch(), 1));
  EXPECT_FALSE(hub.CanResume("other-epoch", 5));
  EXPECT_FALSE(hub.CanResume(hub.epoch(), 9));
  uint64_t next = 0;
  auto too_old = hub.WaitForEvents(EventFilter{}, 0, absl::Now(), &next);
  EXPECT_TRUE(absl::IsOutOfRange(too_old.status()));
}

TEST(ArtifactEventHubTest, ShutdownCancelsWaiters) {
  ArtifactEventHub hub;
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(30));
    hub.Shutdown();
  });
  uint64_t next = 0;
  auto events = hub.WaitForEvents(EventFilter{}, 0, absl::Now() + absl::Seconds(30), &next);
  stopper.join();
  EXPECT_TRUE(absl::IsCancelled(events.status()));
}

}  // namespace
}  // namespace gitops::source
