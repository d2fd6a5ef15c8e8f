// Streaming SHA-256 with Flux's digest format ("sha256:<hex>").
#ifndef GITOPS_COMMON_CRYPTO_SHA256_H_
#define GITOPS_COMMON_CRYPTO_SHA256_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::common {

// Incremental SHA-256. Not thread-safe; one instance per stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  // Returns lowercase hex of the digest. The hasher must not be updated after.
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "sha256:" + hex of the whole file. NotFound / Internal on I/O failure.
absl::StatusOr<std::string> Sha256File(const std::string& path);

// "sha256:" + hex of `data`.
std::string Sha256Digest(absl::string_view data);

// True when `digest` has the form "sha256:" followed by 64 lowercase hex chars.
bool IsValidDigest(absl::string_view digest);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_CRYPTO_SHA256_H_
