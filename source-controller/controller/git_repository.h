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
};

struct GitRepositoryStatus {
  std::optional<ArtifactStatus> artifact;
  std::vector<Condition> conditions;
  int64_t observed_generation = 0;
  std::optional<std::string> observed_ignore;
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
