// The gRPC contract end to end in one process: the real server over real
// storage on 127.0.0.1, our real client and cache on the other side.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <random>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/crypto/sha256.h"
#include "common/metrics/metrics.h"
#include "gitops/artifact/v1/artifact.grpc.pb.h"
#include "gtest/gtest.h"
#include "kustomize-controller/subscriber/artifact_cache.h"
#include "kustomize-controller/subscriber/artifact_client.h"
#include "source-controller/grpc/artifact_server.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

using kustomize::ArtifactClient;
using kustomize::ArtifactClientOptions;
using kustomize::ArtifactRef;
using kustomize::WatchEvent;
using testing::MakeTempDir;
using testing::ReadFile;
using testing::RemoveTree;
using testing::WriteFile;

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class ArtifactServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("artifact-svc");
    auto storage = ArtifactStorage::Create(root_ + "/storage");
    ASSERT_TRUE(storage.ok()) << storage.status();
    storage_ = std::move(*storage);
    ArtifactServerOptions opts;
    opts.listen_address = "127.0.0.1:0";
    auto server = ArtifactServer::Start(opts, &hub_, storage_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    address_ = "127.0.0.1:" + std::to_string(server_->port());
    ArtifactClientOptions copts;
    copts.source_address = address_;
    copts.backoff_initial = absl::Milliseconds(20);
    copts.backoff_max = absl::Milliseconds(200);
    auto client = ArtifactClient::Create(copts);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }
  void TearDown() override {
    if (client_) client_->Stop();
    if (server_) server_->Shutdown(absl::Seconds(1));
    RemoveTree(root_);
  }

  // Stores `content` as the current artifact of GitRepository ns/name.
  v1::Artifact Store(const std::string& name, const std::string& content) {
    SourceKey key{"GitRepository", "ns", name};
    auto temp = storage_->NewTempPath(key);
    EXPECT_TRUE(temp.ok()) << temp.status();
    EXPECT_TRUE(WriteFile(*temp, content).ok());
    std::string digest = common::Sha256Digest(content);
    auto stored = storage_->Commit(key, *temp, digest);
    EXPECT_TRUE(stored.ok()) << stored.status();
    v1::Artifact a;
    a.mutable_source()->set_kind("GitRepository");
    a.mutable_source()->set_namespace_("ns");
    a.mutable_source()->set_name(name);
    a.set_digest(digest);
    a.set_size(static_cast<int64_t>(content.size()));
    a.set_path(stored->path);
    a.set_revision("main@sha1:" + digest.substr(7, 40));
    hub_.PublishUpdated(a);
    return a;
  }

  ArtifactRef Ref(const v1::Artifact& a) {
    ArtifactRef r;
    r.kind = a.source().kind();
    r.namespace_name = a.source().namespace_();
    r.name = a.source().name();
    r.digest = a.digest();
    r.size = a.size();
    r.revision = a.revision();
    return r;
  }

  std::string root_;
  ArtifactEventHub hub_;
  std::unique_ptr<ArtifactStorage> storage_;
  std::unique_ptr<ArtifactServer> server_;
  std::string address_;
  std::unique_ptr<ArtifactClient> client_;
};

// Collects watch events on a thread.
class Watcher {
 public:
  explicit Watcher(ArtifactClient* client) : client_(client) {
    thread_ = std::thread([this] {
      client_->Watch(kustomize::WatchFilter{}, [this](const WatchEvent& e) {
        absl::MutexLock lock(&mu_);
        events_.push_back(e);
      });
    });
  }
  ~Watcher() {
    client_->Stop();
    thread_.join();
  }
  // Waits until `n` events arrived; returns a copy.
  std::vector<WatchEvent> WaitFor(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return events_;
  }

 private:
  ArtifactClient* client_;
  absl::Mutex mu_;
  std::vector<WatchEvent> events_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

TEST_F(ArtifactServiceTest, WatchSendsSnapshotThenSyncedThenLiveUpdates) {
  v1::Artifact first = Store("app", RandomBytes(1000, 1));
  Watcher watcher(client_.get());
  auto events = watcher.WaitFor(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, WatchEvent::Type::kUpdated);
  EXPECT_EQ(events[0].artifact.digest, first.digest());
  EXPECT_EQ(events[0].artifact.revision, first.revision());
  EXPECT_EQ(events[1].type, WatchEvent::Type::kSynced);

  absl::Time published = absl::Now();
  v1::Artifact second = Store("app", RandomBytes(1000, 2));
  events = watcher.WaitFor(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].type, WatchEvent::Type::kUpdated);
  EXPECT_EQ(events[2].artifact.digest, second.digest());
  // Pushed, not polled.
  EXPECT_LT(absl::Now() - published, absl::Seconds(2));

  hub_.PublishDeleted(second.source());
  events = watcher.WaitFor(4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3].type, WatchEvent::Type::kDeleted);
  EXPECT_EQ(events[3].artifact.name, "app");
}

TEST_F(ArtifactServiceTest, FetchDownloadsVerifiedBytes) {
  std::string content = RandomBytes(3 << 20, 3);
  v1::Artifact a = Store("app", content);
  std::string dest = root_ + "/out.tar.gz";
  ASSERT_TRUE(client_->Fetch(Ref(a), dest, absl::Now() + absl::Seconds(30)).ok());
  auto got = ReadFile(dest);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, content);
  EXPECT_FALSE(std::filesystem::exists(dest + ".part"));
}

TEST_F(ArtifactServiceTest, FetchResumesFromAPartialFile) {
  std::string content = RandomBytes(4 << 20, 4);
  v1::Artifact a = Store("app", content);
  std::string dest = root_ + "/resumed.tar.gz";
  const size_t already = 3 << 20;
  ASSERT_TRUE(WriteFile(dest + ".part", content.substr(0, already)).ok());
  double before = common::Metrics::Global().Value("gitops_artifact_bytes_sent_total", {});
  ASSERT_TRUE(client_->Fetch(Ref(a), dest, absl::Now() + absl::Seconds(30)).ok());
  double sent = common::Metrics::Global().Value("gitops_artifact_bytes_sent_total", {}) - before;
  EXPECT_EQ(sent, static_cast<double>(content.size() - already));
  auto got = ReadFile(dest);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, content);
}

TEST_F(ArtifactServiceTest, FetchRejectsBytesThatDoNotMatchTheDigest) {
  std::string content = RandomBytes(200000, 5);
  v1::Artifact a = Store("app", content);
  // Corrupt the stored file behind the server's back.
  std::string stored = root_ + "/storage/" + a.path();
  content[1000] ^= 0x55;
  ASSERT_TRUE(WriteFile(stored, content).ok());
  double before = common::Metrics::Global().Value("gitops_artifact_digest_mismatch_total",
                                                  {{"kind", "GitRepository"}});
  std::string dest = root_ + "/corrupt.tar.gz";
  absl::Status s = client_->Fetch(Ref(a), dest, absl::Now() + absl::Seconds(30));
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_NE(s.message().find("does not match"), absl::string_view::npos) << s;
  EXPECT_FALSE(std::filesystem::exists(dest));
  EXPECT_FALSE(std::filesystem::exists(dest + ".part"));
  EXPECT_EQ(common::Metrics::Global().Value("gitops_artifact_digest_mismatch_total",
                                            {{"kind", "GitRepository"}}),
            before + 1);
}

// gRPC sets SO_REUSEPORT by default; a second server on a taken port must
// fail to start instead of sharing it.
TEST_F(ArtifactServiceTest, ASecondServerOnTheSamePortFails) {
  ArtifactServerOptions opts;
  opts.listen_address = address_;
  auto second = ArtifactServer::Start(opts, &hub_, storage_.get());
  EXPECT_FALSE(second.ok());
}

TEST_F(ArtifactServiceTest, ErrorsFollowTheContract) {
  v1::Artifact a = Store("app", RandomBytes(100000, 6));
  auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  auto stub = v1::ArtifactService::NewStub(channel);
  auto fetch = [&](const v1::FetchArtifactRequest& req, std::vector<v1::ArtifactChunk>* chunks) {
    grpc::ClientContext ctx;
    auto reader = stub->FetchArtifact(&ctx, req);
    v1::ArtifactChunk c;
    while (reader->Read(&c)) chunks->push_back(c);
    return reader->Finish();
  };
  struct Case {
    std::string name;
    std::function<void(v1::FetchArtifactRequest&)> mutate;
    grpc::StatusCode code;
    std::string message_part;
  };
  std::vector<Case> cases = {
      {"unknown source", [](auto& r) { r.mutable_source()->set_name("nope"); },
       grpc::StatusCode::NOT_FOUND, "has no artifact"},
      {"collected digest names the current one",
       [](auto& r) { r.set_digest(common::Sha256Digest("old")); }, grpc::StatusCode::NOT_FOUND,
       a.digest()},
      {"offset past the end", [](auto& r) { r.set_offset(100001); }, grpc::StatusCode::OUT_OF_RANGE,
       "past the end"},
      {"malformed digest", [](auto& r) { r.set_digest("md5:abc"); },
       grpc::StatusCode::INVALID_ARGUMENT, "invalid digest"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    v1::FetchArtifactRequest req;
    *req.mutable_source() = a.source();
    req.set_digest(a.digest());
    c.mutate(req);
    std::vector<v1::ArtifactChunk> chunks;
    grpc::Status s = fetch(req, &chunks);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_NE(s.error_message().find(c.message_part), std::string::npos) << s.error_message();
  }
  grpc::ClientContext ctx;
  v1::GetArtifactRequest get;
  get.mutable_source()->set_kind("GitRepository");
  get.mutable_source()->set_namespace_("ns");
  get.mutable_source()->set_name("missing");
  v1::Artifact out;
  EXPECT_EQ(stub->GetArtifact(&ctx, get, &out).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ArtifactServiceTest, ChunksAreBoundedAndTheFirstCarriesMetadata) {
  std::string content = RandomBytes(3 * (1 << 20) + 123, 7);
  v1::Artifact a = Store("app", content);
  auto stub = v1::ArtifactService::NewStub(
      grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  for (int asked : {1, 0, 64 << 20}) {
    SCOPED_TRACE(asked);
    v1::FetchArtifactRequest req;
    *req.mutable_source() = a.source();
    req.set_digest(a.digest());
    req.set_chunk_size(asked);
    grpc::ClientContext ctx;
    auto reader = stub->FetchArtifact(&ctx, req);
    v1::ArtifactChunk c;
    std::string assembled;
    int n = 0;
    while (reader->Read(&c)) {
      if (n == 0) {
        EXPECT_EQ(c.total_size(), static_cast<int64_t>(content.size()));
        EXPECT_EQ(c.artifact().digest(), a.digest());
        EXPECT_EQ(c.artifact().revision(), a.revision());
      } else {
        EXPECT_FALSE(c.has_artifact());
      }
      EXPECT_EQ(c.offset(), static_cast<int64_t>(assembled.size()));
      EXPECT_LE(c.data().size(), 1u << 20);
      if (assembled.size() + c.data().size() < content.size())
        EXPECT_GE(c.data().size(), 64u << 10);
      assembled += c.data();
      ++n;
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(assembled, content);
  }
}

TEST_F(ArtifactServiceTest, CacheDownloadsOnceForConcurrentConsumers) {
  // A real tarball: the cache extracts what it fetched.
  std::string tree = root_ + "/tree";
  ASSERT_TRUE(WriteFile(tree + "/apps/app.yaml", "kind: ConfigMap\n").ok());
  std::string tarball = root_ + "/tree.tar.gz";
  ASSERT_TRUE(testing::RunCommand({"tar", "-czf", tarball, "-C", tree, "."}).ok());
  auto bytes = ReadFile(tarball);
  ASSERT_TRUE(bytes.ok());
  v1::Artifact a = Store("app", *bytes);

  auto cache =
      kustomize::ArtifactCache::Create(root_ + "/cache", client_.get(), common::ExtractLimits{});
  ASSERT_TRUE(cache.ok()) << cache.status();
  double before =
      common::Metrics::Global().Value("gitops_artifact_fetches_total", {{"kind", "GitRepository"}});
  std::vector<std::thread> consumers;
  std::vector<absl::StatusOr<std::string>> dirs(4);
  for (int i = 0; i < 4; ++i) {
    consumers.emplace_back(
        [&, i] { dirs[i] = (*cache)->Get(Ref(a), absl::Now() + absl::Seconds(30)); });
  }
  for (auto& t : consumers) t.join();
  for (const auto& d : dirs) {
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(*d, *dirs[0]);
  }
  EXPECT_TRUE(std::filesystem::exists(*dirs[0] + "/apps/app.yaml"));
  EXPECT_EQ(
      common::Metrics::Global().Value("gitops_artifact_fetches_total", {{"kind", "GitRepository"}}),
      before + 1);
}

// A CA, a server certificate for localhost and a client certificate, made
// with the openssl CLI in `dir`.
void MakeCertificates(const std::string& dir) {
  auto run = [&](const std::string& cmd) {
    auto r = testing::RunCommand({"sh", "-c", "cd " + dir + " && " + cmd});
    ASSERT_TRUE(r.ok()) << r.status();
  };
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  run("openssl req -x509 " + ec + " -keyout ca.key -out ca.crt -days 1 -subj /CN=test-ca 2>&1");
  ASSERT_TRUE(WriteFile(dir + "/server.ext", "subjectAltName=DNS:localhost\n").ok());
  ASSERT_TRUE(WriteFile(dir + "/client.ext", "extendedKeyUsage=clientAuth\n").ok());
  for (const std::string who : {"server", "client"}) {
    run("openssl req " + ec + " -keyout " + who + ".key -out " + who + ".csr -subj /CN=" + who +
        " 2>&1");
    run("openssl x509 -req -in " + who +
        ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out " + who + ".crt -extfile " +
        who + ".ext 2>&1");
  }
}

TEST(ArtifactServiceTlsTest, MutualTlsAcceptsOnlyClientsWithACertificate) {
  std::string dir = MakeTempDir("artifact-tls");
  MakeCertificates(dir);
  auto storage = ArtifactStorage::Create(dir + "/storage");
  ASSERT_TRUE(storage.ok());
  ArtifactEventHub hub;
  v1::Artifact a;
  a.mutable_source()->set_kind("GitRepository");
  a.mutable_source()->set_namespace_("ns");
  a.mutable_source()->set_name("app");
  a.set_digest(common::Sha256Digest("x"));
  hub.PublishUpdated(a);
  ArtifactServerOptions opts;
  opts.listen_address = "127.0.0.1:0";
  opts.tls_cert_file = dir + "/server.crt";
  opts.tls_key_file = dir + "/server.key";
  opts.tls_client_ca_file = dir + "/ca.crt";
  auto server = ArtifactServer::Start(opts, &hub, storage->get());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = "localhost:" + std::to_string((*server)->port());

  struct Case {
    std::string name;
    ArtifactClientOptions options;
    bool ok;
  };
  ArtifactClientOptions base;
  base.source_address = address;
  ArtifactClientOptions mtls = base;
  mtls.tls_ca_file = dir + "/ca.crt";
  mtls.tls_cert_file = dir + "/client.crt";
  mtls.tls_key_file = dir + "/client.key";
  ArtifactClientOptions no_cert = base;
  no_cert.tls_ca_file = dir + "/ca.crt";
  std::vector<Case> cases = {{"client certificate signed by the CA", mtls, true},
                             {"TLS without a client certificate", no_cert, false},
                             {"plaintext", base, false}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto client = ArtifactClient::Create(c.options);
    ASSERT_TRUE(client.ok()) << client.status();
    auto got = (*client)->GetArtifact("GitRepository", "ns", "app");
    EXPECT_EQ(got.ok(), c.ok) << got.status();
    if (got.ok()) EXPECT_EQ(got->digest, a.digest());
  }
  (*server)->Shutdown(absl::Seconds(1));
  RemoveTree(dir);
}

TEST(ArtifactServiceTlsTest, UnreadableCertificateIsAClearError) {
  ArtifactEventHub hub;
  std::string dir = MakeTempDir("artifact-tls-bad");
  auto storage = ArtifactStorage::Create(dir + "/storage");
  ASSERT_TRUE(storage.ok());
  ArtifactServerOptions opts;
  opts.listen_address = "127.0.0.1:0";
  opts.tls_cert_file = dir + "/missing.crt";
  opts.tls_key_file = dir + "/missing.key";
  auto server = ArtifactServer::Start(opts, &hub, storage->get());
  EXPECT_TRUE(absl::IsInvalidArgument(server.status())) << server.status();
  EXPECT_NE(server.status().message().find("missing.crt"), absl::string_view::npos);
  RemoveTree(dir);
}

}  // namespace
}  // namespace gitops::source
