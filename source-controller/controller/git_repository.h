// The GitRepository object (source.toolkit.fluxcd.io/v1) as the controller
// works with it: spec parsed and validated from a manifest with Flux's
// defaults, and the status the reconciler computes.
#ifndef GITOPS_SOURCE_CONTROLLER_CONTROLLER_GIT_REPOSITORY_H_
#define GITOPS_SOURCE_CONTROLLER_CONTROLLER_GIT_REPOSITORY_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "source-controller/git/git_fetcher.h"

namespace gitops::source {

inline constexpr char kGitRepositoryKind[] = "GitRepository";
inline constexpr char kSourceApiVersion[] = "source.toolkit.fluxcd.io/v1";

// spec.include entry: another GitRepository's artifact (from_path within it)
// copied to to_path in this one's artifact.
struct GitRepositoryInclude {
  std::string repository;  // spec.include[].repository.name
  std::string from_path;   // "" = the artifact root
  std::string to_path;     // as written; ToPath() applies Flux's default
  // Flux's GetToPath: to_path, or the included repository's name.
  const std::string& ToPath() const { return to_path.empty() ? repository : to_path; }
  bool operator==(const GitRepositoryInclude& o) const {
    return repository == o.repository && from_path == o.from_path && to_path == o.to_path;
  }
};

// spec.verify.
struct GitRepositoryVerification {
  std::string mode = "HEAD";  // HEAD | head | Tag | TagAndHEAD, as written
  std::string secret_name;
};

struct GitRepositorySpec {
  std::string url;
  GitReference ref;
  // spec.secretRef.name; empty when unset.
  std::string secret_name;
  absl::Duration interval = absl::ZeroDuration();
  absl::Duration timeout = absl::Seconds(60);
  // spec.ignore; nullopt when unset (Flux's defaults apply).
  std::optional<std::string> ignore;
  bool suspend = false;
  std::vector<GitRepositoryInclude> include;
  bool recurse_submodules = false;
  // spec.sparseCheckout as written; nullopt when unset.
  std::optional<std::vector<std::string>> sparse_checkout;
  // spec.proxySecretRef.name; empty when unset.
  std::string proxy_secret_name;
  std::optional<GitRepositoryVerification> verify;
};

// A status condition as Kubernetes and Flux shape it.
struct Condition {
  std::string type;
  std::string status;  // "True" | "False" | "Unknown"
  std::string reason;
  std::string message;
  int64_t observed_generation = 0;
  absl::Time last_transition_time;
};

struct ArtifactStatus {
  std::string path;
  std::string url;
  std::string revision;
  std::string digest;
  int64_t size = 0;
  absl::Time last_update_time;
  std::map<std::string, std::string> metadata;
  // Flux's Artifact.HasRevision / HasDigest comparisons.
  bool SameContent(const ArtifactStatus& o) const {
    return revision == o.revision && digest == o.digest;
  }
};

struct GitRepositoryStatus {
  std::optional<ArtifactStatus> artifact;
  std::vector<Condition> conditions;
  int64_t observed_generation = 0;
  std::optional<std::string> observed_ignore;
  // The artifacts of spec.include at the time the artifact was built.
  std::vector<ArtifactStatus> included_artifacts;
  bool observed_recurse_submodules = false;
  std::vector<GitRepositoryInclude> observed_include;
  std::optional<std::vector<std::string>> observed_sparse_checkout;
  // The verify mode the artifact's commit (or tag) was verified with.
  std::optional<std::string> source_verification_mode;
  // The reconcile.fluxcd.io/requestedAt value last acted upon.
  std::string last_handled_reconcile_at;
};

struct GitRepository {
  std::string namespace_name;
  std::string name;
  int64_t generation = 1;
  GitRepositorySpec spec;
  GitRepositoryStatus status;
};

// Parses and validates a GitRepository manifest, applying Flux's defaults
// (namespace "default" when absent here, timeout 60s, ref branch "master").
// InvalidArgument names the field at fault.
absl::StatusOr<GitRepository> ParseGitRepository(const nlohmann::json& manifest);

// A Secret's data (base64-decoded) merged with its stringData, as the API
// server presents it.
std::map<std::string, std::string> DecodeSecretData(const nlohmann::json& secret);
// Git credentials from a Secret's data, with Flux's keys: username/password,
// bearerToken, ca.crt (or caFile), identity (+ password as its passphrase),
// known_hosts.
GitCredentials CredentialsFromSecretData(const std::map<std::string, std::string>& data);

// Proxy settings from a proxySecretRef Secret's data (Flux's keys: address,
// username, password). InvalidArgument naming the Secret when address is
// missing.
absl::StatusOr<GitProxy> ProxyFromSecretData(const std::map<std::string, std::string>& data,
                                             absl::string_view namespace_name,
                                             absl::string_view secret_name);

// A condition of `type` observed at `generation` (lastTransitionTime is set
// by SetCondition).
Condition MakeCondition(absl::string_view type, absl::string_view status, absl::string_view reason,
                        absl::string_view message, int64_t generation);

// Sets (or replaces) the condition of `c.type`; lastTransitionTime moves only
// when the status flips.
void SetCondition(std::vector<Condition>& conditions, Condition c, absl::Time now);
// Removes the condition of `type`, if any.
void RemoveCondition(std::vector<Condition>& conditions, absl::string_view type);
// Finds a condition by type, or nullptr.
const Condition* FindCondition(const std::vector<Condition>& conditions, absl::string_view type);

// JSON round trip of the status, in the shape of Flux's status stanza.
nlohmann::json StatusToJson(const GitRepositoryStatus& status);
GitRepositoryStatus StatusFromJson(const nlohmann::json& json);

// RFC 3339 in UTC with seconds, as Kubernetes writes metav1.Time.
std::string FormatKubeTime(absl::Time t);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_CONTROLLER_GIT_REPOSITORY_H_
