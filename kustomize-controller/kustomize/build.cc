#include "kustomize-controller/kustomize/build.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "kustomize-controller/kustomize/engine.h"

namespace gitops::kustomize {
namespace fs = std::filesystem;

namespace {

bool HasKustomization(const fs::path& dir) {
  std::error_code ec;
  for (const char* name : {"kustomization.yaml", "kustomization.yml", "Kustomization"}) {
    if (fs::is_regular_file(dir / name, ec)) return true;
  }
  return false;
}

// Flux's generated kustomization: resources are the YAML files under `dir`
// in lexical walk order, and subdirectories with their own kustomization.
void Scan(const fs::path& base, const fs::path& dir, std::vector<std::string>* out) {
  std::error_code ec;
  std::vector<fs::path> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    entries.push_back(it->path());
  }
  std::sort(entries.begin(), entries.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  for (const fs::path& p : entries) {
    std::string rel = "./" + p.lexically_relative(base).string();
    if (fs::is_directory(p, ec)) {
      if (fs::is_symlink(p, ec)) continue;
      if (HasKustomization(p)) {
        out->push_back(rel);
      } else {
        Scan(base, p, out);
      }
      continue;
    }
    std::string ext = p.extension().string();
    if (ext == ".yaml" || ext == ".yml") out->push_back(rel);
  }
}

}  // namespace

absl::StatusOr<std::string> BuildYaml(const std::string& root, const std::string& path) {
  return BuildYaml(root, path, FluxOverlay());
}

absl::StatusOr<std::string> BuildYaml(const std::string& root, const std::string& path,
                                      const FluxOverlay& overlay) {
  fs::path abs_root = fs::absolute(root).lexically_normal();
  fs::path dir = (abs_root / path).lexically_normal();
  // Refuse paths that leave the root, even through symlinks, before looking.
  std::error_code ec;
  fs::path canon_root = fs::weakly_canonical(abs_root, ec);
  fs::path canon_dir = fs::weakly_canonical(dir, ec);
  fs::path rel = canon_dir.lexically_relative(canon_root);
  if (rel.empty() || *rel.begin() == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("kustomization path '", path, "' is outside the source root"));
  }
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("kustomization path not found: '", path, "'"));
  }
  Engine engine(abs_root.string());
  engine.set_restrict_files_to_kustomization_dir(false);
  Node k;
  if (HasKustomization(dir)) {
    ASSIGN_OR_RETURN(k, engine.LoadKustomization(dir.string()));
  } else {
    // Flux's generated kustomization.
    std::vector<std::string> files;
    Scan(dir, dir, &files);
    k = Node::Map();
    k["apiVersion"] = Node::String("kustomize.config.k8s.io/v1beta1");
    k["kind"] = Node::String("Kustomization");
    Node& list = k["resources"];
    list = Node::Seq();
    for (const std::string& f : files) list.items().push_back(Node::String(f));
  }
  if (!overlay.target_namespace.empty()) {
    k["namespace"] = Node::String(overlay.target_namespace);
  }
  if (!overlay.name_prefix.empty()) k["namePrefix"] = Node::String(overlay.name_prefix);
  if (!overlay.name_suffix.empty()) k["nameSuffix"] = Node::String(overlay.name_suffix);
  auto append = [&](const char* field, Node item) {
    Node& l = k[field];
    if (!l.IsSeq()) l = Node::Seq();
    l.items().push_back(std::move(item));
  };
  for (const std::string& c : overlay.components) append("components", Node::String(c));
  for (const FluxOverlay::Patch& p : overlay.patches) {
    Node entry = Node::Map();
    entry["patch"] = Node::String(p.patch);
    if (p.has_target) {
      Node& t = entry["target"];
      t = Node::Map();
      auto set = [&](const char* f, const std::string& v) {
        if (!v.empty()) t[f] = Node::String(v);
      };
      set("group", p.target.group);
      set("version", p.target.version);
      set("kind", p.target.kind);
      set("name", p.target.name);
      set("namespace", p.target.namespace_);
      set("labelSelector", p.target.label_selector);
      set("annotationSelector", p.target.annotation_selector);
    }
    append("patches", std::move(entry));
  }
  for (const FluxOverlay::Image& img : overlay.images) {
    Node entry = Node::Map();
    entry["name"] = Node::String(img.name);
    if (!img.new_name.empty()) entry["newName"] = Node::String(img.new_name);
    if (!img.new_tag.empty()) entry["newTag"] = Node::String(img.new_tag);
    if (!img.digest.empty()) entry["digest"] = Node::String(img.digest);
    // An image Flux sets replaces the kustomization's entry of that name.
    Node& l = k["images"];
    if (!l.IsSeq()) l = Node::Seq();
    bool replaced = false;
    for (Node& existing : l.items()) {
      if (existing.GetString({"name"}) == img.name) {
        existing = entry;
        replaced = true;
        break;
      }
    }
    if (!replaced) l.items().push_back(std::move(entry));
  }
  ASSIGN_OR_RETURN(std::vector<Resource> resources, engine.Build(dir.string(), &k));
  // commonMetadata goes on every object's own metadata after the build, as
  // Flux sets it before applying (not on selectors or pod templates).
  for (Resource& r : resources) {
    for (const auto& [lk, lv] : overlay.common_labels) {
      r.obj["metadata"]["labels"][lk] = Node::String(lv);
    }
    for (const auto& [ak, av] : overlay.common_annotations) {
      r.obj["metadata"]["annotations"][ak] = Node::String(av);
    }
  }
  return Engine::ToYaml(resources);
}

int RunBuildCommand(const std::string& dir) {
  Engine engine("/");
  absl::StatusOr<std::vector<Resource>> resources = engine.Build(dir);
  if (!resources.ok()) {
    std::cerr << "Error: " << resources.status().message() << "\n";
    return 1;
  }
  std::string out = Engine::ToYaml(*resources);
  fwrite(out.data(), 1, out.size(), stdout);
  fflush(stdout);
  return 0;
}

}  // namespace gitops::kustomize
