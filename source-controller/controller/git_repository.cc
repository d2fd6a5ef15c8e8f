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
  for (const char* unsupported :
       {"include", "verify", "recurseSubmodules", "sparseCheckout", "proxySecretRef"}) {
    if (spec.contains(unsupported) && !spec[unsupported].is_null() &&
        !(spec[unsupported].is_boolean() && !spec[unsupported].get<bool>())) {
      return Field(absl::StrCat("spec.", unsupported), "not supported yet by this controller");
    }
  }
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
  c.username = get("username");
  c.password = get("password");
  c.bearer_token = get("bearerToken");
  c.ca_pem = get("ca.crt").empty() ? get("caFile") : get("ca.crt");
  c.ssh_identity = get("identity");
  c.ssh_known_hosts = get("known_hosts");
  if (!c.ssh_identity.empty()) c.ssh_identity_passphrase = c.password;
  return c;
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

nlohmann::json StatusToJson(const GitRepositoryStatus& status) {
  nlohmann::json j = nlohmann::json::object();
  if (status.artifact) {
    const ArtifactStatus& a = *status.artifact;
    j["artifact"] = {{"digest", a.digest}, {"lastUpdateTime", FormatKubeTime(a.last_update_time)},
                     {"path", a.path},     {"revision", a.revision},
                     {"size", a.size},     {"url", a.url}};
  }
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
  return j;
}

GitRepositoryStatus StatusFromJson(const nlohmann::json& j) {
  GitRepositoryStatus s;
  if (!j.is_object()) return s;
  if (j.contains("artifact") && j["artifact"].is_object()) {
    const auto& a = j["artifact"];
    ArtifactStatus art;
    art.digest = common::StringField(a, "digest");
    art.path = common::StringField(a, "path");
    art.revision = common::StringField(a, "revision");
    art.url = common::StringField(a, "url");
    art.size = common::IntField(a, "size");
    art.last_update_time = ParseKubeTime(common::StringField(a, "lastUpdateTime"));
    s.artifact = art;
  }
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
  return s;
}

}  // namespace gitops::source
