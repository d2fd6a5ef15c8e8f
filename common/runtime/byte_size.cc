#include "common/runtime/byte_size.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gitops::common {

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid size \"", text,
                     "\": want a whole number of bytes, optionally with a suffix Ki, Mi, Gi, Ti "
                     "(1024-based) or k, M, G, T (1000-based)"));
  };
  size_t digits = 0;
  while (digits < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  if (digits == 0) return invalid();
  struct Suffix {
    absl::string_view name;
    int64_t factor;
  };
  static constexpr Suffix kSuffixes[] = {
      {"", 1},
      {"k", 1000},
      {"M", 1000 * 1000},
      {"G", 1000 * 1000 * 1000},
      {"T", int64_t{1000} * 1000 * 1000 * 1000},
      {"Ki", int64_t{1} << 10},
      {"Mi", int64_t{1} << 20},
      {"Gi", int64_t{1} << 30},
      {"Ti", int64_t{1} << 40},
  };
  const absl::string_view suffix = text.substr(digits);
  int64_t factor = 0;
  for (const Suffix& s : kSuffixes) {
    if (s.name == suffix) factor = s.factor;
  }
  int64_t number = 0;
  if (factor == 0 || !absl::SimpleAtoi(text.substr(0, digits), &number)) return invalid();
  if (number > std::numeric_limits<int64_t>::max() / factor) {
    return absl::InvalidArgumentError(absl::StrCat("size \"", text, "\" is too large"));
  }
  return number * factor;
}

}  // namespace gitops::common
