#include "common/log/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gitops::common {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{true};
// Set once before threads start; read-only afterwards.
std::string* g_logger = new std::string("gitops");

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void InitLogging(absl::string_view logger, LogLevel level, LogEncoding encoding) {
  *g_logger = std::string(logger);
  g_level.store(static_cast<int>(level));
  g_json.store(encoding == LogEncoding::kJson);
}

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text) {
  if (text == "debug" || text == "trace") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid log level \"", text, "\": want debug, info or error"));
}

absl::StatusOr<LogEncoding> ParseLogEncoding(absl::string_view text) {
  if (text == "json") return LogEncoding::kJson;
  if (text == "console") return LogEncoding::kConsole;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid log encoding \"", text, "\": want json or console"));
}

void AppendJsonString(std::string& out, absl::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void Log(LogLevel level, absl::string_view msg, std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::string line;
  line.reserve(128 + msg.size());
  if (g_json.load(std::memory_order_relaxed)) {
    line += "{\"level\":";
    AppendJsonString(line, LevelName(level));
    line += ",\"ts\":";
    AppendJsonString(line, ts);
    line += ",\"logger\":";
    AppendJsonString(line, *g_logger);
    line += ",\"msg\":";
    AppendJsonString(line, msg);
    for (const auto& [key, value] : fields) {
      line.push_back(',');
      AppendJsonString(line, key);
      line.push_back(':');
      AppendJsonString(line, value);
    }
    line += "}\n";
  } else {
    absl::StrAppend(&line, ts, "\t", LevelName(level), "\t", *g_logger, "\t", msg);
    for (const auto& [key, value] : fields) absl::StrAppend(&line, "\t", key, "=", value);
    line.push_back('\n');
  }
  // One write per line keeps lines whole across threads.
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace gitops::common
