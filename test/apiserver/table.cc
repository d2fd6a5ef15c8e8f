#include "test/apiserver/table.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "test/apiserver/json_util.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;

struct Column {
  std::string name;
  std::string type;  // string | integer | number | boolean | date
  std::string path;  // JSONPath, or "" for computed columns
  int priority = 0;
  std::string format;
};

std::string CellText(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const auto& e : v) parts.push_back(CellText(e));
    return absl::StrJoin(parts, ",");
  }
  return v.dump();
}

std::string Age(const json& obj) {
  std::string ts = Str(obj, {"metadata", "creationTimestamp"});
  if (ts.empty()) return "<unknown>";
  return HumanDuration(absl::Now() - ParseTime(ts));
}

std::vector<Column> BuiltinColumns(const ResourceInfo& res) {
  const std::string& k = res.kind;
  if (k == "Namespace") return {{"Status", "string", ".status.phase"}, {"Age", "date", ""}};
  if (k == "ConfigMap") return {{"Data", "integer", "#data"}, {"Age", "date", ""}};
  if (k == "Secret") {
    return {{"Type", "string", ".type"}, {"Data", "integer", "#data"}, {"Age", "date", ""}};
  }
  if (k == "ServiceAccount") return {{"Secrets", "integer", "#secrets"}, {"Age", "date", ""}};
  if (k == "Service") {
    return {{"Type", "string", ".spec.type"},
            {"Cluster-IP", "string", ".spec.clusterIP"},
            {"External-IP", "string", "#externalip"},
            {"Port(s)", "string", "#ports"},
            {"Age", "date", ""}};
  }
  if (k == "Deployment") {
    return {{"Ready", "string", "#ready"},
            {"Up-to-date", "integer", ".status.updatedReplicas"},
            {"Available", "integer", ".status.availableReplicas"},
            {"Age", "date", ""}};
  }
  if (k == "CustomResourceDefinition") return {{"Created At", "date", "#created"}};
  if (k == "Lease") return {{"Holder", "string", ".spec.holderIdentity"}, {"Age", "date", ""}};
  if (k == "Event" && res.group.empty()) {
    return {{"Last Seen", "string", "#lastseen"},
            {"Type", "string", ".type"},
            {"Reason", "string", ".reason"},
            {"Object", "string", "#involved"},
            {"Message", "string", ".message"}};
  }
  return {{"Age", "date", ""}};
}

json Cell(const Column& c, const json& obj) {
  if (c.path.empty()) return Age(obj);
  if (c.path == "#data") {
    const json* d = Find(obj, {"data"});
    size_t n = d != nullptr && d->is_object() ? d->size() : 0;
    const json* b = Find(obj, {"binaryData"});
    if (b != nullptr && b->is_object()) n += b->size();
    return n;
  }
  if (c.path == "#secrets") {
    const json* d = Find(obj, {"secrets"});
    return d != nullptr && d->is_array() ? d->size() : 0;
  }
  if (c.path == "#externalip") return "<none>";
  if (c.path == "#ports") {
    const json* ports = Find(obj, {"spec", "ports"});
    std::vector<std::string> parts;
    if (ports != nullptr && ports->is_array()) {
      for (const auto& p : *ports) {
        std::string proto = Str(p, {"protocol"});
        const json* port = Find(p, {"port"});
        parts.push_back(absl::StrCat(port != nullptr ? CellText(*port) : "", "/",
                                     proto.empty() ? "TCP" : proto));
      }
    }
    return parts.empty() ? "<none>" : absl::StrJoin(parts, ",");
  }
  if (c.path == "#ready") {
    const json* ready = Find(obj, {"status", "readyReplicas"});
    const json* want = Find(obj, {"spec", "replicas"});
    return absl::StrCat(ready != nullptr && ready->is_number() ? ready->get<int64_t>() : 0, "/",
                        want != nullptr && want->is_number() ? want->get<int64_t>() : 1);
  }
  if (c.path == "#created") return Str(obj, {"metadata", "creationTimestamp"});
  if (c.path == "#lastseen") {
    std::string ts = Str(obj, {"lastTimestamp"});
    if (ts.empty()) ts = Str(obj, {"eventTime"});
    return ts.empty() ? "<unknown>" : HumanDuration(absl::Now() - ParseTime(ts));
  }
  if (c.path == "#involved") {
    std::string kind = Str(obj, {"involvedObject", "kind"});
    for (auto& ch : kind) ch = static_cast<char>(::tolower(ch));
    return kind + "/" + Str(obj, {"involvedObject", "name"});
  }
  json v = EvalJsonPath(obj, c.path);
  if (c.type == "date") {
    if (!v.is_string()) return json();
    return HumanDuration(absl::Now() - ParseTime(v.get<std::string>()));
  }
  if (v.is_null()) return json();
  if (c.type == "string") return CellText(v);
  return v;
}

// Parses one segment of a JSONPath: returns matches of `segment` in `nodes`.
std::vector<json> Step(const std::vector<json>& nodes, const std::string& path, size_t& i) {
  std::vector<json> out;
  if (path[i] == '.') {
    ++i;
    size_t start = i;
    while (i < path.size() && path[i] != '.' && path[i] != '[') ++i;
    std::string key = path.substr(start, i - start);
    for (const auto& n : nodes) {
      if (n.is_object() && n.contains(key)) out.push_back(n[key]);
    }
    return out;
  }
  if (path[i] == '[') {
    size_t end = path.find(']', i);
    if (end == std::string::npos) {
      i = path.size();
      return out;
    }
    std::string inner = path.substr(i + 1, end - i - 1);
    i = end + 1;
    if (inner.rfind("?(@.", 0) == 0 && inner.back() == ')') {
      std::string cond = inner.substr(4, inner.size() - 5);
      size_t eq = cond.find("==");
      if (eq == std::string::npos) return out;
      std::string field = cond.substr(0, eq);
      std::string want = cond.substr(eq + 2);
      if (want.size() >= 2 && (want[0] == '"' || want[0] == '\'')) {
        want = want.substr(1, want.size() - 2);
      }
      for (const auto& n : nodes) {
        if (!n.is_array()) continue;
        for (const auto& e : n) {
          if (e.is_object() && e.contains(field) && CellText(e[field]) == want) out.push_back(e);
        }
      }
      return out;
    }
    if (inner == "*") {
      for (const auto& n : nodes) {
        if (n.is_array()) out.insert(out.end(), n.begin(), n.end());
      }
      return out;
    }
    char* endp = nullptr;
    long idx = std::strtol(inner.c_str(), &endp, 10);
    for (const auto& n : nodes) {
      if (!n.is_array()) continue;
      long k = idx < 0 ? static_cast<long>(n.size()) + idx : idx;
      if (k >= 0 && k < static_cast<long>(n.size())) out.push_back(n[k]);
    }
    return out;
  }
  ++i;
  return out;
}

}  // namespace

json EvalJsonPath(const json& obj, const std::string& path_in) {
  std::string path = path_in;
  if (path.size() >= 2 && path.front() == '{' && path.back() == '}') {
    path = path.substr(1, path.size() - 2);
  }
  if (!path.empty() && path[0] == '$') path = path.substr(1);
  std::vector<json> nodes = {obj};
  size_t i = 0;
  while (i < path.size() && !nodes.empty()) nodes = Step(nodes, path, i);
  if (nodes.empty()) return json();
  if (nodes.size() == 1) return nodes[0];
  return json(nodes);
}

json ToTable(const ResourceInfo& res, const std::vector<json>& objects,
             const std::string& include_object, bool with_columns) {
  std::vector<Column> columns;
  if (!res.crd_name.empty() && res.printer_columns.is_array() && !res.printer_columns.empty()) {
    for (const auto& pc : res.printer_columns) {
      Column c;
      c.name = Str(pc, {"name"});
      c.type = Str(pc, {"type"});
      c.path = Str(pc, {"jsonPath"});
      c.format = Str(pc, {"format"});
      const json* prio = Find(pc, {"priority"});
      c.priority = prio != nullptr && prio->is_number_integer() ? prio->get<int>() : 0;
      if (c.path.empty()) c.path = ".";
      columns.push_back(c);
    }
  } else if (!res.crd_name.empty()) {
    columns = {{"Age", "date", ""}};
  } else {
    columns = BuiltinColumns(res);
  }
  json defs = json::array();
  if (with_columns) {
    defs.push_back({{"name", "Name"},
                    {"type", "string"},
                    {"format", "name"},
                    {"description", "Name must be unique within a namespace."},
                    {"priority", 0}});
    for (const auto& c : columns) {
      defs.push_back({{"name", c.name},
                      {"type", c.type == "date" ? "string" : c.type},
                      {"format", c.format},
                      {"description", c.name},
                      {"priority", c.priority}});
    }
  }
  json rows = json::array();
  for (const auto& obj : objects) {
    json cells = json::array();
    cells.push_back(Str(obj, {"metadata", "name"}));
    for (const auto& c : columns) cells.push_back(Cell(c, obj));
    json row = {{"cells", cells}};
    if (include_object == "Object") {
      row["object"] = obj;
    } else if (include_object != "None") {
      json meta = obj.contains("metadata") ? obj["metadata"] : json::object();
      row["object"] = {
          {"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", meta}};
    }
    rows.push_back(row);
  }
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", json::object()},
          {"columnDefinitions", defs},
          {"rows", rows}};
}

}  // namespace gitops::testing
