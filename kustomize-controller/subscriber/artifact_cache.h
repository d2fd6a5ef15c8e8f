// Extracted artifacts on local disk, keyed by digest and shared by every
// consumer of the same artifact (all Kustomizations on one source).
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_SUBSCRIBER_ARTIFACT_CACHE_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_SUBSCRIBER_ARTIFACT_CACHE_H_

#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/archive/extract.h"
#include "kustomize-controller/subscriber/artifact_client.h"

namespace gitops::kustomize {

// Thread-safe. Directory layout under root: "<digest hex>/" for extracted
// trees, ".tmp/" for downloads and extractions in progress.
class ArtifactCache {
 public:
  // `client` must outlive the cache. Creates root; clears leftovers in .tmp.
  static absl::StatusOr<std::unique_ptr<ArtifactCache>> Create(const std::string& root,
                                                               ArtifactClient* client,
                                                               common::ExtractLimits limits);

  // The directory holding the extracted artifact. The first caller for a
  // digest downloads (verified) and extracts it; concurrent callers for the
  // same digest wait for that one download. Errors are those of
  // ArtifactClient::Fetch and ExtractTarGz; nothing partial is ever visible.
  absl::StatusOr<std::string> Get(const ArtifactRef& artifact, absl::Time deadline);

  // Deletes extracted trees whose digest is not in `keep`.
  void Retain(const std::set<std::string>& keep);

  const std::string& root() const { return root_; }

 private:
  ArtifactCache(std::string root, ArtifactClient* client, common::ExtractLimits limits)
      : root_(std::move(root)), client_(client), limits_(limits) {}
  absl::StatusOr<std::string> Populate(const ArtifactRef& artifact, absl::Time deadline);

  const std::string root_;
  ArtifactClient* const client_;
  const common::ExtractLimits limits_;
  absl::Mutex mu_;
  // Per-digest locks so that one download serves all waiters.
  std::map<std::string, std::shared_ptr<absl::Mutex>> inflight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_SUBSCRIBER_ARTIFACT_CACHE_H_
