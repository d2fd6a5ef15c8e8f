#include "kustomize-controller/kustomize/replacements.h"

#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status/status_macros.h"
#include "kustomize-controller/kustomize/fieldspec.h"
#include "kustomize-controller/kustomize/yaml_io.h"

namespace gitops::kustomize {
namespace {

struct Id {
  Gvk gvk;
  std::string name;
  std::string ns;
};

struct IdSelector {
  Gvk gvk;
  std::string name;
  std::string ns;
  std::string label_selector;
  std::string annotation_selector;
  bool Empty() const {
    return gvk.group.empty() && gvk.version.empty() && gvk.kind.empty() && name.empty() &&
           ns.empty();
  }
};

IdSelector ParseIdSelector(const Node& n) {
  IdSelector s;
  s.gvk.group = n.GetString({"group"});
  s.gvk.version = n.GetString({"version"});
  s.gvk.kind = n.GetString({"kind"});
  s.name = n.GetString({"name"});
  s.ns = n.GetString({"namespace"});
  s.label_selector = n.GetString({"labelSelector"});
  s.annotation_selector = n.GetString({"annotationSelector"});
  return s;
}

std::vector<Id> Ids(const Resource& r) {
  std::vector<Id> out;
  Gvk g = Gvk::Of(r.obj);
  out.push_back({g, r.name(), r.ns()});
  for (const auto& p : r.prev_ids) out.push_back({g, p.first, p.second});
  return out;
}

bool NsEquals(const std::string& a, const std::string& b) {
  return (a.empty() ? "default" : a) == (b.empty() ? "default" : b);
}

bool Selected(const Id& id, const IdSelector& s) {
  return (s.name.empty() || s.name == id.name) && (s.ns.empty() || NsEquals(s.ns, id.ns)) &&
         id.gvk.IsSelectedBy(s.gvk);
}

std::string SelectorString(const IdSelector& s) {
  return absl::StrCat("\"", s.gvk.kind, ".", s.gvk.version, ".", s.gvk.group, "/", s.name, ".",
                      s.ns.empty() ? "[noNs]" : s.ns, "\"");
}

// Simple label selector: comma-separated key=value / key!=value / key.
bool MatchLabels(const std::string& sel, const Node* labels) {
  if (sel.empty()) return true;
  for (absl::string_view raw : absl::StrSplit(sel, ',')) {
    std::string req(absl::StripAsciiWhitespace(raw));
    if (req.empty()) continue;
    size_t p;
    auto get = [&](const std::string& k) -> const Node* {
      return labels == nullptr ? nullptr : labels->Find(k);
    };
    if ((p = req.find("!=")) != std::string::npos) {
      const Node* v = get(req.substr(0, p));
      if (v != nullptr && v->scalar() == req.substr(p + 2)) return false;
    } else if ((p = req.find('=')) != std::string::npos) {
      size_t vs = req.compare(p, 2, "==") == 0 ? p + 2 : p + 1;
      const Node* v = get(req.substr(0, p));
      if (v == nullptr || v->scalar() != req.substr(vs)) return false;
    } else if (get(req) == nullptr) {
      return false;
    }
  }
  return true;
}

bool MatchesAnnoAndLabels(const Resource& r, const IdSelector& s) {
  return MatchLabels(s.label_selector, r.obj.FindPath({"metadata", "labels"})) &&
         MatchLabels(s.annotation_selector, r.obj.FindPath({"metadata", "annotations"}));
}

// `[name=value]` -> (name, value).
bool ParseMatcher(const std::string& part, std::string* key, std::string* value) {
  if (part.size() < 3 || part.front() != '[' || part.back() != ']') return false;
  std::string inner = part.substr(1, part.size() - 2);
  size_t eq = inner.find('=');
  if (eq == std::string::npos) return false;
  *key = inner.substr(0, eq);
  *value = inner.substr(eq + 1);
  return true;
}

// Collects every node the path reaches; with `create`, missing map fields
// and `[name=value]` elements are made on the way.
struct Found {
  Node* node;
  bool created;
};

void Walk(Node& n, const std::vector<std::string>& parts, size_t i, bool create,
          Node::Kind leaf_kind, std::vector<Found>* out, bool created = false) {
  if (i == parts.size()) {
    out->push_back({&n, created});
    return;
  }
  const std::string& part = parts[i];
  std::string key, value;
  if (n.IsSeq()) {
    if (ParseMatcher(part, &key, &value)) {
      bool found = false;
      for (Node& item : n.items()) {
        if (key.empty()) {
          if (item.IsScalar() && (value == "*" || item.scalar() == value)) {
            found = true;
            Walk(item, parts, i + 1, create, leaf_kind, out);
          }
          continue;
        }
        const Node* f = item.Find(key);
        if (f != nullptr && (value == "*" || f->scalar() == value)) {
          found = true;
          Walk(item, parts, i + 1, create, leaf_kind, out);
        }
      }
      if (!found && create && !key.empty() && value != "*") {
        Node item = Node::Map();
        item[key] = Node::String(value);
        n.items().push_back(std::move(item));
        Walk(n.items().back(), parts, i + 1, create, leaf_kind, out);
      }
      return;
    }
    if (part == "*") {
      for (Node& item : n.items()) Walk(item, parts, i + 1, create, leaf_kind, out);
      return;
    }
    size_t idx;
    if (absl::SimpleAtoi(part, &idx) && idx < n.items().size()) {
      Walk(n.items()[idx], parts, i + 1, create, leaf_kind, out);
    }
    return;
  }
  if (n.IsNull() && create) n = Node::Map();
  if (!n.IsMap()) return;
  if (part == "*") {
    for (auto& e : n.entries()) Walk(e.second, parts, i + 1, create, leaf_kind, out);
    return;
  }
  Node* child = n.Find(part);
  if (child == nullptr) {
    if (!create) return;
    Node& made = n[part];
    bool next_is_matcher =
        i + 1 < parts.size() && !parts[i + 1].empty() && parts[i + 1].front() == '[';
    if (i + 1 == parts.size()) {
      // Created leaves stay null so they take the value's own type.
      made = leaf_kind == Node::Kind::kMap   ? Node::Map()
             : leaf_kind == Node::Kind::kSeq ? Node::Seq()
                                             : Node::Null();
    } else {
      made = next_is_matcher ? Node::Seq() : Node::Map();
    }
    Walk(made, parts, i + 1, create, leaf_kind, out, i + 1 == parts.size());
    return;
  }
  Walk(*child, parts, i + 1, create, leaf_kind, out);
}

struct FieldOptions {
  std::string delimiter;
  int index = 0;
  bool create = false;
};

FieldOptions ParseOptions(const Node* n) {
  FieldOptions o;
  if (n == nullptr || !n->IsMap()) return o;
  o.delimiter = n->GetString({"delimiter"});
  int idx = 0;
  if (absl::SimpleAtoi(n->GetString({"index"}), &idx)) o.index = idx;
  o.create = n->GetString({"create"}) == "true";
  return o;
}

// kustomize replaces a scalar's text in place and keeps its type: "3" into
// `replicas: 1` stays an int, "1.25" into a string stays a string.
void SetScalarText(Node& target, const std::string& text) {
  if (target.untagged()) {
    target = ResolvePlainScalar(text);
    target.set_untagged(true);
    return;
  }
  switch (target.kind()) {
    case Node::Kind::kString:
      target = Node::String(text);
      return;
    case Node::Kind::kInt:
    case Node::Kind::kFloat:
    case Node::Kind::kBool:
    case Node::Kind::kTimestamp: {
      Node resolved = ResolvePlainScalar(text);
      if (resolved.kind() == target.kind() ||
          (target.kind() == Node::Kind::kFloat && resolved.kind() == Node::Kind::kInt)) {
        target = Node::Scalar(target.kind(), text);
      } else {
        target = Node::String(text);
      }
      return;
    }
    default:
      target = ResolvePlainScalar(text);
  }
}

absl::StatusOr<Node> GetReplacement(std::vector<Resource>* ra, const Node& r) {
  const Node* src = r.Find("source");
  IdSelector sel = ParseIdSelector(*src);
  const Resource* match = nullptr;
  for (const Resource& res : *ra) {
    for (const Id& id : Ids(res)) {
      if (Selected(id, sel)) {
        if (match != nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("multiple matches for selector ", SelectorString(sel)));
        }
        match = &res;
        break;
      }
    }
  }
  if (match == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("nothing selected by ", SelectorString(sel)));
  }
  std::string field_path = src->GetString({"fieldPath"});
  if (field_path.empty()) field_path = "metadata.name";
  Node copy = match->obj;
  std::vector<Found> found;
  Walk(copy, SplitReplacementPath(field_path), 0, false, Node::Kind::kNull, &found);
  if (found.empty() || found[0].node->IsNull() ||
      (found[0].node->IsMap() && found[0].node->entries().empty()) ||
      (found[0].node->IsSeq() && found[0].node->items().empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat("fieldPath `", field_path, "` is missing for replacement source ",
                     sel.gvk.kind, ".", sel.gvk.version, ".", sel.gvk.group, "/", sel.name, ".",
                     sel.ns.empty() ? "[noNs]" : sel.ns));
  }
  Node value = *found[0].node;
  FieldOptions opt = ParseOptions(src->Find("options"));
  if (!opt.delimiter.empty()) {
    if (!value.IsScalar()) {
      return absl::InvalidArgumentError("delimiter option can only be used with scalar nodes");
    }
    std::vector<std::string> parts = absl::StrSplit(value.scalar(), opt.delimiter);
    if (opt.index < 0 || opt.index >= static_cast<int>(parts.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "options.index ", opt.index, " is out of bounds for value ", value.scalar()));
    }
    Node refined = value;
    refined.set_string(parts[opt.index]);
    if (value.kind() != Node::Kind::kString) refined = Node::Scalar(value.kind(), parts[opt.index]);
    value = refined;
  }
  return value;
}

absl::Status ApplyToTargets(std::vector<Resource>* ra, const Node& value, const Node& targets) {
  if (!targets.IsSeq()) return absl::InvalidArgumentError("replacement targets must be a list");
  for (const Node& t : targets.items()) {
    const Node* select = t.Find("select");
    if (select == nullptr || !select->IsMap()) {
      return absl::InvalidArgumentError("target must specify resources to select");
    }
    IdSelector sel = ParseIdSelector(*select);
    std::vector<IdSelector> rejects;
    if (const Node* rej = t.Find("reject"); rej != nullptr && rej->IsSeq()) {
      for (const Node& r : rej->items()) rejects.push_back(ParseIdSelector(r));
    }
    std::vector<std::string> paths;
    if (const Node* fps = t.Find("fieldPaths"); fps != nullptr && fps->IsSeq()) {
      for (const Node& fp : fps->items()) paths.push_back(fp.scalar());
    }
    if (paths.empty()) paths.push_back("metadata.name");
    FieldOptions opt = ParseOptions(t.Find("options"));
    for (Resource& res : *ra) {
      if (!MatchesAnnoAndLabels(res, sel)) continue;
      bool rejected = false;
      for (const IdSelector& r : rejects) {
        if ((!r.label_selector.empty() || !r.annotation_selector.empty()) &&
            MatchesAnnoAndLabels(res, r)) {
          rejected = true;
        }
      }
      if (rejected) continue;
      std::vector<Id> ids = Ids(res);
      bool selected = false;
      for (const Id& id : ids) selected = selected || Selected(id, sel);
      if (!selected) continue;
      for (const IdSelector& r : rejects) {
        if (r.Empty()) continue;
        for (const Id& id : ids) rejected = rejected || Selected(id, r);
      }
      if (rejected) continue;
      for (const std::string& fp : paths) {
        std::vector<Found> fields;
        Walk(res.obj, SplitReplacementPath(fp), 0, opt.create,
             value.IsMap()   ? Node::Kind::kMap
             : value.IsSeq() ? Node::Kind::kSeq
                             : Node::Kind::kString,
             &fields);
        if (fields.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(opt.create ? "unable to find or create field " : "unable to find field ",
                           "\"", fp, "\" in replacement target"));
        }
        for (const Found& found_field : fields) {
          Node* f = found_field.node;
          Node v = value;
          if (!opt.delimiter.empty()) {
            if (!f->IsScalar()) {
              return absl::InvalidArgumentError(
                  "delimiter option can only be used with scalar nodes");
            }
            std::vector<std::string> tv = absl::StrSplit(f->scalar(), opt.delimiter);
            if (opt.index < 0) {
              tv.insert(tv.begin(), value.scalar());
            } else if (opt.index >= static_cast<int>(tv.size())) {
              tv.push_back(value.scalar());
            } else {
              tv[opt.index] = value.scalar();
            }
            v = Node::Scalar(value.kind(), absl::StrJoin(tv, opt.delimiter));
          }
          if (found_field.created && v.IsScalar()) {
            // A created field has no type of its own: its text is read again.
            *f = ResolvePlainScalar(v.scalar());
            f->set_untagged(true);
          } else if (f->IsScalar() && !f->IsNull() && v.IsScalar()) {
            SetScalarText(*f, v.scalar());
          } else {
            *f = v;
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> SplitReplacementPath(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : path) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == '.' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

absl::Status ApplyReplacements(std::vector<Resource>* ra, const std::vector<Node>& replacements) {
  for (const Node& r : replacements) {
    const Node* src = r.Find("source");
    const Node* targets = r.Find("targets");
    if (src == nullptr || !src->IsMap() || targets == nullptr) {
      return absl::InvalidArgumentError(
          "replacements must specify a source and at least one target");
    }
    ASSIGN_OR_RETURN(Node value, GetReplacement(ra, r));
    RETURN_IF_ERROR(ApplyToTargets(ra, value, *targets));
  }
  return absl::OkStatus();
}

}  // namespace gitops::kustomize
