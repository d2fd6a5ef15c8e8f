// Command-line flags the way Flux's controllers spell them (--storage-path,
// --log-level), on top of Abseil flags (which name them storage_path).
#ifndef GITOPS_COMMON_RUNTIME_FLAGS_H_
#define GITOPS_COMMON_RUNTIME_FLAGS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace gitops::common {

// Parses argv: flag names may use dashes or underscores. --help / -h prints
// `usage` and the program's flags (those defined in its main.cc or in
// common/, such as common/http/limit_flags.cc) with dashed
// names, defaults and help, then exits 0. Unknown flags print an error and
// exit 2. Returns the positional arguments (argv[0] first).
std::vector<std::string> ParseFlags(int argc, char** argv, absl::string_view usage);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_RUNTIME_FLAGS_H_
