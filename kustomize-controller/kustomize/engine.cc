#include "kustomize-controller/kustomize/engine.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/crypto/sha256.h"
#include "common/status/status_macros.h"
#include "kustomize-controller/kustomize/builtin_specs.h"
#include "kustomize-controller/kustomize/fieldspec.h"
#include "kustomize-controller/kustomize/patch.h"
#include "kustomize-controller/kustomize/replacements.h"
#include "kustomize-controller/kustomize/yaml_io.h"

namespace gitops::kustomize {
namespace fs = std::filesystem;

void Resource::SetName(const std::string& n) { obj["metadata"]["name"] = Node::String(n); }
void Resource::SetNamespace(const std::string& n) {
  obj["metadata"]["namespace"] = Node::String(n);
}

namespace {

using common::Annotate;

constexpr int kMaxDepth = 64;

const char* const kKustomizationFiles[] = {"kustomization.yaml", "kustomization.yml",
                                           "Kustomization"};

const std::set<std::string>& KnownKustomizationFields() {
  static const std::set<std::string> kFields = {"apiVersion",
                                                "kind",
                                                "metadata",
                                                "resources",
                                                "bases",
                                                "components",
                                                "crds",
                                                "namespace",
                                                "namePrefix",
                                                "nameSuffix",
                                                "commonLabels",
                                                "labels",
                                                "commonAnnotations",
                                                "patches",
                                                "patchesStrategicMerge",
                                                "patchesJson6902",
                                                "images",
                                                "replicas",
                                                "configMapGenerator",
                                                "secretGenerator",
                                                "generatorOptions",
                                                "replacements",
                                                "vars",
                                                "sortOptions",
                                                "buildMetadata",
                                                "configurations",
                                                "openapi",
                                                "generators",
                                                "transformers",
                                                "validators",
                                                "helmCharts",
                                                "helmGlobals",
                                                "helmChartInflationGenerator",
                                                "imageTags",
                                                "inventory"};
  return kFields;
}

std::string JoinPath(const std::string& dir, const std::string& rel) {
  if (!rel.empty() && rel[0] == '/') return fs::path(rel).lexically_normal().string();
  return (fs::path(dir) / rel).lexically_normal().string();
}

bool IsUnder(const std::string& path, const std::string& dir) {
  if (path == dir) return true;
  std::string d = dir;
  if (d.empty() || d.back() != '/') d += '/';
  return path.compare(0, d.size(), d) == 0;
}

bool LooksRemote(const std::string& s) {
  return absl::StrContains(s, "://") || absl::StartsWith(s, "github.com/") ||
         absl::StartsWith(s, "git@") || absl::StartsWith(s, "gitlab.com/") ||
         absl::StartsWith(s, "bitbucket.org/");
}

absl::StatusOr<std::vector<std::string>> StringList(const Node& k, const char* field) {
  std::vector<std::string> out;
  const Node* n = k.Find(field);
  if (n == nullptr || n->IsNull()) return out;
  if (!n->IsSeq()) {
    return absl::InvalidArgumentError(absl::StrCat("field ", field, " must be a list of strings"));
  }
  for (const Node& item : n->items()) {
    if (!item.IsScalar() || item.IsNull()) {
      return absl::InvalidArgumentError(
          absl::StrCat("field ", field, " must be a list of strings"));
    }
    out.push_back(item.scalar());
  }
  return out;
}

std::map<std::string, std::string> StringMap(const Node* n) {
  std::map<std::string, std::string> out;
  if (n == nullptr || !n->IsMap()) return out;
  for (const auto& e : n->entries()) out[e.first] = e.second.IsNull() ? "" : e.second.scalar();
  return out;
}

// A map[string]string field of the kustomization, typed as kustomize's Go
// struct decoding would: numbers, booleans and YAML 1.1 booleans are errors.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> StrictPairs(
    const Node* m, const std::string& field) {
  std::vector<std::pair<std::string, std::string>> out;
  if (m == nullptr || m->IsNull()) return out;
  if (!m->IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid Kustomization: json: cannot unmarshal into Go struct field ", field,
                     " of type map[string]string"));
  }
  for (const auto& e : m->entries()) {
    const Node& v = e.second;
    if (v.IsNull()) {
      out.emplace_back(e.first, "");
      continue;
    }
    const char* bad = nullptr;
    if (v.kind() == Node::Kind::kInt || v.kind() == Node::Kind::kFloat) bad = "number";
    if (v.kind() == Node::Kind::kBool || v.yaml11_non_string()) bad = "bool";
    if (v.IsMap()) bad = "object";
    if (v.IsSeq()) bad = "array";
    if (bad != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid Kustomization: json: cannot unmarshal ", bad,
                       " into Go struct field ", field, " of type string"));
    }
    out.emplace_back(e.first, v.scalar());
  }
  return out;
}

std::string IdString(const Resource& r) {
  Gvk g = Gvk::Of(r.obj);
  std::string ns = r.ns();
  return absl::StrCat(g.group, "_", g.version, "_", g.kind, "|", ns.empty() ? "~X" : ns, "|",
                      r.name());
}

std::string EffectiveNs(const Resource& r) {
  if (IsClusterScoped(Gvk::Of(r.obj))) return "";
  std::string ns = r.ns();
  return ns.empty() ? "default" : ns;
}

std::string OrigName(const Resource& r) {
  return r.prev_ids.empty() ? r.name() : r.prev_ids.front().first;
}
std::string OrigNs(const Resource& r) {
  return r.prev_ids.empty() ? r.ns() : r.prev_ids.front().second;
}

// The resource's id, or any id it had, matches kind/name/namespace.
bool AnyIdMatches(const Resource& r, const Gvk& gvk, const std::string& name,
                  const std::string& ns) {
  Gvk g = Gvk::Of(r.obj);
  if (!(g == gvk)) return false;
  auto ns_eq = [](const std::string& a, const std::string& b) {
    return (a.empty() ? "default" : a) == (b.empty() ? "default" : b);
  };
  if (r.name() == name && ns_eq(r.ns(), ns)) return true;
  for (const auto& id : r.prev_ids) {
    if (id.first == name && ns_eq(id.second, ns)) return true;
  }
  return false;
}

// --- label selectors -------------------------------------------------------

absl::StatusOr<bool> MatchesSelector(const std::string& selector,
                                     const std::map<std::string, std::string>& labels) {
  if (selector.empty()) return true;
  // Split on commas outside parentheses.
  std::vector<std::string> reqs;
  std::string cur;
  int depth = 0;
  for (char c : selector) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      reqs.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  reqs.push_back(cur);
  for (std::string req : reqs) {
    req = std::string(absl::StripAsciiWhitespace(req));
    if (req.empty()) continue;
    size_t p;
    if ((p = req.find("!=")) != std::string::npos) {
      std::string k(absl::StripAsciiWhitespace(req.substr(0, p)));
      std::string v(absl::StripAsciiWhitespace(req.substr(p + 2)));
      auto it = labels.find(k);
      if (it != labels.end() && it->second == v) return false;
    } else if ((p = req.find("==")) != std::string::npos ||
               (p = req.find('=')) != std::string::npos) {
      size_t len = req.compare(p, 2, "==") == 0 ? 2 : 1;
      std::string k(absl::StripAsciiWhitespace(req.substr(0, p)));
      std::string v(absl::StripAsciiWhitespace(req.substr(p + len)));
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) return false;
    } else if ((p = req.find(" notin ")) != std::string::npos ||
               (p = req.find(" in ")) != std::string::npos) {
      bool notin = req.compare(p, 7, " notin ") == 0;
      std::string k(absl::StripAsciiWhitespace(req.substr(0, p)));
      std::string rest(absl::StripAsciiWhitespace(req.substr(p + (notin ? 7 : 4))));
      if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') {
        return absl::InvalidArgumentError(absl::StrCat("unable to parse requirement: ", req));
      }
      std::set<std::string> vals;
      for (absl::string_view v : absl::StrSplit(rest.substr(1, rest.size() - 2), ',')) {
        vals.insert(std::string(absl::StripAsciiWhitespace(v)));
      }
      auto it = labels.find(k);
      bool in = it != labels.end() && vals.count(it->second) > 0;
      if (notin ? in : !in) return false;
    } else if (req[0] == '!') {
      if (labels.count(std::string(absl::StripAsciiWhitespace(req.substr(1))))) return false;
    } else {
      if (!labels.count(req)) return false;
    }
  }
  return true;
}

struct Selector {
  Gvk gvk;
  std::string name;
  std::string ns;
  std::string label_selector;
  std::string annotation_selector;
};

Selector ParseSelector(const Node& t) {
  Selector s;
  s.gvk.group = t.GetString({"group"});
  s.gvk.version = t.GetString({"version"});
  s.gvk.kind = t.GetString({"kind"});
  s.name = t.GetString({"name"});
  s.ns = t.GetString({"namespace"});
  s.label_selector = t.GetString({"labelSelector"});
  s.annotation_selector = t.GetString({"annotationSelector"});
  return s;
}

absl::StatusOr<std::vector<size_t>> Select(const std::vector<Resource>& ra, const Selector& s) {
  std::unique_ptr<std::regex> name_re, ns_re;
  try {
    if (!s.name.empty()) name_re = std::make_unique<std::regex>("^(?:" + s.name + ")$");
    if (!s.ns.empty()) ns_re = std::make_unique<std::regex>("^(?:" + s.ns + ")$");
  } catch (const std::regex_error& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid target regex: ", e.what()));
  }
  std::vector<size_t> out;
  for (size_t i = 0; i < ra.size(); ++i) {
    const Resource& r = ra[i];
    Gvk g = Gvk::Of(r.obj);
    if (!g.IsSelectedBy(s.gvk)) continue;
    if (ns_re) {
      bool cluster = IsClusterScoped(g);
      auto eff = [&](const std::string& ns) {
        return cluster ? "" : (ns.empty() ? "default" : ns);
      };
      if (!std::regex_match(eff(OrigNs(r)), *ns_re) && !std::regex_match(eff(r.ns()), *ns_re)) {
        continue;
      }
    }
    if (name_re && !std::regex_match(OrigName(r), *name_re) &&
        !std::regex_match(r.name(), *name_re)) {
      continue;
    }
    if (!s.label_selector.empty()) {
      ASSIGN_OR_RETURN(bool ok, MatchesSelector(s.label_selector,
                                                StringMap(r.obj.FindPath({"metadata", "labels"}))));
      if (!ok) continue;
    }
    if (!s.annotation_selector.empty()) {
      ASSIGN_OR_RETURN(bool ok,
                       MatchesSelector(s.annotation_selector,
                                       StringMap(r.obj.FindPath({"metadata", "annotations"}))));
      if (!ok) continue;
    }
    out.push_back(i);
  }
  return out;
}

// --- hashing ---------------------------------------------------------------

std::string EncodeHash(const std::string& hex) {
  std::string enc = hex.substr(0, 10);
  for (char& c : enc) {
    switch (c) {
      case '0':
        c = 'g';
        break;
      case '1':
        c = 'h';
        break;
      case '3':
        c = 'k';
        break;
      case 'a':
        c = 'm';
        break;
      case 'e':
        c = 't';
        break;
      default:
        break;
    }
  }
  return enc;
}

std::string ResourceHash(const Resource& r) {
  Node m = Node::Map();
  std::string kind = r.kind();
  auto value = [&](const char* field) {
    const Node* v = r.obj.Find(field);
    if (v == nullptr) return Node::String("");
    return *v;
  };
  std::string encoded;
  if (kind == "ConfigMap") {
    m["kind"] = Node::String("ConfigMap");
    // kustomize looks the name up with a path it never finds, so the name
    // is always empty in the hashed document.
    m["name"] = Node::String("");
    m["data"] = value("data");
    const Node* bd = r.obj.Find("binaryData");
    if (bd != nullptr && bd->IsMap()) m["binaryData"] = *bd;
    encoded = EmitJson(m);
  } else if (kind == "Secret") {
    m["kind"] = Node::String("Secret");
    m["type"] = value("type");
    m["name"] = Node::String("");
    m["data"] = value("data");
    const Node* sd = r.obj.Find("stringData");
    if (sd != nullptr && sd->IsMap()) m["stringData"] = *sd;
    encoded = EmitJson(m);
  } else {
    encoded = EmitJson(r.obj);
  }
  common::Sha256 h;
  h.Update(encoded);
  return EncodeHash(h.HexDigest());
}

// --- generators ------------------------------------------------------------

bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (n < 0 || i + n >= s.size() + (n == 0 ? 1 : 0)) {
      if (n != 0) return false;
    }
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

bool IsValidConfigKey(const std::string& k) {
  if (k.empty() || k.size() > 253 || k == "." || k == "..") return false;
  for (char c : k) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  return true;
}

}  // namespace

struct Engine::Target {
  Engine* engine;
  std::string dir;  // normalized absolute directory of the kustomization
  Node k;

  absl::StatusOr<std::string> Load(const std::string& rel) const {
    std::string p = JoinPath(dir, rel);
    if (engine->restrict_files_ && !IsUnder(p, dir)) {
      return absl::InvalidArgumentError(
          absl::StrCat("security; file '", p, "' is not in or below '", dir, "'"));
    }
    return engine->ReadFile(p);
  }

  absl::Status Generators(std::vector<Resource>* ra) {
    const Node* global = k.Find("generatorOptions");
    for (const char* field : {"configMapGenerator", "secretGenerator"}) {
      const Node* list = k.Find(field);
      if (list == nullptr || list->IsNull()) continue;
      if (!list->IsSeq()) return absl::InvalidArgumentError(absl::StrCat(field, " must be a list"));
      bool secret = std::string(field) == "secretGenerator";
      for (const Node& g : list->items()) {
        RETURN_IF_ERROR(Generate(g, global, secret, ra));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Generate(const Node& g, const Node* global, bool secret, std::vector<Resource>* ra) {
    std::string name = g.GetString({"name"});
    std::string ns = g.GetString({"namespace"});
    std::string behavior = g.GetString({"behavior"});
    if (behavior.empty()) behavior = "create";
    if (behavior != "create" && behavior != "merge" && behavior != "replace") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown generator behavior '", behavior, "'"));
    }
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("a ", secret ? "secret" : "configmap", " must have a name"));
    }
    std::vector<std::pair<std::string, std::string>> pairs;
    // envs first, then literals, then files (kustomize's order).
    ASSIGN_OR_RETURN(std::vector<std::string> envs, StringList(g, "envs"));
    std::string env = g.GetString({"env"});
    if (!env.empty()) envs.push_back(env);
    for (const std::string& e : envs) {
      ASSIGN_OR_RETURN(std::string content, Load(e));
      int line_no = 0;
      for (absl::string_view line : absl::StrSplit(content, '\n')) {
        if (line_no++ == 0 && absl::StartsWith(line, "\xEF\xBB\xBF")) line.remove_prefix(3);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        line = absl::StripLeadingAsciiWhitespace(line);
        if (line.empty() || line[0] == '#') continue;
        size_t eq = line.find('=');
        std::string key(line.substr(0, eq));
        std::string value = eq == absl::string_view::npos ? "" : std::string(line.substr(eq + 1));
        pairs.emplace_back(key, value);
      }
    }
    ASSIGN_OR_RETURN(std::vector<std::string> literals, StringList(g, "literals"));
    for (const std::string& lit : literals) {
      size_t eq = lit.find('=');
      if (eq == 0 || eq == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid literal source ", lit, ", expected key=value"));
      }
      std::string v = lit.substr(eq + 1);
      if (v.size() >= 2 && v.front() == v.back() && (v[0] == '"' || v[0] == '\'')) {
        v = v.substr(1, v.size() - 2);
      }
      pairs.emplace_back(lit.substr(0, eq), v);
    }
    ASSIGN_OR_RETURN(std::vector<std::string> files, StringList(g, "files"));
    for (const std::string& f : files) {
      size_t n = std::count(f.begin(), f.end(), '=');
      std::string key, path;
      if (n == 0) {
        path = f;
        key = fs::path(f).filename().string();
      } else if (n == 1 && f[0] == '=') {
        return absl::InvalidArgumentError(absl::StrCat("missing key name for file path \"",
                                                       f.substr(1), "\" in source \"", f, "\""));
      } else if (n == 1 && f.back() == '=') {
        return absl::InvalidArgumentError(absl::StrCat("missing file path for key name \"",
                                                       f.substr(0, f.size() - 1), "\" in source \"",
                                                       f, "\""));
      } else if (n > 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("source \"", f, "\" key name or file path contains '='"));
      } else {
        size_t eq = f.find('=');
        key = f.substr(0, eq);
        path = f.substr(eq + 1);
      }
      ASSIGN_OR_RETURN(std::string content, Load(path));
      pairs.emplace_back(key, content);
    }
    Node obj = Node::Map();
    obj["apiVersion"] = Node::String("v1");
    obj["kind"] = Node::String(secret ? "Secret" : "ConfigMap");
    obj["metadata"]["name"] = Node::String(name);
    if (!ns.empty()) obj["metadata"]["namespace"] = Node::String(ns);
    std::set<std::string> seen;
    Node data = Node::Map();
    Node binary = Node::Map();
    for (const auto& [key, value] : pairs) {
      if (!IsValidConfigKey(key)) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", key,
                         "\" is not a valid key name: a valid config key must consist of "
                         "alphanumeric characters, '-', '_' or '.'"));
      }
      if (!seen.insert(key).second) {
        return absl::InvalidArgumentError(absl::StrCat(secret ? "secret " : "configmap ", name,
                                                       " illegally repeats the key `", key, "`"));
      }
      if (secret) {
        data[key] = Node::String(absl::Base64Escape(value));
      } else if (IsValidUtf8(value)) {
        data[key] = Node::String(value);
      } else {
        binary[key] = Node::String(absl::Base64Escape(value));
      }
    }
    if (!data.entries().empty() || secret) obj["data"] = std::move(data);
    if (!binary.entries().empty()) obj["binaryData"] = std::move(binary);
    if (secret) {
      std::string type = g.GetString({"type"});
      obj["type"] = Node::String(type.empty() ? "Opaque" : type);
    }
    // Options: the generator's own, with generatorOptions filling the gaps.
    const Node* local = g.Find("options");
    std::map<std::string, std::string> labels =
        StringMap(global ? global->Find("labels") : nullptr);
    std::map<std::string, std::string> annotations =
        StringMap(global ? global->Find("annotations") : nullptr);
    for (const auto& [lk, lv] : StringMap(local ? local->Find("labels") : nullptr)) labels[lk] = lv;
    for (const auto& [ak, av] : StringMap(local ? local->Find("annotations") : nullptr)) {
      annotations[ak] = av;
    }
    auto flag = [&](const char* f) {
      bool v = false;
      if (global != nullptr && global->GetString({f}) == "true") v = true;
      if (local != nullptr && local->GetString({f}) == "true") v = true;
      return v;
    };
    for (const auto& [lk, lv] : labels) obj["metadata"]["labels"][lk] = Node::String(lv);
    for (const auto& [ak, av] : annotations) obj["metadata"]["annotations"][ak] = Node::String(av);
    if (flag("immutable")) obj["immutable"] = Node::Bool(true);

    Resource res;
    res.obj = std::move(obj);
    res.needs_hash = !flag("disableNameSuffixHash");
    res.behavior = behavior;

    // Merge into or replace an existing object with the same id.
    Gvk gvk = Gvk::Of(res.obj);
    int match = -1;
    for (size_t i = 0; i < ra->size(); ++i) {
      if (AnyIdMatches((*ra)[i], gvk, name, ns)) {
        if (match >= 0) {
          return absl::InvalidArgumentError(absl::StrCat("multiple matches for ", name));
        }
        match = static_cast<int>(i);
      }
    }
    if (match < 0) {
      if (behavior != "create") {
        return absl::InvalidArgumentError(
            absl::StrCat("id resid.ResId{Gvk:resid.Gvk{Group:\"\", Version:\"v1\", Kind:\"",
                         gvk.kind, "\", isClusterScoped:false}, Name:\"", name, "\", Namespace:\"",
                         ns, "\"} does not exist; cannot merge or replace"));
      }
      ra->push_back(std::move(res));
      return absl::OkStatus();
    }
    Resource& old = (*ra)[match];
    if (behavior == "create") {
      return absl::InvalidArgumentError(
          absl::StrCat("id resid.ResId{Gvk:resid.Gvk{Group:\"\", Version:\"v1\", Kind:\"", gvk.kind,
                       "\", isClusterScoped:false}, Name:\"", name, "\", Namespace:\"", ns,
                       "\"} exists; behavior must be merge or replace"));
    }
    if (behavior == "merge") {
      for (const char* f : {"data", "binaryData"}) {
        const Node* od = old.obj.Find(f);
        if (od == nullptr || !od->IsMap()) continue;
        Node merged = *od;
        const Node* nd = res.obj.Find(f);
        if (nd != nullptr) {
          for (const auto& e : nd->entries()) merged[e.first] = e.second;
        }
        res.obj[f] = std::move(merged);
      }
    }
    // Carry over metadata: old labels/annotations, new ones win.
    for (const char* f : {"labels", "annotations"}) {
      const Node* om = old.obj.FindPath({"metadata", f});
      if (om == nullptr || !om->IsMap()) continue;
      Node merged = *om;
      const Node* nm = res.obj.FindPath({"metadata", f});
      if (nm != nullptr) {
        for (const auto& e : nm->entries()) merged[e.first] = e.second;
      }
      res.obj["metadata"][f] = std::move(merged);
    }
    res.obj["metadata"]["name"] = Node::String(old.name());
    if (!old.ns().empty()) res.obj["metadata"]["namespace"] = Node::String(old.ns());
    res.prev_ids = old.prev_ids;
    res.prefixes = old.prefixes;
    res.suffixes = old.suffixes;
    if (!old.needs_hash) res.needs_hash = res.needs_hash && old.needs_hash;
    old = std::move(res);
    return absl::OkStatus();
  }

  // --- transformers --------------------------------------------------------

  absl::StatusOr<std::vector<Node>> PatchDocs(const std::string& text) const {
    return ParseYamlStream(text);
  }

  absl::Status ApplySmpToMatchingId(std::vector<Resource>* ra, const Node& patch) {
    Gvk gvk = Gvk::Of(patch);
    std::string name = patch.GetString({"metadata", "name"});
    std::string ns = patch.GetString({"metadata", "namespace"});
    std::vector<size_t> matches;
    for (size_t i = 0; i < ra->size(); ++i) {
      if (AnyIdMatches((*ra)[i], gvk, name, ns)) matches.push_back(i);
    }
    if (matches.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          matches.empty() ? "no matches for Id " : "multiple matches for Id ", gvk.kind, ".",
          gvk.version, ".", gvk.group, "/", name, ".", ns.empty() ? "[noNs]" : ns,
          "; failed to find unique target for patch ", gvk.kind, ".", gvk.version, ".", gvk.group,
          "/", name, ".", ns.empty() ? "[noNs]" : ns));
    }
    return ApplySmpAt(ra, matches, patch);
  }

  absl::Status ApplySmpAt(std::vector<Resource>* ra, const std::vector<size_t>& idx,
                          const Node& patch, bool allow_name_change = false,
                          bool allow_kind_change = false) {
    std::vector<size_t> to_delete;
    for (size_t i : idx) {
      Resource& r = (*ra)[i];
      if (allow_name_change || allow_kind_change) r.StorePreviousId();
      Node id_api = r.obj.Find("apiVersion") ? *r.obj.Find("apiVersion") : Node();
      Node id_kind = r.obj.Find("kind") ? *r.obj.Find("kind") : Node();
      std::string name = r.name();
      std::string ns = r.ns();
      bool deleted = false;
      RETURN_IF_ERROR(ApplyStrategicMerge(r.obj, patch, &deleted));
      if (deleted) {
        to_delete.push_back(i);
        continue;
      }
      RetagAfterMerge(r.obj, &patch);
      if (!allow_kind_change) {
        r.obj["apiVersion"] = id_api;
        r.obj["kind"] = id_kind;
      }
      if (!allow_name_change) r.obj["metadata"]["name"] = Node::String(name);
      if (ns.empty()) {
        r.obj["metadata"].Erase("namespace");
      } else {
        r.obj["metadata"]["namespace"] = Node::String(ns);
      }
    }
    for (auto it = to_delete.rbegin(); it != to_delete.rend(); ++it) {
      ra->erase(ra->begin() + *it);
    }
    return absl::OkStatus();
  }

  // Observed kustomize behaviour: a strategic merge walks every map of the
  // target, and the lists the patch names, and leaves the untagged scalars it
  // walks tagged as strings.
  static void RetagAfterMerge(Node& n, const Node* patch) {
    if (!n.IsMap()) return;
    for (auto& e : n.entries()) {
      Node& v = e.second;
      const Node* pv = patch != nullptr && patch->IsMap() ? patch->Find(e.first) : nullptr;
      if (v.IsMap()) {
        RetagAfterMerge(v, pv);
      } else if (v.IsSeq()) {
        if (pv == nullptr || !pv->IsSeq()) continue;
        for (Node& item : v.items()) {
          if (item.IsMap()) RetagAfterMerge(item, nullptr);
        }
      } else if (v.untagged() && !v.IsNull()) {
        uint32_t share = v.share_id();
        v = Node::String(v.scalar());
        v.set_share_id(share);
      }
    }
  }

  absl::Status PatchesStrategicMerge(std::vector<Resource>* ra) {
    ASSIGN_OR_RETURN(std::vector<std::string> entries, StringList(k, "patchesStrategicMerge"));
    for (const std::string& e : entries) {
      std::string text;
      if (e.find('\n') == std::string::npos) {
        absl::StatusOr<std::string> loaded = Load(e);
        if (loaded.ok()) {
          text = *loaded;
        } else if (e.find(':') == std::string::npos) {
          return loaded.status();
        } else {
          text = e;
        }
      } else {
        text = e;
      }
      ASSIGN_OR_RETURN(std::vector<Node> docs, PatchDocs(text));
      for (const Node& d : docs) RETURN_IF_ERROR(ApplySmpToMatchingId(ra, d));
    }
    return absl::OkStatus();
  }

  absl::Status Patches(std::vector<Resource>* ra) {
    const Node* list = k.Find("patches");
    if (list == nullptr || list->IsNull()) return absl::OkStatus();
    if (!list->IsSeq()) return absl::InvalidArgumentError("patches must be a list");
    for (const Node& p : list->items()) {
      std::string path = p.GetString({"path"});
      const Node* inline_patch = p.Find("patch");
      if (path.empty() == (inline_patch == nullptr || inline_patch->IsNull())) {
        return absl::InvalidArgumentError("unable to parse SM or JSON patch from [path: \"" + path +
                                          "\"]: must specify exactly one of path and patch");
      }
      std::string text;
      if (!path.empty()) {
        ASSIGN_OR_RETURN(text, Load(path));
      } else {
        text = inline_patch->scalar();
      }
      ASSIGN_OR_RETURN(std::vector<Node> docs, PatchDocs(text));
      const Node* target = p.Find("target");
      bool json = docs.size() == 1 && docs[0].IsSeq();
      if (json) {
        if (target == nullptr || !target->IsMap()) {
          return absl::InvalidArgumentError(
              "unable to apply patch with JSON6902 patch without target");
        }
        ASSIGN_OR_RETURN(std::vector<size_t> idx, Select(*ra, ParseSelector(*target)));
        for (size_t i : idx) {
          RETURN_IF_ERROR(Annotate(ApplyJson6902((*ra)[i].obj, docs[0]),
                                   absl::StrCat("applying JSON patch to ", (*ra)[i].name())));
          ClearShared((*ra)[i].obj);
        }
        continue;
      }
      for (const Node& d : docs) {
        if (target == nullptr || !target->IsMap()) {
          RETURN_IF_ERROR(ApplySmpToMatchingId(ra, d));
        } else {
          ASSIGN_OR_RETURN(std::vector<size_t> idx, Select(*ra, ParseSelector(*target)));
          const Node* opts = p.Find("options");
          bool allow_name = opts != nullptr && opts->GetString({"allowNameChange"}) == "true";
          bool allow_kind = opts != nullptr && opts->GetString({"allowKindChange"}) == "true";
          RETURN_IF_ERROR(ApplySmpAt(ra, idx, d, allow_name, allow_kind));
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status PatchesJson6902(std::vector<Resource>* ra) {
    const Node* list = k.Find("patchesJson6902");
    if (list == nullptr || list->IsNull()) return absl::OkStatus();
    if (!list->IsSeq()) return absl::InvalidArgumentError("patchesJson6902 must be a list");
    for (const Node& p : list->items()) {
      const Node* target = p.Find("target");
      if (target == nullptr || !target->IsMap()) {
        return absl::InvalidArgumentError("must specify a target for patch");
      }
      std::string path = p.GetString({"path"});
      std::string text;
      if (!path.empty()) {
        ASSIGN_OR_RETURN(text, Load(path));
      } else {
        text = p.GetString({"patch"});
      }
      ASSIGN_OR_RETURN(std::vector<Node> docs, PatchDocs(text));
      if (docs.size() != 1 || !docs[0].IsSeq()) {
        return absl::InvalidArgumentError("json6902 patch must be a list of operations");
      }
      ASSIGN_OR_RETURN(std::vector<size_t> idx, Select(*ra, ParseSelector(*target)));
      for (size_t i : idx) {
        RETURN_IF_ERROR(ApplyJson6902((*ra)[i].obj, docs[0]));
        ClearShared((*ra)[i].obj);
      }
    }
    return absl::OkStatus();
  }

  absl::Status Namespace(std::vector<Resource>* ra) {
    std::string ns = k.GetString({"namespace"});
    if (ns.empty()) return absl::OkStatus();
    const std::vector<FieldSpec>& specs = engine->config_.namespace_specs;
    for (Resource& r : *ra) {
      r.StorePreviousId();
      Gvk g = Gvk::Of(r.obj);
      if (!IsClusterScoped(g)) r.obj["metadata"]["namespace"] = Node::String(ns);
      if (g.kind == "RoleBinding" || g.kind == "ClusterRoleBinding") {
        Node* subjects = r.obj.Find("subjects");
        if (subjects != nullptr && subjects->IsSeq()) {
          for (Node& s : subjects->items()) {
            if (s.IsMap() && s.GetString({"name"}) == "default") s["namespace"] = Node::String(ns);
          }
        }
      }
      for (const FieldSpec& fs : specs) {
        if (!g.IsSelectedBy(fs.gvk)) continue;
        // Only the core Namespace object is renamed to the namespace.
        if (fs.path == "metadata/name" && !IsClusterScoped(g)) continue;
        RETURN_IF_ERROR(ApplyFieldSpec(r.obj, fs, Node::Kind::kString, [&](Node& n) {
          n = Node::String(ns);
          return absl::OkStatus();
        }));
      }
    }
    return absl::OkStatus();
  }

  absl::Status PrefixSuffix(std::vector<Resource>* ra) {
    std::string prefix = k.GetString({"namePrefix"});
    std::string suffix = k.GetString({"nameSuffix"});
    for (int pass = 0; pass < 2; ++pass) {
      const std::string& affix = pass == 0 ? prefix : suffix;
      if (affix.empty()) continue;
      for (Resource& r : *ra) {
        Gvk g = Gvk::Of(r.obj);
        if (g.kind == "CustomResourceDefinition" || g.kind == "Namespace" ||
            (g.kind == "APIService" && g.group == "apiregistration.k8s.io")) {
          continue;
        }
        r.StorePreviousId();
        if (pass == 0) {
          r.prefixes.push_back(affix);
          r.SetName(affix + r.name());
        } else {
          r.suffixes.push_back(affix);
          r.SetName(r.name() + affix);
        }
      }
    }
    return absl::OkStatus();
  }

  // Sets label/annotation entries at `specs`. Like kustomize, a value it
  // inserts is one node shared by every map it lands in (across resources),
  // and overwriting an existing shared value updates all its copies.
  absl::Status SetMapEntries(std::vector<Resource>* ra, const std::vector<FieldSpec>& specs,
                             const std::vector<std::pair<std::string, std::string>>& kv) {
    if (kv.empty()) return absl::OkStatus();
    std::vector<uint32_t> ids;
    for (size_t i = 0; i < kv.size(); ++i) ids.push_back(++engine->next_share_id_);
    std::unordered_map<uint32_t, std::string> updated;
    for (Resource& r : *ra) {
      Gvk g = Gvk::Of(r.obj);
      for (const FieldSpec& fs : specs) {
        if (!g.IsSelectedBy(fs.gvk)) continue;
        RETURN_IF_ERROR(ApplyFieldSpec(r.obj, fs, Node::Kind::kMap, [&](Node& n) {
          if (n.IsNull()) n = Node::Map();
          if (!n.IsMap()) {
            return absl::InvalidArgumentError(absl::StrCat(
                "wrong node kind: expected MappingNode but got ScalarNode: node contents:\n",
                n.scalar()));
          }
          for (size_t i = 0; i < kv.size(); ++i) {
            const auto& [key, value] = kv[i];
            Node* existing = n.Find(key);
            if (existing == nullptr) {
              Node v = Node::String(value);
              v.set_share_id(ids[i]);
              n.entries().emplace_back(key, std::move(v));
              continue;
            }
            uint32_t keep = existing->share_id();
            if (keep != 0) updated[keep] = value;
            *existing = Node::String(value);
            existing->set_share_id(keep);
          }
          return absl::OkStatus();
        }));
      }
    }
    if (!updated.empty()) {
      for (Resource& r : *ra) PropagateShared(r.obj, updated);
    }
    return absl::OkStatus();
  }

  // After kustomize rebuilds an object from JSON (JSON patches), no node is
  // shared and every scalar carries its resolved tag again.
  static void ClearShared(Node& n) {
    n.set_share_id(0);
    n.set_untagged(false);
    if (n.IsMap()) {
      for (auto& e : n.entries()) ClearShared(e.second);
    } else if (n.IsSeq()) {
      for (Node& item : n.items()) ClearShared(item);
    }
  }

  static void PropagateShared(Node& n, const std::unordered_map<uint32_t, std::string>& updated) {
    if (n.share_id() != 0) {
      auto it = updated.find(n.share_id());
      if (it != updated.end() && n.IsScalar()) {
        uint32_t keep = n.share_id();
        n = Node::String(it->second);
        n.set_share_id(keep);
      }
    }
    if (n.IsMap()) {
      for (auto& e : n.entries()) PropagateShared(e.second, updated);
    } else if (n.IsSeq()) {
      for (Node& item : n.items()) PropagateShared(item, updated);
    }
  }

  absl::Status Labels(std::vector<Resource>* ra) {
    const std::vector<FieldSpec>& common = engine->config_.common_labels;
    const std::vector<FieldSpec>& templates = engine->config_.template_labels;
    const Node* labels = k.Find("labels");
    if (labels != nullptr && labels->IsSeq()) {
      for (const Node& l : labels->items()) {
        std::vector<FieldSpec> specs;
        if (l.GetString({"includeSelectors"}) == "true") {
          specs = common;
        } else {
          if (l.GetString({"includeTemplates"}) == "true") specs = templates;
          FieldSpec meta;
          meta.path = "metadata/labels";
          meta.segments = {"metadata", "labels"};
          meta.create = true;
          specs.push_back(meta);
        }
        const Node* extra = l.Find("fields");
        if (extra != nullptr) {
          ASSIGN_OR_RETURN(std::vector<FieldSpec> more, ParseFieldSpecs(*extra));
          specs.insert(specs.end(), more.begin(), more.end());
        }
        ASSIGN_OR_RETURN(auto pairs, StrictPairs(l.Find("pairs"), "Label.labels.pairs"));
        RETURN_IF_ERROR(SetMapEntries(ra, specs, pairs));
      }
    }
    ASSIGN_OR_RETURN(auto pairs, StrictPairs(k.Find("commonLabels"), "Kustomization.commonLabels"));
    return SetMapEntries(ra, common, pairs);
  }

  absl::Status Annotations(std::vector<Resource>* ra) {
    const std::vector<FieldSpec>& specs = engine->config_.common_annotations;
    ASSIGN_OR_RETURN(auto pairs,
                     StrictPairs(k.Find("commonAnnotations"), "Kustomization.commonAnnotations"));
    return SetMapEntries(ra, specs, pairs);
  }

  absl::Status Replicas(std::vector<Resource>* ra) {
    const Node* list = k.Find("replicas");
    if (list == nullptr || list->IsNull()) return absl::OkStatus();
    const std::vector<FieldSpec>& specs = engine->config_.replicas;
    for (const Node& rep : list->items()) {
      std::string name = rep.GetString({"name"});
      const Node* count = rep.Find("count");
      if (count == nullptr || count->kind() != Node::Kind::kInt) {
        return absl::InvalidArgumentError(
            absl::StrCat("replicas count for ", name, " must be an integer"));
      }
      bool found = false;
      for (const FieldSpec& fs : specs) {
        for (Resource& r : *ra) {
          Gvk g = Gvk::Of(r.obj);
          if (!g.IsSelectedBy(fs.gvk)) continue;
          bool match = r.name() == name;
          for (const auto& id : r.prev_ids) match = match || id.first == name;
          if (!match) continue;
          found = true;
          RETURN_IF_ERROR(ApplyFieldSpec(r.obj, fs, Node::Kind::kString, [&](Node& n) {
            n = *count;
            return absl::OkStatus();
          }));
        }
      }
      if (!found) {
        return absl::InvalidArgumentError(absl::StrCat(
            "resource with name ", name, " does not match a config with the following GVK ",
            "[~G_~V_Deployment ~G_~V_ReplicationController ~G_~V_ReplicaSet ~G_~V_StatefulSet]"));
      }
    }
    return absl::OkStatus();
  }

  struct ImageRule {
    std::string name, new_name, new_tag, digest;
  };

  static bool ImageMatches(const std::string& s, const std::string& name) {
    if (s.compare(0, name.size(), name) != 0) return false;
    size_t i = name.size();
    if (s.compare(i, 7, "@sha256") == 0) i += 7;
    if (i == s.size()) return true;
    if (s[i] != ':') return false;
    for (++i; i < s.size(); ++i) {
      char c = s[i];
      if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '{' ||
            c == '}' || c == '-')) {
        return false;
      }
    }
    return true;
  }

  static std::string UpdateImage(const std::string& value, const ImageRule& rule) {
    std::string name, tag, digest;
    size_t slash = value.find('/');
    size_t base = slash != std::string::npos && slash > 0 ? slash : 0;
    std::string search = value.substr(base);
    size_t id = search.find('@');
    size_t ic = search.find(':');
    if (ic == std::string::npos && id == std::string::npos) {
      name = value;
    } else if (id != std::string::npos && (ic == std::string::npos || id < ic)) {
      name = value.substr(0, id + base);
      digest = value.substr(id + base + 1);
    } else if (id != std::string::npos && ic != std::string::npos) {
      name = value.substr(0, ic + base);
      tag = value.substr(ic + base + 1, id - ic - 1);
      digest = value.substr(id + base + 1);
    } else {
      name = value.substr(0, ic + base);
      tag = value.substr(ic + base + 1);
    }
    if (!rule.new_name.empty()) name = rule.new_name;
    if (!rule.new_tag.empty() && !rule.digest.empty()) {
      tag = rule.new_tag;
      digest = rule.digest;
    } else if (!rule.new_tag.empty()) {
      tag = rule.new_tag;
      digest.clear();
    } else if (!rule.digest.empty()) {
      tag.clear();
      digest = rule.digest;
    }
    if (!tag.empty()) name += ":" + tag;
    if (!digest.empty()) name += "@" + digest;
    return name;
  }

  static void UpdateImagesIn(Node& n, const ImageRule& rule) {
    if (n.IsMap()) {
      for (const char* f : {"containers", "initContainers"}) {
        Node* list = n.Find(f);
        if (list == nullptr || !list->IsSeq()) continue;
        for (Node& c : list->items()) {
          Node* image = c.Find("image");
          if (image == nullptr || !image->IsScalar() || image->IsNull()) continue;
          if (ImageMatches(image->scalar(), rule.name)) {
            *image = Node::String(UpdateImage(image->scalar(), rule));
            // kustomize's image setter leaves the node without a tag, so a
            // later replacement re-reads the text's type.
            image->set_untagged(true);
          }
        }
      }
      for (auto& e : n.entries()) UpdateImagesIn(e.second, rule);
    } else if (n.IsSeq()) {
      for (Node& item : n.items()) UpdateImagesIn(item, rule);
    }
  }

  absl::Status Images(std::vector<Resource>* ra) {
    const Node* list = k.Find("images");
    if (list == nullptr || list->IsNull()) return absl::OkStatus();
    if (!list->IsSeq()) return absl::InvalidArgumentError("images must be a list");
    for (const Node& img : list->items()) {
      ImageRule rule{img.GetString({"name"}), img.GetString({"newName"}), img.GetString({"newTag"}),
                     img.GetString({"digest"})};
      if (rule.name.empty()) continue;
      for (Resource& r : *ra) {
        UpdateImagesIn(r.obj, rule);
        Gvk g = Gvk::Of(r.obj);
        for (const FieldSpec& fs : engine->config_.images) {
          if (!g.IsSelectedBy(fs.gvk)) continue;
          RETURN_IF_ERROR(ApplyFieldSpec(r.obj, fs, Node::Kind::kString, [&](Node& n) {
            if (n.IsScalar() && !n.IsNull() && ImageMatches(n.scalar(), rule.name)) {
              n = Node::String(UpdateImage(n.scalar(), rule));
              n.set_untagged(true);
            }
            return absl::OkStatus();
          }));
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status Transform(std::vector<Resource>* ra) {
    RETURN_IF_ERROR(PatchesStrategicMerge(ra));
    RETURN_IF_ERROR(Patches(ra));
    RETURN_IF_ERROR(Namespace(ra));
    RETURN_IF_ERROR(PrefixSuffix(ra));
    RETURN_IF_ERROR(Labels(ra));
    RETURN_IF_ERROR(Annotations(ra));
    RETURN_IF_ERROR(PatchesJson6902(ra));
    RETURN_IF_ERROR(Replicas(ra));
    RETURN_IF_ERROR(Images(ra));
    RETURN_IF_ERROR(Replacements(ra));
    return absl::OkStatus();
  }

  absl::Status Replacements(std::vector<Resource>* ra) {
    const Node* list = k.Find("replacements");
    if (list == nullptr || list->IsNull()) return absl::OkStatus();
    if (!list->IsSeq()) return absl::InvalidArgumentError("replacements must be a list");
    std::vector<Node> all;
    for (const Node& r : list->items()) {
      std::string path = r.GetString({"path"});
      if (path.empty()) {
        all.push_back(r);
        continue;
      }
      if (r.Find("source") != nullptr || r.Find("targets") != nullptr) {
        return absl::InvalidArgumentError("cannot specify both path and inline replacement");
      }
      ASSIGN_OR_RETURN(std::string text, Load(path));
      ASSIGN_OR_RETURN(Node doc, ParseYamlDocument(text));
      if (doc.IsSeq()) {
        for (const Node& item : doc.items()) all.push_back(item);
      } else if (doc.IsMap()) {
        all.push_back(doc);
      } else {
        return absl::InvalidArgumentError(
            "unsupported replacement type encountered within replacement path");
      }
    }
    return ApplyReplacements(ra, all);
  }
};

// --- name references ---------------------------------------------------------

namespace {

using NameRefRule = TransformerConfig::NameRefRule;

std::vector<NameRefRule> ParseNameRefRules(const Node& list) {
  std::vector<NameRefRule> out;
  if (!list.IsSeq()) return out;
  for (const Node& item : list.items()) {
    NameRefRule rule;
    rule.referral.group = item.GetString({"group"});
    rule.referral.version = item.GetString({"version"});
    rule.referral.kind = item.GetString({"kind"});
    const Node* specs = item.Find("fieldSpecs");
    if (specs != nullptr) {
      absl::StatusOr<std::vector<FieldSpec>> parsed = ParseFieldSpecs(*specs);
      if (parsed.ok()) rule.specs = *parsed;
    }
    for (FieldSpec& fs : rule.specs) fs.create = false;
    out.push_back(std::move(rule));
  }
  return out;
}

bool SameEndingSubSlice(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const auto& shortest = a.size() <= b.size() ? a : b;
  const auto& longest = a.size() <= b.size() ? b : a;
  if (shortest.empty()) return true;
  return std::equal(shortest.begin(), shortest.end(), longest.end() - shortest.size());
}

bool AffixesEqual(const Resource& r, const Resource& o, bool allow_empty) {
  if (allow_empty) {
    bool pe = r.prefixes.empty() || o.prefixes.empty();
    bool se = r.suffixes.empty() || o.suffixes.empty();
    return (pe || SameEndingSubSlice(r.prefixes, o.prefixes)) &&
           (se || SameEndingSubSlice(r.suffixes, o.suffixes));
  }
  return SameEndingSubSlice(r.prefixes, o.prefixes) && SameEndingSubSlice(r.suffixes, o.suffixes);
}

class NameRefFixer {
 public:
  NameRefFixer(std::vector<Resource>* ra, const std::vector<NameRefRule>& rules)
      : ra_(ra), rules_(rules) {}

  absl::Status Run() {
    for (const NameRefRule& rule : rules_) {
      // Candidates: resources of the referral kind that were renamed.
      std::unordered_map<std::string, std::vector<size_t>> by_prev_name;
      for (size_t i = 0; i < ra_->size(); ++i) {
        const Resource& r = (*ra_)[i];
        if (r.prev_ids.empty()) continue;
        if (!Gvk::Of(r.obj).IsSelectedBy(rule.referral)) continue;
        std::set<std::string> names;
        for (const auto& id : r.prev_ids) names.insert(id.first);
        for (const std::string& n : names) by_prev_name[n].push_back(i);
      }
      if (by_prev_name.empty()) continue;
      for (size_t ri = 0; ri < ra_->size(); ++ri) {
        Resource& referrer = (*ra_)[ri];
        Gvk g = Gvk::Of(referrer.obj);
        for (const FieldSpec& fs : rule.specs) {
          if (!g.IsSelectedBy(fs.gvk)) continue;
          RETURN_IF_ERROR(ApplyFieldSpec(referrer.obj, fs, Node::Kind::kString, [&](Node& n) {
            return Set(n, referrer, fs, by_prev_name, /*in_seq=*/false);
          }));
        }
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<int> SelectReferral(const std::string& old_name, const Resource& referrer,
                                     const FieldSpec& fs, const std::vector<size_t>& pool) {
    std::vector<size_t> c;
    bool role_ref = absl::EndsWith(fs.path, "roleRef/name");
    std::string role_kind = role_ref ? referrer.obj.GetString({"roleRef", "kind"}) : "";
    bool referrer_cluster = IsClusterScoped(Gvk::Of(referrer.obj));
    for (size_t i : pool) {
      const Resource& r = (*ra_)[i];
      if (role_ref && !role_kind.empty() && r.kind() != role_kind) continue;
      if (!referrer_cluster) {
        Gvk g = Gvk::Of(r.obj);
        if (!IsClusterScoped(g) && g.kind != "ServiceAccount" &&
            EffectiveNs(r) != EffectiveNs(referrer)) {
          continue;
        }
      }
      c.push_back(i);
    }
    (void)old_name;
    if (c.size() == 1) return static_cast<int>(c[0]);
    std::vector<size_t> d;
    for (size_t i : c) {
      if (AffixesEqual((*ra_)[i], referrer, true)) d.push_back(i);
    }
    if (d.size() > 1) {
      std::vector<size_t> e;
      for (size_t i : d) {
        if (AffixesEqual((*ra_)[i], referrer, false)) e.push_back(i);
      }
      d = e;
    }
    if (d.size() == 1) return static_cast<int>(d[0]);
    if (d.empty()) return -1;
    std::string n0 = (*ra_)[d[0]].name();
    for (size_t i : d) {
      if ((*ra_)[i].name() != n0) {
        return absl::InvalidArgumentError(
            absl::StrCat("found multiple possible referrals for ", old_name));
      }
    }
    return static_cast<int>(d[0]);
  }

  absl::Status Set(Node& n, const Resource& referrer, const FieldSpec& fs,
                   const std::unordered_map<std::string, std::vector<size_t>>& by_prev_name,
                   bool in_seq) {
    if (n.IsSeq()) {
      for (Node& item : n.items()) RETURN_IF_ERROR(Set(item, referrer, fs, by_prev_name, true));
      return absl::OkStatus();
    }
    if (n.IsMap()) {
      Node* name = n.Find("name");
      if (name == nullptr) return absl::OkStatus();
      auto it = by_prev_name.find(name->scalar());
      if (it == by_prev_name.end()) return absl::OkStatus();
      std::vector<size_t> pool = it->second;
      const Node* nsn = n.Find("namespace");
      if (nsn != nullptr && !nsn->IsNull()) {
        std::string want = nsn->scalar();
        std::vector<size_t> by_orig, by_cur;
        auto eff = [](const std::string& ns) { return ns.empty() ? std::string("default") : ns; };
        for (size_t i : pool) {
          if (eff(OrigNs((*ra_)[i])) == eff(want)) by_orig.push_back(i);
          if (eff((*ra_)[i].ns()) == eff(want)) by_cur.push_back(i);
        }
        pool = !by_orig.empty() ? by_orig : by_cur;
      }
      ASSIGN_OR_RETURN(int sel, SelectReferral(name->scalar(), referrer, fs, pool));
      if (sel < 0) return absl::OkStatus();
      const Resource& r = (*ra_)[sel];
      if (r.name() == name->scalar() && r.ns().empty()) return absl::OkStatus();
      *name = Node::String(r.name());
      if (!r.ns().empty()) n["namespace"] = Node::String(r.ns());
      return absl::OkStatus();
    }
    if (!n.IsScalar() || n.IsNull()) return absl::OkStatus();
    auto it = by_prev_name.find(n.scalar());
    if (it == by_prev_name.end()) return absl::OkStatus();
    ASSIGN_OR_RETURN(int sel, SelectReferral(n.scalar(), referrer, fs, it->second));
    if (sel >= 0) n = Node::String((*ra_)[sel].name());
    (void)in_seq;
    return absl::OkStatus();
  }

  std::vector<Resource>* ra_;
  const std::vector<NameRefRule>& rules_;
};

// Kustomize's default ("legacy") order.
void LegacySort(std::vector<Resource>* ra, const std::vector<std::string>& first,
                const std::vector<std::string>& last) {
  std::unordered_map<std::string, int> order;
  for (size_t i = 0; i < first.size(); ++i) order[first[i]] = -static_cast<int>(first.size()) + i;
  for (size_t i = 0; i < last.size(); ++i) order[last[i]] = 1 + i;
  struct Key {
    int rank;
    Gvk gvk;
    std::string gvk_sort;
    std::string id_sort;
  };
  auto gvk_sort = [](const Gvk& g) {
    return absl::StrCat(g.group.empty() ? "~G" : g.group, "_", g.version.empty() ? "~V" : g.version,
                        "_", g.kind.empty() ? "~K" : g.kind);
  };
  std::vector<std::pair<Key, size_t>> keys;
  for (size_t i = 0; i < ra->size(); ++i) {
    const Resource& r = (*ra)[i];
    Key k;
    k.gvk = Gvk::Of(r.obj);
    auto it = order.find(k.gvk.kind);
    k.rank = it == order.end() ? 0 : it->second;
    k.gvk_sort = gvk_sort(k.gvk);
    std::string ns = r.ns();
    std::string name = r.name();
    k.id_sort = absl::StrCat(k.gvk.kind.empty() ? "~K" : k.gvk.kind, "_",
                             k.gvk.version.empty() ? "~V" : k.gvk.version, "_",
                             k.gvk.group.empty() ? "~G" : k.gvk.group, "|", ns.empty() ? "~X" : ns,
                             "|", name.empty() ? "~N" : name);
    keys.emplace_back(std::move(k), i);
  }
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    const Key& x = a.first;
    const Key& y = b.first;
    if (!(x.gvk == y.gvk)) {
      if (x.rank != y.rank) return x.rank < y.rank;
      if (x.gvk.kind == "Namespace" && y.gvk.kind == "Namespace" &&
          (x.gvk.group.empty() || y.gvk.group.empty())) {
        return x.gvk_sort > y.gvk_sort;
      }
      return x.gvk_sort < y.gvk_sort;
    }
    return x.id_sort < y.id_sort;
  });
  std::vector<Resource> sorted;
  sorted.reserve(ra->size());
  for (auto& [k, i] : keys) sorted.push_back(std::move((*ra)[i]));
  *ra = std::move(sorted);
}

const std::vector<std::string> kDefaultOrderFirst = {"Namespace",
                                                     "ResourceQuota",
                                                     "StorageClass",
                                                     "CustomResourceDefinition",
                                                     "ServiceAccount",
                                                     "PodSecurityPolicy",
                                                     "Role",
                                                     "ClusterRole",
                                                     "RoleBinding",
                                                     "ClusterRoleBinding",
                                                     "ConfigMap",
                                                     "Secret",
                                                     "Endpoints",
                                                     "Service",
                                                     "LimitRange",
                                                     "PriorityClass",
                                                     "PersistentVolume",
                                                     "PersistentVolumeClaim",
                                                     "Deployment",
                                                     "StatefulSet",
                                                     "CronJob",
                                                     "PodDisruptionBudget"};
const std::vector<std::string> kDefaultOrderLast = {"MutatingWebhookConfiguration",
                                                    "ValidatingWebhookConfiguration"};

absl::Status AppendResource(std::vector<Resource>* ra, std::unordered_set<std::string>* ids,
                            Resource r) {
  std::string id = IdString(r);
  if (!ids->insert(id).second) {
    Gvk g = Gvk::Of(r.obj);
    return absl::InvalidArgumentError(
        absl::StrCat("may not add resource with an already registered id: ", g.kind, ".", g.version,
                     ".", g.group, "/", r.name(), ".", r.ns().empty() ? "[noNs]" : r.ns()));
  }
  ra->push_back(std::move(r));
  return absl::OkStatus();
}

absl::Status AddObject(Node obj, const std::string& file, std::vector<Resource>* out) {
  if (!obj.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat("missing Resource metadata in ", file));
  }
  std::string kind = obj.GetString({"kind"});
  const Node* items = obj.Find("items");
  if (absl::EndsWith(kind, "List") && items != nullptr && (items->IsSeq() || items->IsNull())) {
    if (items->IsSeq()) {
      for (const Node& item : items->items()) RETURN_IF_ERROR(AddObject(item, file, out));
    }
    return absl::OkStatus();
  }
  if (kind.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("missing kind in object in ", file));
  }
  if (obj.GetString({"metadata", "name"}).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing metadata.name in object ", kind, " in ", file));
  }
  Resource r;
  r.obj = std::move(obj);
  out->push_back(std::move(r));
  return absl::OkStatus();
}

}  // namespace

const TransformerConfig& TransformerConfig::Builtin() {
  static const TransformerConfig* config = [] {
    auto* c = new TransformerConfig();
    c->common_labels = BuiltinSpecs(kCommonLabelsSpecs);
    c->template_labels = BuiltinSpecs(kTemplateLabelsSpecs);
    c->common_annotations = BuiltinSpecs(kCommonAnnotationsSpecs);
    c->namespace_specs = BuiltinSpecs(kNamespaceSpecs);
    c->replicas = BuiltinSpecs(kReplicasSpecs);
    c->var_reference = BuiltinSpecs(kVarReferenceSpecs);
    absl::StatusOr<Node> doc = ParseYamlDocument(kNameReferenceSpecs);
    if (doc.ok() && doc->Find("nameReference") != nullptr) {
      c->name_reference = ParseNameRefRules(*doc->Find("nameReference"));
    }
    return c;
  }();
  return *config;
}

namespace {

void MergeSpecs(std::vector<FieldSpec>* into, const std::vector<FieldSpec>& more) {
  for (const FieldSpec& fs : more) {
    bool dup = false;
    for (const FieldSpec& e : *into) dup = dup || (e.gvk == fs.gvk && e.path == fs.path);
    if (!dup) into->push_back(fs);
  }
}

}  // namespace

absl::Status TransformerConfig::Merge(const Node& doc) {
  if (doc.IsNull()) return absl::OkStatus();
  if (!doc.IsMap()) return absl::InvalidArgumentError("transformer configuration must be a map");
  for (const auto& e : doc.entries()) {
    const std::string& key = e.first;
    if (key == "nameReference") {
      for (NameRefRule& rule : ParseNameRefRules(e.second)) {
        bool merged = false;
        for (NameRefRule& existing : name_reference) {
          if (existing.referral == rule.referral) {
            MergeSpecs(&existing.specs, rule.specs);
            merged = true;
          }
        }
        if (!merged) name_reference.push_back(std::move(rule));
      }
      continue;
    }
    ASSIGN_OR_RETURN(std::vector<FieldSpec> specs, ParseFieldSpecs(e.second));
    if (key == "commonLabels") {
      MergeSpecs(&common_labels, specs);
    } else if (key == "templateLabels") {
      MergeSpecs(&template_labels, specs);
    } else if (key == "commonAnnotations") {
      MergeSpecs(&common_annotations, specs);
    } else if (key == "namespace") {
      MergeSpecs(&namespace_specs, specs);
    } else if (key == "images") {
      MergeSpecs(&images, specs);
    } else if (key == "replicas") {
      MergeSpecs(&replicas, specs);
    } else if (key == "varReference") {
      MergeSpecs(&var_reference, specs);
    } else if (key == "namePrefix" || key == "nameSuffix") {
      // metadata/name is the only name field kustomize renames.
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown field \"", key, "\" in transformer configuration"));
    }
  }
  return absl::OkStatus();
}

Engine::Engine(std::string root) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(root, ec), ec);
  root_ = p.lexically_normal().string();
  if (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

absl::StatusOr<std::string> Engine::Confine(const std::string& path) const {
  std::error_code ec;
  fs::path canon = fs::weakly_canonical(fs::path(path), ec);
  std::string c = ec ? fs::path(path).lexically_normal().string() : canon.string();
  if (c.size() > 1 && c.back() == '/') c.pop_back();
  if (!IsUnder(c, root_)) {
    return absl::InvalidArgumentError(
        absl::StrCat("security; file '", path, "' is not in or below '", root_, "'"));
  }
  return c;
}

absl::StatusOr<std::string> Engine::ReadFile(const std::string& path) const {
  ASSIGN_OR_RETURN(std::string p, Confine(path));
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is a directory"));
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("open ", path, ": no such file or directory"));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status Engine::Accumulate(const std::string& dir, const Node* override_k, bool component,
                                std::vector<Resource>* ra, int depth) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("kustomization nesting too deep at '", dir, "'"));
  }
  Target t;
  t.engine = this;
  ASSIGN_OR_RETURN(t.dir, Confine(dir));
  if (override_k != nullptr) {
    t.k = *override_k;
  } else {
    std::vector<std::string> found;
    for (const char* name : kKustomizationFiles) {
      std::error_code ec;
      if (fs::is_regular_file(fs::path(t.dir) / name, ec)) found.push_back(name);
    }
    if (found.size() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("Found multiple kustomization files under: ", t.dir));
    }
    if (found.empty()) {
      return absl::NotFoundError(absl::StrCat(
          "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' "
          "in directory '",
          t.dir, "'"));
    }
    std::string file = (fs::path(t.dir) / found[0]).string();
    ASSIGN_OR_RETURN(std::string text, ReadFile(file));
    absl::StatusOr<Node> k = ParseYamlDocument(text);
    if (!k.ok()) return Annotate(k.status(), absl::StrCat("invalid Kustomization ", file));
    t.k = std::move(*k);
    if (t.k.IsNull()) t.k = Node::Map();
    if (!t.k.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid Kustomization ", file, ": not a map"));
    }
  }
  for (const auto& e : t.k.entries()) {
    if (!KnownKustomizationFields().count(e.first)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid Kustomization: json: unknown field \"", e.first, "\" (in ", t.dir, ")"));
    }
  }
  std::string kind = t.k.GetString({"kind"});
  std::string api_version = t.k.GetString({"apiVersion"});
  if (!kind.empty() && kind != "Kustomization" && kind != "Component") {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid Kustomization: kind should be Kustomization or Component (in ", t.dir, ")"));
  }
  if (!api_version.empty()) {
    std::string want = kind == "Component" ? "kustomize.config.k8s.io/v1alpha1"
                                           : "kustomize.config.k8s.io/v1beta1";
    if (api_version != want) {
      return absl::InvalidArgumentError(absl::StrCat("invalid Kustomization: apiVersion for ",
                                                     kind.empty() ? "Kustomization" : kind,
                                                     " should be ", want, " (in ", t.dir, ")"));
    }
  }
  if (override_k == nullptr) {
    bool empty = true;
    for (const auto& e : t.k.entries()) {
      if (e.first != "apiVersion" && e.first != "kind") empty = false;
    }
    if (empty) return absl::InvalidArgumentError("kustomization.yaml is empty");
  }
  if (component && kind != "Component") {
    return absl::InvalidArgumentError(
        absl::StrCat("expected kind 'Component' for path '", t.dir, "' but got '", kind, "'"));
  }
  if (!component && kind == "Component") {
    return absl::InvalidArgumentError(
        absl::StrCat("expected kind != 'Component' for path '", t.dir, "'"));
  }
  for (const char* unsupported : {"helmCharts", "helmChartInflationGenerator", "generators",
                                  "transformers", "validators", "openapi"}) {
    const Node* n = t.k.Find(unsupported);
    if (n != nullptr && !n->IsNull() && !(n->IsSeq() && n->items().empty())) {
      return absl::UnimplementedError(absl::StrCat("kustomization field '", unsupported,
                                                   "' is not supported by this engine (in ", t.dir,
                                                   ")"));
    }
  }

  // Resources (and the legacy `bases`).
  // Legacy `imageTags` are `images`.
  if (const Node* tags = t.k.Find("imageTags"); tags != nullptr && tags->IsSeq()) {
    std::vector<Node> copied = tags->items();  // t.k["images"] may move *tags
    Node& images = t.k["images"];
    if (!images.IsSeq()) images = Node::Seq();
    for (Node& tag : copied) images.items().push_back(std::move(tag));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> resources, StringList(t.k, "resources"));
  ASSIGN_OR_RETURN(std::vector<std::string> bases, StringList(t.k, "bases"));
  resources.insert(resources.end(), bases.begin(), bases.end());
  std::unordered_set<std::string> ids;
  for (const Resource& r : *ra) ids.insert(IdString(r));
  for (const std::string& entry : resources) {
    if (LooksRemote(entry)) {
      return absl::UnimplementedError(
          absl::StrCat("accumulating resources: remote resource '", entry, "' is not supported"));
    }
    std::string p = JoinPath(t.dir, entry);
    absl::StatusOr<std::string> confined = Confine(p);
    if (!confined.ok()) {
      return Annotate(confined.status(), "accumulating resources");
    }
    std::error_code ec;
    if (fs::is_directory(*confined, ec)) {
      std::vector<Resource> sub;
      RETURN_IF_ERROR(Annotate(Accumulate(*confined, nullptr, false, &sub, depth + 1),
                               absl::StrCat("accumulating resources from '", entry, "'")));
      for (Resource& r : sub) {
        RETURN_IF_ERROR(Annotate(AppendResource(ra, &ids, std::move(r)),
                                 absl::StrCat("accumulating resources from '", entry, "'")));
      }
      continue;
    }
    if (restrict_files_ && !IsUnder(*confined, t.dir)) {
      return absl::InvalidArgumentError(absl::StrCat("accumulating resources: security; file '",
                                                     *confined, "' is not in or below '", t.dir,
                                                     "'"));
    }
    absl::StatusOr<std::string> text = ReadFile(*confined);
    if (!text.ok()) {
      return Annotate(text.status(), absl::StrCat("accumulating resources from '", entry, "'"));
    }
    absl::StatusOr<std::vector<Node>> docs = ParseYamlStream(*text);
    if (!docs.ok()) {
      return Annotate(docs.status(), absl::StrCat("accumulating resources from '", entry, "'"));
    }
    std::vector<Resource> loaded;
    for (Node& d : *docs) RETURN_IF_ERROR(AddObject(std::move(d), entry, &loaded));
    for (Resource& r : loaded) {
      RETURN_IF_ERROR(Annotate(AppendResource(ra, &ids, std::move(r)),
                               absl::StrCat("accumulating resources from '", entry, "'")));
    }
  }
  ASSIGN_OR_RETURN(std::vector<std::string> crds, StringList(t.k, "crds"));
  for (const std::string& crd : crds) {
    RETURN_IF_ERROR(t.Load(crd).status());
  }
  ASSIGN_OR_RETURN(std::vector<std::string> configurations, StringList(t.k, "configurations"));
  for (const std::string& c : configurations) {
    ASSIGN_OR_RETURN(std::string text, t.Load(c));
    ASSIGN_OR_RETURN(Node doc, ParseYamlDocument(text));
    RETURN_IF_ERROR(Annotate(config_.Merge(doc), absl::StrCat("loading configuration ", c)));
  }
  RETURN_IF_ERROR(t.Generators(ra));
  ASSIGN_OR_RETURN(std::vector<std::string> components, StringList(t.k, "components"));
  for (const std::string& c : components) {
    if (LooksRemote(c)) {
      return absl::UnimplementedError(
          absl::StrCat("accumulating components: remote component '", c, "' is not supported"));
    }
    RETURN_IF_ERROR(Annotate(Accumulate(JoinPath(t.dir, c), nullptr, true, ra, depth + 1),
                             "accumulating components"));
  }
  RETURN_IF_ERROR(t.Transform(ra));
  if (const Node* vars = t.k.Find("vars"); vars != nullptr && !vars->IsNull()) {
    RETURN_IF_ERROR(Annotate(MergeVars(*vars, ra), absl::StrCat("merging vars of ", t.dir)));
  }
  return absl::OkStatus();
}

namespace {

Gvk VarGvk(const Node& objref) {
  Gvk g;
  std::string api = objref.GetString({"apiVersion"});
  if (api.empty()) {
    g.group = objref.GetString({"group"});
    g.version = objref.GetString({"version"});
  } else if (size_t slash = api.find('/'); slash != std::string::npos) {
    g.group = api.substr(0, slash);
    g.version = api.substr(slash + 1);
  } else {
    g.version = api;
  }
  g.kind = objref.GetString({"kind"});
  return g;
}

// kustomize's GetFieldValue: dotted path, `name[i]` indexes, `[k=v]` matchers.
const Node* LookupFieldPath(const Node& root, const std::string& path) {
  const Node* n = &root;
  for (absl::string_view part_view : absl::StrSplit(path, '.')) {
    std::string part(part_view);
    int index = -1;
    size_t br = part.find('[');
    if (br != std::string::npos && br > 0 && part.back() == ']') {
      if (!absl::SimpleAtoi(part.substr(br + 1, part.size() - br - 2), &index)) return nullptr;
      part = part.substr(0, br);
    }
    if (n->IsSeq() && part.size() > 2 && part.front() == '[' && part.back() == ']') {
      std::string inner = part.substr(1, part.size() - 2);
      size_t eq = inner.find('=');
      const Node* next = nullptr;
      for (const Node& item : n->items()) {
        if (eq != std::string::npos &&
            item.GetString({inner.substr(0, eq)}) == inner.substr(eq + 1)) {
          next = &item;
          break;
        }
      }
      n = next;
    } else {
      n = n->Find(part);
    }
    if (n == nullptr) return nullptr;
    if (index >= 0) {
      if (!n->IsSeq() || index >= static_cast<int>(n->items().size())) return nullptr;
      n = &n->items()[index];
    }
  }
  return n;
}

// $(VAR) expansion as kustomize's refvar does: unknown names stay, `$$`
// escapes, a string that is exactly one reference takes the value's type.
Node ExpandVars(const std::string& input, const std::map<std::string, Node>& values,
                std::set<std::string>* used) {
  std::string buf;
  size_t checkpoint = 0;
  for (size_t cursor = 0; cursor < input.size(); ++cursor) {
    if (input[cursor] != '$' || cursor + 1 >= input.size()) continue;
    buf += input.substr(checkpoint, cursor - checkpoint);
    std::string rest = input.substr(cursor + 1);
    std::string read;
    bool is_var = false;
    size_t advance = 1;
    if (rest[0] == '$') {
      read = "$";
    } else if (rest[0] == '(') {
      size_t close = rest.find(')');
      if (close != std::string::npos) {
        read = rest.substr(1, close - 1);
        is_var = true;
        advance = close + 1;
      } else {
        read = "$(";
      }
    } else {
      read = std::string("$") + rest[0];
    }
    if (is_var) {
      auto it = values.find(read);
      if (it == values.end()) {
        if (input == "$(" + read + ")") return Node::String(input);
        buf += "$(" + read + ")";
      } else {
        used->insert(read);
        if (input == "$(" + read + ")") return it->second;
        buf += it->second.IsString() ? it->second.scalar() : CanonicalScalar(it->second);
      }
    } else {
      buf += read;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  if (checkpoint < input.size()) buf += input.substr(checkpoint);
  return Node::String(buf);
}

void ExpandInNode(Node& n, const std::map<std::string, Node>& values, std::set<std::string>* used) {
  if (n.IsString()) {
    if (n.scalar().find('$') != std::string::npos) n = ExpandVars(n.scalar(), values, used);
  } else if (n.IsSeq()) {
    for (Node& item : n.items()) {
      if (item.IsString() && item.scalar().find('$') != std::string::npos) {
        item = ExpandVars(item.scalar(), values, used);
      }
    }
  } else if (n.IsMap()) {
    for (auto& e : n.entries()) {
      if (e.second.IsString() && e.second.scalar().find('$') != std::string::npos) {
        e.second = ExpandVars(e.second.scalar(), values, used);
      }
    }
  }
}

}  // namespace

absl::Status Engine::MergeVars(const Node& vars, std::vector<Resource>* ra) {
  if (!vars.IsSeq()) return absl::InvalidArgumentError("vars must be a list");
  for (const Node& v : vars.items()) {
    std::string name = v.GetString({"name"});
    const Node* objref = v.Find("objref");
    if (name.empty() || objref == nullptr) {
      return absl::InvalidArgumentError("var must have a name and an objref");
    }
    Gvk gvk = VarGvk(*objref);
    std::string ref_name = objref->GetString({"name"});
    std::string ref_ns = objref->GetString({"namespace"});
    bool with_ns = !ref_ns.empty() || IsClusterScoped(gvk);
    std::vector<Resource*> matched;
    for (Resource& r : *ra) {
      if (!(Gvk::Of(r.obj) == gvk)) continue;
      auto ns_eq = [](const std::string& a, const std::string& b) {
        return (a.empty() ? "default" : a) == (b.empty() ? "default" : b);
      };
      bool m = r.name() == ref_name && (!with_ns || ns_eq(r.ns(), ref_ns));
      for (const auto& id : r.prev_ids) {
        m = m || (id.first == ref_name && (!with_ns || ns_eq(id.second, ref_ns)));
      }
      if (m) matched.push_back(&r);
    }
    if (matched.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "found ", matched.size(), " resId matches for var ", name, " (unable to disambiguate)"));
    }
    if (matched.size() == 1) matched[0]->ref_var_names.push_back(name);
    for (const Node& existing : vars_) {
      if (existing.GetString({"name"}) == name) {
        return absl::InvalidArgumentError(absl::StrCat("var '", name, "' already encountered"));
      }
    }
    vars_.push_back(v);
  }
  return absl::OkStatus();
}

absl::Status Engine::ResolveVars(std::vector<Resource>* ra) {
  if (vars_.empty()) return absl::OkStatus();
  std::map<std::string, Node> values;
  for (const Node& v : vars_) {
    std::string name = v.GetString({"name"});
    std::string path = v.GetString({"fieldref", "fieldpath"});
    if (path.empty()) path = "metadata.name";
    const Resource* owner = nullptr;
    for (const Resource& r : *ra) {
      for (const std::string& n : r.ref_var_names) {
        if (n == name && owner == nullptr) owner = &r;
      }
    }
    if (owner == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "var '", name, "' cannot be mapped to a field in the set of known resources"));
    }
    const Node* value = LookupFieldPath(owner->obj, path);
    if (value == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("field specified in var '", name, "' not found in corresponding resource"));
    }
    Node val = *value;
    if (val.kind() == Node::Kind::kInt) {
      // kustomize reads ints with Atoi (decimal only).
      int64_t i;
      if (absl::SimpleAtoi(val.scalar(), &i)) {
        val = Node::Int(i);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("var '", name, "': invalid int ", val.scalar()));
      }
    } else if (val.kind() == Node::Kind::kTimestamp || val.kind() == Node::Kind::kNull) {
      val = Node::String(val.scalar());
    }
    values[name] = val;
  }
  const std::vector<FieldSpec>& specs = config_.var_reference;
  std::set<std::string> used;
  for (Resource& r : *ra) {
    Gvk g = Gvk::Of(r.obj);
    for (const FieldSpec& fs : specs) {
      if (!g.IsSelectedBy(fs.gvk)) continue;
      FieldSpec no_create = fs;
      no_create.create = false;
      RETURN_IF_ERROR(ApplyFieldSpec(r.obj, no_create, Node::Kind::kString, [&](Node& n) {
        ExpandInNode(n, values, &used);
        return absl::OkStatus();
      }));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Node> Engine::LoadKustomization(const std::string& dir) const {
  ASSIGN_OR_RETURN(std::string d, Confine(fs::absolute(dir).lexically_normal().string()));
  for (const char* name : kKustomizationFiles) {
    std::string file = (fs::path(d) / name).string();
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) continue;
    ASSIGN_OR_RETURN(std::string text, ReadFile(file));
    absl::StatusOr<Node> k = ParseYamlDocument(text);
    if (!k.ok()) return Annotate(k.status(), absl::StrCat("invalid Kustomization ", file));
    if (k->IsNull()) return Node::Map();
    if (!k->IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid Kustomization ", file, ": not a map"));
    }
    return std::move(*k);
  }
  return absl::NotFoundError(absl::StrCat("no kustomization file in '", d, "'"));
}

absl::StatusOr<std::vector<Resource>> Engine::Build(const std::string& dir,
                                                    const Node* override_kustomization) {
  std::vector<Resource> ra;
  std::string abs_dir = fs::absolute(dir).lexically_normal().string();
  RETURN_IF_ERROR(Accumulate(abs_dir, override_kustomization, false, &ra, 0));
  // Hash suffixes for generated objects, then fix references to all renames.
  for (Resource& r : ra) {
    if (!r.needs_hash) continue;
    std::string h = ResourceHash(r);
    r.StorePreviousId();
    r.SetName(absl::StrCat(r.name(), "-", h));
  }
  NameRefFixer fixer(&ra, config_.name_reference);
  RETURN_IF_ERROR(fixer.Run());
  RETURN_IF_ERROR(ResolveVars(&ra));
  // kustomize rewrites every non-empty annotations map as strings when it
  // drops its build annotations: values print as their source text.
  for (Resource& r : ra) {
    Node* annotations = r.obj.FindPath({"metadata", "annotations"}) == nullptr
                            ? nullptr
                            : &r.obj["metadata"]["annotations"];
    if (annotations == nullptr) continue;
    if (annotations->IsNull() || (annotations->IsMap() && annotations->entries().empty())) {
      r.obj["metadata"].Erase("annotations");
      continue;
    }
    if (!annotations->IsMap()) continue;
    for (auto& e : annotations->entries()) {
      // The rewrite loses key quoting; keys YAML 1.1 reads as other types
      // then break kustomize's JSON conversion.
      if (!ReadsAsStringInYaml11(e.first)) {
        return absl::InvalidArgumentError(
            absl::StrCat("annotation key \"", e.first, "\" of ", r.kind(), " ", r.name(),
                         ": json: unsupported type: map[interface {}]interface {}"));
      }
      if (e.second.IsString()) continue;
      e.second = Node::String(e.second.IsScalar() ? e.second.scalar() : "");
    }
  }

  // Output order: the top kustomization's sortOptions, legacy by default.
  Node top;
  if (override_kustomization != nullptr) {
    top = *override_kustomization;
  } else {
    for (const char* name : kKustomizationFiles) {
      absl::StatusOr<std::string> text = ReadFile((fs::path(abs_dir) / name).string());
      if (text.ok()) {
        absl::StatusOr<Node> k = ParseYamlDocument(*text);
        if (k.ok()) top = std::move(*k);
        break;
      }
    }
  }
  // buildMetadata: managedByLabel is supported; origin and transformer
  // annotations are not (refuse rather than print something different).
  bool managed_by = false;
  if (const Node* bm = top.Find("buildMetadata"); bm != nullptr && bm->IsSeq()) {
    for (const Node& opt : bm->items()) {
      if (opt.scalar() == "managedByLabel") {
        managed_by = true;
      } else if (opt.scalar() == "originAnnotations" || opt.scalar() == "transformerAnnotations") {
        return absl::UnimplementedError(
            absl::StrCat("buildMetadata option '", opt.scalar(), "' is not supported"));
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid buildMetadata option: ", opt.scalar()));
      }
    }
  }
  const Node* sort = top.Find("sortOptions");
  std::string order = sort != nullptr ? sort->GetString({"order"}) : "legacy";
  if (order == "legacy") {
    std::vector<std::string> first = kDefaultOrderFirst, last = kDefaultOrderLast;
    const Node* lo = sort != nullptr ? sort->Find("legacySortOptions") : nullptr;
    if (lo != nullptr && lo->IsMap()) {
      ASSIGN_OR_RETURN(first, StringList(*lo, "orderFirst"));
      ASSIGN_OR_RETURN(last, StringList(*lo, "orderLast"));
    }
    LegacySort(&ra, first, last);
  } else if (order != "fifo") {
    return absl::InvalidArgumentError(
        "the field 'sortOptions.order' must be one of [fifo, legacy]");
  }
  if (managed_by) {
    for (Resource& r : ra) {
      r.obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] =
          Node::String("kustomize-(devel)");  // what kubectl kustomize prints
    }
  }
  return ra;
}

std::string Engine::ToYaml(const std::vector<Resource>& resources) {
  std::string out;
  bool first = true;
  for (const Resource& r : resources) {
    if (!first) out += "---\n";
    first = false;
    out += EmitYaml(r.obj);
  }
  return out;
}

}  // namespace gitops::kustomize
