#include "source-controller/verify/openpgp.h"

#include <gpgme.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <system_error>
#include <type_traits>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace gitops::source {
namespace {

struct CtxDeleter {
  void operator()(gpgme_ctx_t ctx) const { gpgme_release(ctx); }
};
using CtxPtr = std::unique_ptr<std::remove_pointer_t<gpgme_ctx_t>, CtxDeleter>;

struct DataDeleter {
  void operator()(gpgme_data_t data) const { gpgme_data_release(data); }
};
using DataPtr = std::unique_ptr<std::remove_pointer_t<gpgme_data_t>, DataDeleter>;

struct KeyDeleter {
  void operator()(gpgme_key_t key) const { gpgme_key_unref(key); }
};
using KeyPtr = std::unique_ptr<std::remove_pointer_t<gpgme_key_t>, KeyDeleter>;

constexpr char kNoMatchingKey[] =
    "unable to verify payload with any of the given key rings: no matching key";

std::string GpgError(gpgme_error_t err) {
  char buf[256];
  buf[0] = '\0';
  gpgme_strerror_r(err, buf, sizeof(buf));
  return buf;
}

// gpgme must be initialized once per process before any context is made
// (gpgme_check_version also sets SIGPIPE to SIG_IGN, so a gpg that dies while
// we write to it cannot kill the controller).
const absl::Status& InitGpgme() {
  static const absl::Status* status = [] {
    if (gpgme_check_version(nullptr) == nullptr) {
      return new absl::Status(absl::UnavailableError("gpgme initialization failed"));
    }
    gpgme_error_t err = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
    if (err != 0) {
      return new absl::Status(absl::UnavailableError(
          absl::StrCat("gpg (GnuPG) is not usable for signature verification: ", GpgError(err))));
    }
    return new absl::Status();
  }();
  return *status;
}

// A private GnuPG home: a fresh 0700 directory that holds only the keys of
// one call. gpg.conf keeps gpg from starting an agent (public keys need
// none) and from building a trust database (we only ask whether the
// signature is good, not how much the key is trusted).
absl::StatusOr<std::string> MakeGnupgHome() {
  const char* tmp = ::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat((tmp != nullptr && *tmp != '\0') ? tmp : "/tmp", "/gitops-gpg-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("create temporary GnuPG home ", pattern, ": ", std::strerror(errno)));
  }
  std::ofstream conf(pattern + "/gpg.conf");
  conf << "no-autostart\ntrust-model always\nno-auto-key-retrieve\n";
  conf.close();
  if (!conf) {
    std::error_code ec;
    std::filesystem::remove_all(pattern, ec);
    return absl::InternalError(absl::StrCat("write ", pattern, "/gpg.conf"));
  }
  return pattern;
}

DataPtr MemoryData(absl::string_view bytes, gpgme_error_t* err) {
  gpgme_data_t data = nullptr;
  *err = gpgme_data_new_from_mem(&data, bytes.data(), bytes.size(), /*copy=*/0);
  return DataPtr(*err == 0 ? data : nullptr);
}

// Imports one key ring. Returns false (with the reason) when it holds no
// usable key.
bool ImportKeyRing(gpgme_ctx_t ctx, const ArmoredKeyRing& ring, std::string* reason) {
  // Flux reads key rings with openpgp.ReadArmoredKeyRing, which wants ASCII
  // armor; gpg alone would also take binary keys.
  if (!absl::StrContains(ring.armored, "-----BEGIN PGP PUBLIC KEY BLOCK-----") &&
      !absl::StrContains(ring.armored, "-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
    *reason = "no armored data found";
    return false;
  }
  gpgme_error_t err = 0;
  DataPtr data = MemoryData(ring.armored, &err);
  if (err != 0) {
    *reason = GpgError(err);
    return false;
  }
  err = gpgme_op_import(ctx, data.get());
  gpgme_import_result_t result = gpgme_op_import_result(ctx);
  if (err != 0) {
    *reason = GpgError(err);
    return false;
  }
  if (result == nullptr || result->imported + result->unchanged == 0) {
    *reason = "no valid OpenPGP public key found";
    return false;
  }
  return true;
}

// The key ID of the primary key behind a good signature made by `fpr` (the
// fingerprint of the primary key or of a signing subkey).
absl::StatusOr<std::string> PrimaryKeyId(gpgme_ctx_t ctx, gpgme_signature_t sig) {
  if (sig->key != nullptr && sig->key->subkeys != nullptr && sig->key->subkeys->keyid != nullptr) {
    return std::string(sig->key->subkeys->keyid);
  }
  if (sig->fpr == nullptr) return absl::InternalError("gpg reported a good signature without key");
  gpgme_key_t raw = nullptr;
  gpgme_error_t err = gpgme_get_key(ctx, sig->fpr, &raw, /*secret=*/0);
  if (err != 0) {
    return absl::InternalError(absl::StrCat("look up signing key: ", GpgError(err)));
  }
  KeyPtr key(raw);
  if (key->subkeys == nullptr || key->subkeys->keyid == nullptr) {
    return absl::InternalError("signing key has no primary key");
  }
  return std::string(key->subkeys->keyid);
}

}  // namespace

absl::StatusOr<std::string> VerifyOpenPgpSignature(absl::string_view signature,
                                                   absl::string_view payload,
                                                   const std::vector<ArmoredKeyRing>& key_rings) {
  if (key_rings.empty()) return absl::InvalidArgumentError("no key rings given");
  if (const absl::Status& init = InitGpgme(); !init.ok()) return init;

  absl::StatusOr<std::string> home = MakeGnupgHome();
  if (!home.ok()) return home.status();
  absl::Cleanup remove_home = [&home] {
    std::error_code ec;
    std::filesystem::remove_all(*home, ec);
    if (ec) {
      common::LogError("remove temporary GnuPG home failed",
                       {{"path", *home}, {"error", ec.message()}});
    }
  };

  gpgme_ctx_t raw_ctx = nullptr;
  gpgme_error_t err = gpgme_new(&raw_ctx);
  if (err != 0) return absl::InternalError(absl::StrCat("gpgme context: ", GpgError(err)));
  CtxPtr ctx(raw_ctx);
  err = gpgme_set_protocol(ctx.get(), GPGME_PROTOCOL_OpenPGP);
  if (err == 0) {
    err = gpgme_ctx_set_engine_info(ctx.get(), GPGME_PROTOCOL_OpenPGP, nullptr, home->c_str());
  }
  if (err != 0) return absl::InternalError(absl::StrCat("gpgme engine: ", GpgError(err)));
  gpgme_set_offline(ctx.get(), 1);

  // Import every readable key ring; like Flux, an unreadable one only matters
  // when none can be read.
  bool any_read = false;
  std::string first_error;
  for (const ArmoredKeyRing& ring : key_rings) {
    std::string reason;
    if (ImportKeyRing(ctx.get(), ring, &reason)) {
      any_read = true;
    } else if (first_error.empty()) {
      first_error = absl::StrCat("unable to read armored key ring '", ring.name, "': ", reason);
    }
  }
  if (!any_read) return absl::InvalidArgumentError(first_error);

  gpgme_error_t sig_err = 0, text_err = 0;
  DataPtr sig_data = MemoryData(signature, &sig_err);
  DataPtr text_data = MemoryData(payload, &text_err);
  if (sig_err != 0 || text_err != 0) {
    return absl::InternalError(
        absl::StrCat("gpgme data: ", GpgError(sig_err ? sig_err : text_err)));
  }
  err = gpgme_op_verify(ctx.get(), sig_data.get(), text_data.get(), nullptr);
  if (err != 0) {
    // Not an OpenPGP signature gpg can parse: as in Flux, no key verifies it.
    common::LogDebug("gpg verify failed", {{"error", GpgError(err)}});
    return absl::PermissionDeniedError(kNoMatchingKey);
  }
  gpgme_verify_result_t result = gpgme_op_verify_result(ctx.get());
  for (gpgme_signature_t sig = result != nullptr ? result->signatures : nullptr; sig != nullptr;
       sig = sig->next) {
    // A good signature has status 0; gpg reports an expired or revoked key
    // and an expired signature with their own codes (EXPKEYSIG, REVKEYSIG,
    // EXPSIG), so those do not pass.
    if (gpgme_err_code(sig->status) != GPG_ERR_NO_ERROR) continue;
    if ((sig->summary & (GPGME_SIGSUM_KEY_REVOKED | GPGME_SIGSUM_KEY_EXPIRED |
                         GPGME_SIGSUM_SIG_EXPIRED | GPGME_SIGSUM_RED)) != 0) {
      continue;
    }
    return PrimaryKeyId(ctx.get(), sig);
  }
  return absl::PermissionDeniedError(kNoMatchingKey);
}

}  // namespace gitops::source
