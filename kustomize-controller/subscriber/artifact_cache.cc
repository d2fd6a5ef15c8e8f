#include "kustomize-controller/subscriber/artifact_cache.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace gitops::kustomize {
namespace fs = std::filesystem;

namespace {

std::string HexOf(const std::string& digest) {
  constexpr absl::string_view kPrefix = "sha256:";
  return absl::StartsWith(digest, kPrefix) ? digest.substr(kPrefix.size()) : digest;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ArtifactCache>> ArtifactCache::Create(const std::string& root,
                                                                     ArtifactClient* client,
                                                                     common::ExtractLimits limits) {
  std::error_code ec;
  fs::remove_all(fs::path(root) / ".tmp", ec);
  fs::create_directories(fs::path(root) / ".tmp", ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("create artifact cache ", root, ": ", ec.message()));
  }
  return std::unique_ptr<ArtifactCache>(new ArtifactCache(root, client, limits));
}

absl::StatusOr<std::string> ArtifactCache::Get(const ArtifactRef& artifact, absl::Time deadline) {
  std::shared_ptr<absl::Mutex> lock;
  {
    absl::MutexLock l(&mu_);
    auto& slot = inflight_[artifact.digest];
    if (!slot) slot = std::make_shared<absl::Mutex>();
    lock = slot;
  }
  absl::StatusOr<std::string> result;
  {
    absl::MutexLock digest_lock(lock.get());
    result = Populate(artifact, deadline);
  }
  absl::MutexLock l(&mu_);
  auto it = inflight_.find(artifact.digest);
  if (it != inflight_.end() && it->second.use_count() <= 2) inflight_.erase(it);
  return result;
}

absl::StatusOr<std::string> ArtifactCache::Populate(const ArtifactRef& artifact,
                                                    absl::Time deadline) {
  const std::string hex = HexOf(artifact.digest);
  if (hex.empty() || hex.find('/') != std::string::npos || hex.find("..") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("invalid digest \"", artifact.digest, "\""));
  }
  fs::path dir = fs::path(root_) / hex;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return dir.string();

  fs::path tmp = fs::path(root_) / ".tmp";
  fs::create_directories(tmp, ec);
  std::string tarball = (tmp / (hex + ".tar.gz")).string();
  absl::Status fetched = client_->Fetch(artifact, tarball, deadline);
  if (!fetched.ok()) return fetched;

  fs::path staging = tmp / absl::StrCat(hex, ".extract");
  fs::remove_all(staging, ec);
  absl::Status extracted = common::ExtractTarGz(tarball, staging.string(), limits_);
  fs::remove(tarball, ec);
  if (!extracted.ok()) {
    fs::remove_all(staging, ec);
    return absl::Status(extracted.code(),
                        absl::StrCat("extract artifact of ", artifact.SourceId(), " (",
                                     artifact.revision, "): ", extracted.message()));
  }
  // The rename publishes the whole tree at once.
  fs::rename(staging, dir, ec);
  if (ec) {
    fs::remove_all(staging, ec);
    if (!fs::is_directory(dir)) {
      return absl::InternalError(absl::StrCat("publish ", dir.string(), ": ", ec.message()));
    }
  }
  common::LogInfo("artifact ready", {{"source", artifact.SourceId()},
                                     {"revision", artifact.revision},
                                     {"digest", artifact.digest},
                                     {"path", dir.string()}});
  return dir.string();
}

void ArtifactCache::Retain(const std::set<std::string>& keep) {
  std::set<std::string> keep_hex;
  for (const auto& d : keep) keep_hex.insert(HexOf(d));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    std::string name = entry.path().filename().string();
    if (name == ".tmp" || keep_hex.count(name)) continue;
    fs::remove_all(entry.path(), ec);
  }
}

}  // namespace gitops::kustomize
