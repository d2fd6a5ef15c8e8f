#include "source-controller/controller/git_repository.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/runtime/duration.h"
#include "common/yaml/yaml.h"

namespace gitops::source {
namespace {

absl::Status Field(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::StatusOr<std::string> OptionalString(const nlohmann::json& obj, const char* key,
                                           absl::string_view field) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return std::string();
  if (!obj[key].is_string()) return Field(field, "must be a string");
  return obj[key].get<std::string>();
}

}  // namespace

absl::StatusOr<GitRepository> ParseGitRepository(const nlohmann::json& m) {
  if (!m.is_object()) return absl::InvalidArgumentError("manifest is not an object");
  std::string api = common::StringField(m, "apiVersion");
  if (api != kSourceApiVersion && api != "source.toolkit.fluxcd.io/v1beta2") {
    return Field("apiVersion", absl::StrCat("unsupported \"", api, "\": want ", kSourceApiVersion));
  }
  if (common::StringField(m, "kind") != kGitRepositoryKind)
    return Field("kind", "want GitRepository");
  GitRepository repo;
  const nlohmann::json& meta = m.contains("metadata") ? m["metadata"] : nlohmann::json::object();
  auto name = OptionalString(meta, "name", "metadata.name");
  if (!name.ok()) return name.status();
  if (name->empty()) return Field("metadata.name", "required");
  repo.name = *name;
  auto ns = OptionalString(meta, "namespace", "metadata.namespace");
  if (!ns.ok()) return ns.status();
  repo.namespace_name = ns->empty() ? "default" : *ns;
  if (meta.contains("generation") && meta["generation"].is_number_integer()) {
    repo.generation = meta["generation"].get<int64_t>();
  }

  const nlohmann::json& spec = m.contains("spec") ? m["spec"] : nlohmann::json();
  if (!spec.is_object()) return Field("spec", "required");
  auto url = OptionalString(spec, "url", "spec.url");
  if (!url.ok()) return url.status();
  if (url->empty()) return Field("spec.url", "required");
  repo.spec.url = *url;

  auto interval = OptionalString(spec, "interval", "spec.interval");
  if (!interval.ok()) return interval.status();
  if (interval->empty()) return Field("spec.interval", "required");
  auto iv = common::ParseGoDuration(*interval);
  if (!iv.ok()) return Field("spec.interval", iv.status().message());
  if (*iv <= absl::ZeroDuration()) return Field("spec.interval", "must be positive");
  repo.spec.interval = *iv;

  auto timeout = OptionalString(spec, "timeout", "spec.timeout");
  if (!timeout.ok()) return timeout.status();
  if (!timeout->empty()) {
    auto t = common::ParseGoDuration(*timeout);
    if (!t.ok()) return Field("spec.timeout", t.status().message());
    if (*t <= absl::ZeroDuration()) return Field("spec.timeout", "must be positive");
    repo.spec.timeout = *t;
  }

  if (spec.contains("ref") && !spec["ref"].is_null()) {
    const nlohmann::json& ref = spec["ref"];
    if (!ref.is_object()) return Field("spec.ref", "must be an object");
    for (auto [key, target] :
         {std::pair<const char*, std::string*>{"branch", &repo.spec.ref.branch},
          {"tag", &repo.spec.ref.tag},
          {"semver", &repo.spec.ref.semver},
          {"name", &repo.spec.ref.name},
          {"commit", &repo.spec.ref.commit}}) {
      auto v = OptionalString(ref, key, absl::StrCat("spec.ref.", key));
      if (!v.ok()) return v.status();
      *target = *v;
    }
  }
  const GitReference& r = repo.spec.ref;
  if (r.branch.empty() && r.tag.empty() && r.semver.empty() && r.name.empty() && r.commit.empty()) {
    repo.spec.ref.branch = "master";  // Flux's default
  }

  if (spec.contains("secretRef") && !spec["secretRef"].is_null()) {
    auto s = OptionalString(spec["secretRef"], "name", "spec.secretRef.name");
    if (!s.ok()) return s.status();
    if (s->empty()) return Field("spec.secretRef.name", "required when secretRef is set");
    repo.spec.secret_name = *s;
  }
  if (spec.contains("ignore") && !spec["ignore"].is_null()) {
    if (!spec["ignore"].is_string()) return Field("spec.ignore", "must be a string");
    repo.spec.ignore = spec["ignore"].get<std::string>();
  }
  if (spec.contains("suspend") && !spec["suspend"].is_null()) {
    if (!spec["suspend"].is_boolean()) return Field("spec.suspend", "must be a boolean");
    repo.spec.suspend = spec["suspend"].get<bool>();
  }
  if (spec.contains("recurseSubmodules") && !spec["recurseSubmodules"].is_null()) {
    if (!spec["recurseSubmodules"].is_boolean()) {
      return Field("spec.recurseSubmodules", "must be a boolean");
    }
    repo.spec.recurse_submodules = spec["recurseSubmodules"].get<bool>();
  }
  if (spec.contains("sparseCheckout") && !spec["sparseCheckout"].is_null()) {
    const nlohmann::json& dirs = spec["sparseCheckout"];
    if (!dirs.is_array()) return Field("spec.sparseCheckout", "must be a list of directories");
    std::vector<std::string> out;
    for (size_t i = 0; i < dirs.size(); ++i) {
      if (!dirs[i].is_string() || dirs[i].get<std::string>().empty()) {
        return Field(absl::StrCat("spec.sparseCheckout[", i, "]"), "must be a non-empty string");
      }
      out.push_back(dirs[i].get<std::string>());
    }
    repo.spec.sparse_checkout = std::move(out);
  }
  if (spec.contains("proxySecretRef") && !spec["proxySecretRef"].is_null()) {
    auto s = OptionalString(spec["proxySecretRef"], "name", "spec.proxySecretRef.name");
    if (!s.ok()) return s.status();
    if (s->empty()) return Field("spec.proxySecretRef.name", "required when proxySecretRef is set");
    repo.spec.proxy_secret_name = *s;
  }
  if (spec.contains("include") && !spec["include"].is_null()) {
    const nlohmann::json& list = spec["include"];
    if (!list.is_array()) return Field("spec.include", "must be a list");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string at = absl::StrCat("spec.include[", i, "]");
      if (!list[i].is_object()) return Field(at, "must be an object");
      GitRepositoryInclude inc;
      if (!list[i].contains("repository") || !list[i]["repository"].is_object()) {
        return Field(absl::StrCat(at, ".repository"), "required");
      }
      auto name =
          OptionalString(list[i]["repository"], "name", absl::StrCat(at, ".repository.name"));
      if (!name.ok()) return name.status();
      if (name->empty()) return Field(absl::StrCat(at, ".repository.name"), "required");
      inc.repository = *name;
      auto from = OptionalString(list[i], "fromPath", absl::StrCat(at, ".fromPath"));
      if (!from.ok()) return from.status();
      inc.from_path = *from;
      auto to = OptionalString(list[i], "toPath", absl::StrCat(at, ".toPath"));
      if (!to.ok()) return to.status();
      inc.to_path = *to;
      repo.spec.include.push_back(std::move(inc));
    }
  }
  if (spec.contains("verify") && !spec["verify"].is_null()) {
    const nlohmann::json& v = spec["verify"];
    if (!v.is_object()) return Field("spec.verify", "must be an object");
    GitRepositoryVerification verify;
    auto mode = OptionalString(v, "mode", "spec.verify.mode");
    if (!mode.ok()) return mode.status();
    if (!mode->empty()) verify.mode = *mode;
    if (verify.mode != "HEAD" && verify.mode != "head" && verify.mode != "Tag" &&
        verify.mode != "TagAndHEAD") {
      return Field("spec.verify.mode", absl::StrCat("unsupported value \"", verify.mode,
                                                    "\": want HEAD, Tag or TagAndHEAD"));
    }
    if (!v.contains("secretRef") || !v["secretRef"].is_object()) {
      return Field("spec.verify.secretRef", "required");
    }
    auto secret = OptionalString(v["secretRef"], "name", "spec.verify.secretRef.name");
    if (!secret.ok()) return secret.status();
    if (secret->empty()) return Field("spec.verify.secretRef.name", "required");
    verify.secret_name = *secret;
    repo.spec.verify = std::move(verify);
  }
  // Cloud identity providers need workload identity this controller does not
  // implement; refuse them rather than fall back to anonymous access.
  auto provider = OptionalString(spec, "provider", "spec.provider");
  if (!provider.ok()) return provider.status();
  if (!provider->empty() && *provider != "generic") {
    return Field(
        "spec.provider",
        absl::StrCat("\"", *provider, "\" is not supported by this controller (only generic)"));
  }
  auto sa = OptionalString(spec, "serviceAccountName", "spec.serviceAccountName");
  if (!sa.ok()) return sa.status();
  if (!sa->empty()) return Field("spec.serviceAccountName", "not supported by this controller");
  return repo;
}

std::map<std::string, std::string> DecodeSecretData(const nlohmann::json& secret) {
  std::map<std::string, std::string> out;
  if (!secret.is_object()) return out;
  if (secret.contains("data") && secret["data"].is_object()) {
    for (auto& [k, v] : secret["data"].items()) {
      std::string decoded;
      if (v.is_string() && absl::Base64Unescape(v.get<std::string>(), &decoded)) out[k] = decoded;
    }
  }
  if (secret.contains("stringData") && secret["stringData"].is_object()) {
    for (auto& [k, v] : secret["stringData"].items()) {
      if (v.is_string()) out[k] = v.get<std::string>();
    }
  }
  return out;
}

GitCredentials CredentialsFromSecretData(const std::map<std::string, std::string>& data) {
  auto get = [&](const char* k) {
    auto v = data.find(k);
    return v == data.end() ? std::string() : v->second;
  };
  GitCredentials c;
  // Flux (fluxcd/pkg git NewAuthOptions): with a bearerToken key, the
  // username and password keys are not used for http(s).
  if (data.count("bearerToken") == 0) {
    c.username = get("username");
    c.password = get("password");
  }
  c.bearer_token = get("bearerToken");
  c.ca_pem = get("ca.crt").empty() ? get("caFile") : get("ca.crt");
  c.ssh_identity = get("identity");
  c.ssh_known_hosts = get("known_hosts");
  if (!c.ssh_identity.empty()) c.ssh_identity_passphrase = get("password");
  return c;
}

absl::StatusOr<GitProxy> ProxyFromSecretData(const std::map<std::string, std::string>& data,
                                             absl::string_view namespace_name,
                                             absl::string_view secret_name) {
  auto get = [&](const char* k) {
    auto it = data.find(k);
    return it == data.end() ? std::string() : it->second;
  };
  GitProxy proxy{get("address"), get("username"), get("password")};
  if (proxy.address.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid proxy secret '", namespace_name, "/",
                                                   secret_name, "': key 'address' is missing"));
  }
  return proxy;
}

Condition MakeCondition(absl::string_view type, absl::string_view status, absl::string_view reason,
                        absl::string_view message, int64_t generation) {
  Condition c;
  c.type = std::string(type);
  c.status = std::string(status);
  c.reason = std::string(reason);
  c.message = std::string(message);
  c.observed_generation = generation;
  return c;
}

void SetCondition(std::vector<Condition>& conditions, Condition c, absl::Time now) {
  for (auto& existing : conditions) {
    if (existing.type != c.type) continue;
    c.last_transition_time = existing.status == c.status ? existing.last_transition_time : now;
    existing = std::move(c);
    return;
  }
  c.last_transition_time = now;
  conditions.push_back(std::move(c));
}

void RemoveCondition(std::vector<Condition>& conditions, absl::string_view type) {
  for (auto it = conditions.begin(); it != conditions.end(); ++it) {
    if (it->type == type) {
      conditions.erase(it);
      return;
    }
  }
}

const Condition* FindCondition(const std::vector<Condition>& conditions, absl::string_view type) {
  for (const auto& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

std::string FormatKubeTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

namespace {
absl::Time ParseKubeTime(const std::string& s) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", s, absl::UTCTimeZone(), &t, &err)) return t;
  return absl::UnixEpoch();
}
}  // namespace

namespace {

nlohmann::json ArtifactToJson(const ArtifactStatus& a) {
  nlohmann::json j = {{"digest", a.digest}, {"lastUpdateTime", FormatKubeTime(a.last_update_time)},
                      {"path", a.path},     {"revision", a.revision},
                      {"size", a.size},     {"url", a.url}};
  if (!a.metadata.empty()) j["metadata"] = a.metadata;
  return j;
}

ArtifactStatus ArtifactFromJson(const nlohmann::json& a) {
  ArtifactStatus art;
  art.digest = common::StringField(a, "digest");
  art.path = common::StringField(a, "path");
  art.revision = common::StringField(a, "revision");
  art.url = common::StringField(a, "url");
  art.size = common::IntField(a, "size");
  art.last_update_time = ParseKubeTime(common::StringField(a, "lastUpdateTime"));
  if (a.contains("metadata") && a["metadata"].is_object()) {
    for (auto& [k, v] : a["metadata"].items()) {
      if (v.is_string()) art.metadata[k] = v.get<std::string>();
    }
  }
  return art;
}

nlohmann::json IncludeToJson(const GitRepositoryInclude& inc) {
  nlohmann::json j = {{"repository", {{"name", inc.repository}}}};
  if (!inc.from_path.empty()) j["fromPath"] = inc.from_path;
  if (!inc.to_path.empty()) j["toPath"] = inc.to_path;
  return j;
}

GitRepositoryInclude IncludeFromJson(const nlohmann::json& j) {
  GitRepositoryInclude inc;
  inc.repository = common::StringAt(j, {"repository", "name"});
  inc.from_path = common::StringField(j, "fromPath");
  inc.to_path = common::StringField(j, "toPath");
  return inc;
}

std::vector<std::string> StringList(const nlohmann::json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

nlohmann::json StatusToJson(const GitRepositoryStatus& status) {
  nlohmann::json j = nlohmann::json::object();
  if (status.artifact) j["artifact"] = ArtifactToJson(*status.artifact);
  nlohmann::json conds = nlohmann::json::array();
  for (const auto& c : status.conditions) {
    conds.push_back({{"lastTransitionTime", FormatKubeTime(c.last_transition_time)},
                     {"message", c.message},
                     {"observedGeneration", c.observed_generation},
                     {"reason", c.reason},
                     {"status", c.status},
                     {"type", c.type}});
  }
  j["conditions"] = conds;
  j["observedGeneration"] = status.observed_generation;
  if (status.observed_ignore) j["observedIgnore"] = *status.observed_ignore;
  if (!status.included_artifacts.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& a : status.included_artifacts) list.push_back(ArtifactToJson(a));
    j["includedArtifacts"] = list;
  }
  if (status.observed_recurse_submodules) j["observedRecurseSubmodules"] = true;
  if (!status.observed_include.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& inc : status.observed_include) list.push_back(IncludeToJson(inc));
    j["observedInclude"] = list;
  }
  if (status.observed_sparse_checkout && !status.observed_sparse_checkout->empty()) {
    j["observedSparseCheckout"] = *status.observed_sparse_checkout;
  }
  if (status.source_verification_mode) {
    j["sourceVerificationMode"] = *status.source_verification_mode;
  }
  if (!status.last_handled_reconcile_at.empty()) {
    j["lastHandledReconcileAt"] = status.last_handled_reconcile_at;
  }
  return j;
}

GitRepositoryStatus StatusFromJson(const nlohmann::json& j) {
  GitRepositoryStatus s;
  if (!j.is_object()) return s;
  if (j.contains("artifact") && j["artifact"].is_object())
    s.artifact = ArtifactFromJson(j["artifact"]);
  if (j.contains("conditions") && j["conditions"].is_array()) {
    for (const auto& c : j["conditions"]) {
      Condition cond;
      cond.type = common::StringField(c, "type");
      cond.status = common::StringField(c, "status");
      cond.reason = common::StringField(c, "reason");
      cond.message = common::StringField(c, "message");
      cond.observed_generation = common::IntField(c, "observedGeneration");
      cond.last_transition_time = ParseKubeTime(common::StringField(c, "lastTransitionTime"));
      s.conditions.push_back(cond);
    }
  }
  s.observed_generation = common::IntField(j, "observedGeneration");
  if (j.contains("observedIgnore") && j["observedIgnore"].is_string()) {
    s.observed_ignore = j["observedIgnore"].get<std::string>();
  }
  if (j.contains("includedArtifacts") && j["includedArtifacts"].is_array()) {
    for (const auto& a : j["includedArtifacts"]) {
      if (a.is_object()) s.included_artifacts.push_back(ArtifactFromJson(a));
    }
  }
  s.observed_recurse_submodules = j.contains("observedRecurseSubmodules") &&
                                  j["observedRecurseSubmodules"].is_boolean() &&
                                  j["observedRecurseSubmodules"].get<bool>();
  if (j.contains("observedInclude") && j["observedInclude"].is_array()) {
    for (const auto& inc : j["observedInclude"]) {
      if (inc.is_object()) s.observed_include.push_back(IncludeFromJson(inc));
    }
  }
  if (j.contains("observedSparseCheckout")) {
    s.observed_sparse_checkout = StringList(j["observedSparseCheckout"]);
  }
  if (j.contains("sourceVerificationMode") && j["sourceVerificationMode"].is_string()) {
    s.source_verification_mode = j["sourceVerificationMode"].get<std::string>();
  }
  s.last_handled_reconcile_at = common::StringField(j, "lastHandledReconcileAt");
  return s;
}

}  // namespace gitops::source
