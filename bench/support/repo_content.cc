#include "bench/support/repo_content.h"

#include "absl/strings/str_cat.h"

namespace gitops::bench {

std::string ConfigMapFile(int file, int version) {
  std::string out =
      absl::StrCat("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-", file, "\ndata:\n");
  for (int line = 0; line < 30; ++line) {
    absl::StrAppend(&out, "  key", line, ": value-", file, "-", version, "\n");
  }
  return out;
}

}  // namespace gitops::bench
