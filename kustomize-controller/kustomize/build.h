// Public entry points of the native kustomize engine, for the
// kustomize-controller's reconciler and the `kustomize-build` CLI.
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_BUILD_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_BUILD_H_

#include <string>

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

// CLI entry: prints the stream to stdout, or the error to stderr; returns the
// exit code (0 on success, 1 on error). Behaves like `kubectl kustomize DIR`.
int RunBuildCommand(const std::string& dir);

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_BUILD_H_
