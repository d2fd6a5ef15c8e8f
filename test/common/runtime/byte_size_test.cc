#include "common/runtime/byte_size.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace gitops::common {
namespace {

TEST(ParseByteSizeTest, NumbersAndSuffixes) {
  struct Case {
    const char* text;
    int64_t want;
  };
  const std::vector<Case> cases = {
      {"0", 0},
      {"1", 1},
      {"500000", 500000},
      {"1k", 1000},
      {"3M", 3000000},
      {"2G", 2000000000},
      {"1T", 1000000000000},
      {"1Ki", 1024},
      {"100Mi", 100 << 20},
      {"2Gi", int64_t{2} << 30},
      {"1Ti", int64_t{1} << 40},
      {"007", 7},
      {"9223372036854775807", INT64_MAX},
      {"8388607Ti", int64_t{8388607} << 40},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto got = ParseByteSize(c.text);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, c.want);
  }
}

TEST(ParseByteSizeTest, RefusesAnythingElse) {
  for (const char* text :
       {"", " ", "-1", "+1", "1.5Gi", "1 Mi", " 1", "1 ", "Mi", "1K", "1KB", "1mi", "1MiB", "1m",
        "0x10", "1e6", "9223372036854775808", "8388608Ti", "10000000000G"}) {
    SCOPED_TRACE(text);
    auto got = ParseByteSize(text);
    EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
    EXPECT_NE(got.status().message().find(std::string("\"") + text + "\""), std::string::npos)
        << got.status();
  }
}

}  // namespace
}  // namespace gitops::common
