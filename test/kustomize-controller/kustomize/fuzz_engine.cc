// libFuzzer target over the YAML loader, the emitter and the engine. The
// input is parsed as a YAML stream (every document is re-emitted) and, when
// it is a map, used as a kustomization over a few fixed resources. Hostile
// input must fail cleanly: no crash, no hang, bounded memory.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "kustomize-controller/kustomize/engine.h"
#include "kustomize-controller/kustomize/yaml_io.h"

namespace {

const std::string& FixtureDir() {
  static const std::string* dir = [] {
    auto* d = new std::string(std::filesystem::temp_directory_path().string() +
                              "/kustomize-fuzz-fixture");
    std::filesystem::create_directories(*d);
    std::ofstream(*d + "/deploy.yaml")
        << "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
           "  name: web\nspec:\n  template:\n    spec:\n"
           "      containers:\n      - name: c\n        image: nginx\n";
    std::ofstream(*d + "/cm.yaml") << "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n"
                                      "data:\n  a: b\n";
    return d;
  }();
  return *dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  gitops::kustomize::LoadLimits limits;
  limits.max_nodes = 200000;
  auto docs = gitops::kustomize::ParseYamlStream(text, limits);
  if (!docs.ok()) return 0;
  for (const auto& d : *docs) {
    std::string out = gitops::kustomize::EmitYaml(d);
    (void)out;
  }
  if (docs->size() == 1 && (*docs)[0].IsMap()) {
    gitops::kustomize::Engine engine(FixtureDir());
    auto built = engine.Build(FixtureDir(), &(*docs)[0]);
    if (built.ok()) (void)gitops::kustomize::Engine::ToYaml(*built);
  }
  return 0;
}
