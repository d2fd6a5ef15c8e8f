// Structured logging: one JSON object per line on stderr, like Flux
// ({"level","ts","logger","msg", ...fields}), or a console encoding for humans.
// Thread-safe: each line is written with a single write(2).
#ifndef GITOPS_COMMON_LOG_LOG_H_
#define GITOPS_COMMON_LOG_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::common {

enum class LogLevel { kDebug = 0, kInfo = 1, kError = 2 };
enum class LogEncoding { kJson, kConsole };

using LogField = std::pair<absl::string_view, absl::string_view>;

// Process-wide settings. Call once from main before threads start.
void InitLogging(absl::string_view logger, LogLevel level, LogEncoding encoding);

// Parses "debug" | "info" | "error" (Flux's --log-level values).
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text);
// Parses "json" | "console" (Flux's --log-encoding values).
absl::StatusOr<LogEncoding> ParseLogEncoding(absl::string_view text);

void Log(LogLevel level, absl::string_view msg, std::initializer_list<LogField> fields = {});
inline void LogDebug(absl::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kDebug, msg, fields);
}
inline void LogInfo(absl::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kInfo, msg, fields);
}
inline void LogError(absl::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kError, msg, fields);
}

// Appends `text` to `out` as a JSON string literal (with quotes).
void AppendJsonString(std::string& out, absl::string_view text);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_LOG_LOG_H_
