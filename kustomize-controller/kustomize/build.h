// Public entry points of the native kustomize engine, for the
// kustomize-controller's reconciler and the `kustomize-build` CLI.
// Thread-safe: builds share no mutable state, so reconcile workers may build
// concurrently.
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_BUILD_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_BUILD_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gitops::kustomize {

// Builds `path` (relative to `root`, never reading outside root) like
// `kustomize build`; a directory without a kustomization file gets Flux's
// generated one (every *.yaml/*.yml below it, subdirectories holding a
// kustomization used as resources). Returns the YAML stream.
// InvalidArgument for bad input (naming the file and field), NotFound for a
// missing path, Unimplemented for unsupported features (remote bases, helm,
// plugins).
absl::StatusOr<std::string> BuildYaml(const std::string& root, const std::string& path);

// What a Flux Kustomization adds on top of the kustomization in its path
// (spec.targetNamespace, namePrefix, nameSuffix, patches, images, components,
// commonMetadata), applied the way Flux's generator edits the
// kustomization before building.
struct FluxOverlay {
  struct Selector {
    std::string group, version, kind, name, namespace_, label_selector, annotation_selector;
  };
  struct Patch {
    std::string patch;  // strategic merge or JSON 6902, YAML or JSON text
    bool has_target = false;
    Selector target;
  };
  struct Image {
    std::string name, new_name, new_tag, digest;
  };
  std::string target_namespace;
  std::string name_prefix;
  std::string name_suffix;
  std::vector<Patch> patches;
  std::vector<Image> images;
  std::vector<std::string> components;  // relative to the path
  // commonMetadata: set on each object's metadata after the build.
  std::map<std::string, std::string> common_labels;
  std::map<std::string, std::string> common_annotations;
};

// Like BuildYaml(root, path), with Flux's overlay applied. Files may be read
// from anywhere under root (Flux builds with LoadRestrictionsNone).
absl::StatusOr<std::string> BuildYaml(const std::string& root, const std::string& path,
                                      const FluxOverlay& overlay);

// CLI entry: prints the stream to stdout, or the error to stderr; returns the
// exit code (0 on success, 1 on error). Behaves like `kubectl kustomize DIR`.
int RunBuildCommand(const std::string& dir);

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_BUILD_H_
