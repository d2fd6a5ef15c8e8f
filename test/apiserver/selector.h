// Label and field selectors as the API server parses them from
// `labelSelector=` and `fieldSelector=` query parameters.
#ifndef GITOPS_TEST_APISERVER_SELECTOR_H_
#define GITOPS_TEST_APISERVER_SELECTOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace gitops::testing {

class Selector {
 public:
  // "a=b,c!=d,e in (x,y),f notin (z),g,!h". InvalidArgument on bad syntax.
  static absl::StatusOr<Selector> ParseLabels(const std::string& text);
  // "metadata.name=x,metadata.namespace!=y,type=Warning" (= and == and != only).
  static absl::StatusOr<Selector> ParseFields(const std::string& text);

  bool Empty() const { return reqs_.empty(); }
  bool Matches(const nlohmann::json& obj) const;

 private:
  enum class Op { kEq, kNe, kIn, kNotIn, kExists, kNotExists };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };
  bool fields_ = false;
  std::vector<Requirement> reqs_;
};

}  // namespace gitops::testing

#endif  // GITOPS_TEST_APISERVER_SELECTOR_H_
