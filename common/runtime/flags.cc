#include "common/runtime/flags.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace gitops::common {
namespace {

std::string Dashed(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

void PrintHelp(absl::string_view usage) {
  printf("%s\nFlags:\n", std::string(usage).c_str());
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    // The program's own flags: its main.cc and the shared ones in common/
    // (Abseil's and gtest's are not the program's).
    const std::string file = flag->Filename();
    if (absl::EndsWith(file, "main.cc") || absl::StrContains(file, "common/")) {
      flags.push_back(flag);
    }
  }
  std::sort(flags.begin(), flags.end(), [](auto* a, auto* b) { return a->Name() < b->Name(); });
  for (const auto* flag : flags) {
    std::string def = flag->DefaultValue();
    printf("  --%s", Dashed(flag->Name()).c_str());
    if (!def.empty()) printf(" (default %s)", def.c_str());
    printf("\n      %s\n", flag->Help().c_str());
  }
}

}  // namespace

std::vector<std::string> ParseFlags(int argc, char** argv, absl::string_view usage) {
  absl::SetProgramUsageMessage(usage);
  std::vector<std::string> normalized;
  normalized.reserve(static_cast<size_t>(argc));
  bool positional_only = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && !positional_only && (arg == "--help" || arg == "-h" || arg == "-help")) {
      PrintHelp(usage);
      std::exit(0);
    }
    if (arg == "--") positional_only = true;
    if (i > 0 && !positional_only && absl::StartsWith(arg, "-") && arg.size() > 1) {
      // Dashes inside the flag name become underscores; the value is kept.
      size_t start = arg.find_first_not_of('-');
      size_t end = std::min(arg.find('='), arg.size());
      for (size_t k = start; k < end; ++k) {
        if (arg[k] == '-') arg[k] = '_';
      }
    }
    normalized.push_back(std::move(arg));
  }
  std::vector<char*> ptrs;
  for (auto& a : normalized) ptrs.push_back(a.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(ptrs.size()), ptrs.data());
  return std::vector<std::string>(positional.begin(), positional.end());
}

}  // namespace gitops::common
