// A YAML/JSON value tree as kustomize sees a resource: maps keep insertion
// order (the emitter sorts keys), scalars keep their resolved type. Plain
// values; copying a Node deep-copies it. Not thread-safe.
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_NODE_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_NODE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace gitops::kustomize {

class Node {
 public:
  enum class Kind : uint8_t { kNull, kBool, kInt, kFloat, kTimestamp, kString, kMap, kSeq };
  using Entry = std::pair<std::string, Node>;

  Node() = default;
  static Node Null() { return Node(); }
  static Node Map() { return Node(Kind::kMap); }
  static Node Seq() { return Node(Kind::kSeq); }
  static Node String(std::string s) { return Node(Kind::kString, std::move(s)); }
  static Node Bool(bool b) { return Node(Kind::kBool, b ? "true" : "false"); }
  static Node Int(int64_t v) { return Node(Kind::kInt, std::to_string(v)); }
  // A scalar of `kind` with its source text (e.g. "0644" for an int); the
  // emitter prints the canonical form (420).
  static Node Scalar(Kind kind, std::string text) { return Node(kind, std::move(text)); }

  Kind kind() const { return kind_; }
  bool IsNull() const { return kind_ == Kind::kNull; }
  bool IsMap() const { return kind_ == Kind::kMap; }
  bool IsSeq() const { return kind_ == Kind::kSeq; }
  bool IsString() const { return kind_ == Kind::kString; }
  bool IsScalar() const { return kind_ != Kind::kMap && kind_ != Kind::kSeq; }

  // Scalar text as written in the source (kustomize keeps it, e.g. for
  // annotations); EmitYaml prints numbers, booleans and dates canonically.
  // Empty for collections.
  const std::string& scalar() const { return scalar_; }
  void set_string(std::string s) {
    kind_ = Kind::kString;
    scalar_ = std::move(s);
  }

  // Map access. Find returns nullptr when absent or when this is not a map.
  const Node* Find(absl::string_view key) const;
  Node* Find(absl::string_view key);
  // Returns the value for `key`, inserting a null at the end if absent.
  // Turns a null node into an empty map first.
  Node& operator[](absl::string_view key);
  // Removes `key`; returns whether it was present.
  bool Erase(absl::string_view key);
  std::vector<Entry>& entries() { return entries_; }
  const std::vector<Entry>& entries() const { return entries_; }

  // Sequence access.
  std::vector<Node>& items() { return items_; }
  const std::vector<Node>& items() const { return items_; }

  // Follows a path of map keys; nullptr when any step is missing.
  const Node* FindPath(const std::vector<std::string>& path) const;
  // String value at a path, or "" when absent or not a scalar.
  std::string GetString(const std::vector<std::string>& path) const;

  // True for a plain scalar that YAML 1.1 (how kustomize reads its own
  // kustomization file) would not read as a string, e.g. `on`, `y`.
  bool yaml11_non_string() const { return yaml11_non_string_; }
  void set_yaml11_non_string(bool v) { yaml11_non_string_ = v; }

  // True for a string that was written unquoted and untagged in a source
  // file (its type is re-resolved when kustomize replaces its text).
  bool plain() const { return plain_; }
  void set_plain(bool v) { plain_ = v; }

  // True for a scalar kustomize holds without a YAML tag (an image its
  // images transformer rewrote): replacing its text re-reads its type.
  bool untagged() const { return untagged_; }
  void set_untagged(bool v) { untagged_ = v; }

  // Identity of a label/annotation value node that kustomize inserted into
  // several maps at once (it shares one YAML node between them, so a later
  // in-place update of one shows in all). 0 when not shared.
  uint32_t share_id() const { return share_id_; }
  void set_share_id(uint32_t id) { share_id_ = id; }

  bool operator==(const Node& o) const;
  bool operator!=(const Node& o) const { return !(*this == o); }

 private:
  explicit Node(Kind k) : kind_(k) {}
  Node(Kind k, std::string s) : kind_(k), scalar_(std::move(s)) {}

  Kind kind_ = Kind::kNull;
  bool yaml11_non_string_ = false;
  bool plain_ = false;
  bool untagged_ = false;
  uint32_t share_id_ = 0;
  std::string scalar_;
  std::vector<Entry> entries_;
  std::vector<Node> items_;
};

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_NODE_H_
