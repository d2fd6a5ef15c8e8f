#include "common/runtime/duration.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gitops::common {
namespace {

absl::Status Invalid(absl::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid duration \"", text, "\": want e.g. 30s, 5m, 1h30m"));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseGoDuration(absl::string_view text) {
  absl::string_view s = text;
  if (s.empty()) return Invalid(text);
  bool negative = false;
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return absl::ZeroDuration();
  if (s.empty()) return Invalid(text);
  absl::Duration total = absl::ZeroDuration();
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i == 0) return Invalid(text);
    double value = 0;
    std::string number(s.substr(0, i));
    char* end = nullptr;
    value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size() || number == ".") return Invalid(text);
    s.remove_prefix(i);
    size_t j = 0;
    while (j < s.size() && !((s[j] >= '0' && s[j] <= '9') || s[j] == '.')) ++j;
    absl::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    absl::Duration scale;
    if (unit == "ns") {
      scale = absl::Nanoseconds(1);
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      scale = absl::Microseconds(1);
    } else if (unit == "ms") {
      scale = absl::Milliseconds(1);
    } else if (unit == "s") {
      scale = absl::Seconds(1);
    } else if (unit == "m") {
      scale = absl::Minutes(1);
    } else if (unit == "h") {
      scale = absl::Hours(1);
    } else {
      return Invalid(text);
    }
    total += value * scale;
  }
  return negative ? -total : total;
}

std::string FormatGoDuration(absl::Duration d) {
  if (d == absl::ZeroDuration()) return "0s";
  std::string sign;
  if (d < absl::ZeroDuration()) {
    sign = "-";
    d = -d;
  }
  if (d < absl::Seconds(1)) {
    if (d < absl::Microseconds(1)) return absl::StrCat(sign, absl::ToInt64Nanoseconds(d), "ns");
    if (d < absl::Milliseconds(1)) {
      return absl::StrCat(sign, absl::StrFormat("%g", absl::ToDoubleMicroseconds(d)), "\xC2\xB5s");
    }
    double ms = absl::ToDoubleMilliseconds(d);
    return absl::StrCat(sign, absl::StrFormat("%g", ms), "ms");
  }
  int64_t hours = absl::ToInt64Hours(d);
  d -= absl::Hours(hours);
  int64_t minutes = absl::ToInt64Minutes(d);
  d -= absl::Minutes(minutes);
  double seconds = absl::ToDoubleSeconds(d);
  std::string out = sign;
  if (hours > 0) absl::StrAppend(&out, hours, "h");
  if (hours > 0 || minutes > 0) absl::StrAppend(&out, minutes, "m");
  absl::StrAppend(&out, absl::StrFormat("%g", seconds), "s");
  return out;
}

}  // namespace gitops::common
