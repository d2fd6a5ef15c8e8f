#include "kustomize-controller/kustomize/node.h"

namespace gitops::kustomize {

const Node* Node::Find(absl::string_view key) const {
  if (kind_ != Kind::kMap) return nullptr;
  for (const Entry& e : entries_) {
    if (e.first == key) return &e.second;
  }
  return nullptr;
}

Node* Node::Find(absl::string_view key) {
  if (kind_ != Kind::kMap) return nullptr;
  for (Entry& e : entries_) {
    if (e.first == key) return &e.second;
  }
  return nullptr;
}

Node& Node::operator[](absl::string_view key) {
  if (kind_ != Kind::kMap) {
    kind_ = Kind::kMap;
    scalar_.clear();
    items_.clear();
  }
  for (Entry& e : entries_) {
    if (e.first == key) return e.second;
  }
  entries_.emplace_back(std::string(key), Node());
  return entries_.back().second;
}

bool Node::Erase(absl::string_view key) {
  if (kind_ != Kind::kMap) return false;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->first == key) {
      entries_.erase(it);
      return true;
    }
  }
  return false;
}

const Node* Node::FindPath(const std::vector<std::string>& path) const {
  const Node* n = this;
  for (const std::string& k : path) {
    n = n->Find(k);
    if (n == nullptr) return nullptr;
  }
  return n;
}

std::string Node::GetString(const std::vector<std::string>& path) const {
  const Node* n = FindPath(path);
  if (n == nullptr || !n->IsScalar() || n->IsNull()) return "";
  return n->scalar();
}

bool Node::operator==(const Node& o) const {
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::kMap: {
      if (entries_.size() != o.entries_.size()) return false;
      for (const Entry& e : entries_) {
        const Node* other = o.Find(e.first);
        if (other == nullptr || *other != e.second) return false;
      }
      return true;
    }
    case Kind::kSeq:
      return items_ == o.items_;
    default:
      return scalar_ == o.scalar_;
  }
}

}  // namespace gitops::kustomize
