// Proves that the source-controller's gRPC port works like grpcurl needs it
// to with no .proto files at hand: server reflection lists and describes the
// service, and a WatchArtifacts call built only from reflected descriptors
// returns a SYNCED event. Also checks the standard health service on both
// binaries. This binary speaks reflection v1alpha with its own stubs and does
// not link gRPC's reflection library (FACTS.md: the two clash).
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "test/support/process.h"

namespace gitops {
namespace {

namespace refl = ::grpc::reflection::v1alpha;
using testing::BinaryPath;
using testing::MakeTempDir;
using testing::RemoveTree;
using testing::Subprocess;
using testing::WriteFile;

class ReflectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("reflection");
    ASSERT_TRUE(WriteFile(dir_ + "/sources.yaml", "# no sources\n").ok());
    auto proc = Subprocess::Start(
        {BinaryPath("source-controller"), "--sources-file=" + dir_ + "/sources.yaml",
         "--storage-path=" + dir_ + "/storage", "--grpc-addr=127.0.0.1:0",
         "--storage-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0"});
    ASSERT_TRUE(proc.ok()) << proc.status();
    source_ = std::move(*proc);
    auto port =
        source_->WaitForLogField("source-controller started", "grpc_port", absl::Seconds(30));
    ASSERT_TRUE(port.ok()) << port.status();
    channel_ = grpc::CreateChannel("127.0.0.1:" + *port, grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    source_.reset();
    RemoveTree(dir_);
  }

  // One reflection request/response on a fresh stream.
  refl::ServerReflectionResponse Ask(const refl::ServerReflectionRequest& req) {
    auto stub = refl::ServerReflection::NewStub(channel_);
    grpc::ClientContext ctx;
    auto stream = stub->ServerReflectionInfo(&ctx);
    EXPECT_TRUE(stream->Write(req));
    stream->WritesDone();
    refl::ServerReflectionResponse resp;
    EXPECT_TRUE(stream->Read(&resp));
    while (stream->Read(&resp)) {
    }
    EXPECT_TRUE(stream->Finish().ok());
    return resp;
  }

  // Loads the file defining `symbol` and its dependencies into `pool`.
  void LoadSymbol(const std::string& symbol, google::protobuf::DescriptorPool* pool) {
    refl::ServerReflectionRequest req;
    req.set_file_containing_symbol(symbol);
    refl::ServerReflectionResponse resp = Ask(req);
    ASSERT_TRUE(resp.has_file_descriptor_response()) << resp.DebugString();
    // Add each file once all its imports are in the pool, as grpcurl does.
    std::vector<google::protobuf::FileDescriptorProto> pending;
    for (const auto& bytes : resp.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto f;
      ASSERT_TRUE(f.ParseFromString(bytes));
      pending.push_back(f);
    }
    while (!pending.empty()) {
      size_t before = pending.size();
      for (auto it = pending.begin(); it != pending.end();) {
        bool ready = true;
        for (const auto& dep : it->dependency())
          ready = ready && pool->FindFileByName(dep) != nullptr;
        if (!ready) {
          ++it;
          continue;
        }
        ASSERT_NE(pool->BuildFile(*it), nullptr) << it->name();
        it = pending.erase(it);
      }
      ASSERT_LT(pending.size(), before) << "reflection returned files with unresolvable imports";
    }
  }

  std::string dir_;
  std::unique_ptr<Subprocess> source_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ReflectionTest, ListsTheArtifactHealthAndReflectionServices) {
  refl::ServerReflectionRequest req;
  req.set_list_services("*");
  refl::ServerReflectionResponse resp = Ask(req);
  ASSERT_TRUE(resp.has_list_services_response()) << resp.DebugString();
  std::set<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.insert(s.name());
  EXPECT_TRUE(names.count("gitops.artifact.v1.ArtifactService"));
  EXPECT_TRUE(names.count("grpc.health.v1.Health"));
  EXPECT_TRUE(names.count("grpc.reflection.v1alpha.ServerReflection"));
}

TEST_F(ReflectionTest, DescribesTheServiceWithItsStreamingMethods) {
  google::protobuf::DescriptorPool pool;
  LoadSymbol("gitops.artifact.v1.ArtifactService", &pool);
  const auto* service = pool.FindServiceByName("gitops.artifact.v1.ArtifactService");
  ASSERT_NE(service, nullptr);
  const auto* watch = service->FindMethodByName("WatchArtifacts");
  const auto* fetch = service->FindMethodByName("FetchArtifact");
  const auto* get = service->FindMethodByName("GetArtifact");
  ASSERT_NE(watch, nullptr);
  ASSERT_NE(fetch, nullptr);
  ASSERT_NE(get, nullptr);
  EXPECT_TRUE(watch->server_streaming());
  EXPECT_TRUE(fetch->server_streaming());
  EXPECT_FALSE(get->server_streaming());
  EXPECT_EQ(watch->output_type()->full_name(), "gitops.artifact.v1.ArtifactEvent");
  const auto* artifact = pool.FindMessageTypeByName("gitops.artifact.v1.Artifact");
  ASSERT_NE(artifact, nullptr);
  for (const char* field :
       {"source", "revision", "digest", "size", "path", "url", "last_update_time", "metadata"}) {
    EXPECT_NE(artifact->FindFieldByName(field), nullptr) << field;
  }
}

TEST_F(ReflectionTest, WatchCallBuiltFromReflectionGetsTheSyncedMarker) {
  google::protobuf::DescriptorPool pool;
  LoadSymbol("gitops.artifact.v1.ArtifactService", &pool);
  const auto* method = pool.FindMethodByName("gitops.artifact.v1.ArtifactService.WatchArtifacts");
  ASSERT_NE(method, nullptr);
  google::protobuf::DynamicMessageFactory factory(&pool);
  std::unique_ptr<google::protobuf::Message> request(
      factory.GetPrototype(method->input_type())->New());
  std::string wire;
  ASSERT_TRUE(request->SerializeToString(&wire));

  grpc::GenericStub stub(channel_);
  grpc::ClientContext ctx;
  grpc::CompletionQueue cq;
  grpc::Slice slice(wire);
  grpc::ByteBuffer send(&slice, 1);
  auto call = stub.PrepareCall(&ctx, "/gitops.artifact.v1.ArtifactService/WatchArtifacts", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  call->Write(send, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer recv;
  call->Read(&recv, reinterpret_cast<void*>(4));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(recv.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::unique_ptr<google::protobuf::Message> event(
      factory.GetPrototype(method->output_type())->New());
  ASSERT_TRUE(event->ParseFromString(bytes));
  const auto* type_field = method->output_type()->FindFieldByName("type");
  ASSERT_NE(type_field, nullptr);
  EXPECT_EQ(event->GetReflection()->GetEnum(*event, type_field)->name(), "SYNCED");
  ctx.TryCancel();
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  while (cq.Next(&tag, &ok)) {
    if (tag == reinterpret_cast<void*>(5)) break;
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(
    std::shared_ptr<grpc::Channel> channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status s = stub->Check(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.status();
}

TEST_F(ReflectionTest, BothBinariesServeTheStandardHealthService) {
  EXPECT_EQ(Health(channel_), grpc::health::v1::HealthCheckResponse::SERVING);
  auto kc =
      Subprocess::Start({BinaryPath("kustomize-controller"), "--source-addr=127.0.0.1:1",
                         "--grpc-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0",
                         "--health-addr=127.0.0.1:0", "--artifact-cache-path=" + dir_ + "/cache"});
  ASSERT_TRUE(kc.ok());
  auto port =
      (*kc)->WaitForLogField("kustomize-controller started", "grpc_port", absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(Health(grpc::CreateChannel("127.0.0.1:" + *port, grpc::InsecureChannelCredentials())),
            grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace gitops
