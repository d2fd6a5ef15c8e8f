#include "source-controller/git/x509_verify.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"

namespace gitops::source {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct CtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

}  // namespace

absl::Status VerifyCertificateWithCa(absl::string_view der, absl::string_view ca_pem,
                                     absl::string_view host) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<X509, X509Free> leaf(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!leaf) return absl::PermissionDeniedError("server sent an unparseable certificate");
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size())));
  int added = 0;
  while (true) {
    std::unique_ptr<X509, X509Free> ca(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!ca) break;
    if (X509_STORE_add_cert(store.get(), ca.get()) == 1) ++added;
  }
  if (added == 0) return absl::InvalidArgumentError("ca.crt holds no pem certificate");
  std::unique_ptr<X509_STORE_CTX, CtxFree> ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr) != 1) {
    return absl::InternalError("x509 store init failed");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  std::string host_str(host);
  if (X509_VERIFY_PARAM_set1_ip_asc(param, host_str.c_str()) != 1) {
    X509_VERIFY_PARAM_set1_host(param, host_str.c_str(), host_str.size());
  }
  // Intermediates in the bundle are trusted as partial chains too, like Go's
  // x509 pool does.
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    return absl::PermissionDeniedError(
        absl::StrCat("tls certificate of ", host,
                     " not trusted by ca.crt: ", X509_verify_cert_error_string(err)));
  }
  return absl::OkStatus();
}

}  // namespace gitops::source
