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
  fs::path abs_root = fs::absolute(root).lexically_normal();
  fs::path dir = (abs_root / path).lexically_normal();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("kustomization path not found: '", path, "'"));
  }
  Engine engine(abs_root.string());
  std::vector<Resource> resources;
  if (HasKustomization(dir)) {
    ASSIGN_OR_RETURN(resources, engine.Build(dir.string()));
  } else {
    std::vector<std::string> files;
    Scan(dir, dir, &files);
    Node k = Node::Map();
    k["apiVersion"] = Node::String("kustomize.config.k8s.io/v1beta1");
    k["kind"] = Node::String("Kustomization");
    Node& list = k["resources"];
    list = Node::Seq();
    for (const std::string& f : files) list.items().push_back(Node::String(f));
    ASSIGN_OR_RETURN(resources, engine.Build(dir.string(), &k));
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
