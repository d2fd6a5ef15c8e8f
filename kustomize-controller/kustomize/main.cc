// kustomize-build DIR: prints what `kubectl kustomize DIR` prints, using the
// native engine.
#include <cstdio>
#include <string>

#include "kustomize-controller/kustomize/build.h"

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    fprintf(stderr, "usage: kustomize-build DIR\n");
    return 2;
  }
  return gitops::kustomize::RunBuildCommand(argv[1]);
}
