#include "test/apiserver/tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/status/status.h"

namespace gitops::testing {
namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Deleter>;

Ptr<EVP_PKEY> NewKey() { return Ptr<EVP_PKEY>(EVP_EC_gen("P-256")); }

bool AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return ext != nullptr && X509_add_ext(cert, ext.get(), -1) == 1;
}

enum class Usage { kCa, kServer, kClient };

Ptr<X509> NewCert(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, Usage usage) {
  Ptr<X509> cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  bool ok = true;
  if (usage == Usage::kClient) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("system:masters"), -1, -1, 0);
  }
  if (usage == Usage::kCa) {
    ok = ok && AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    ok = ok && AddExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    ok = ok && AddExt(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else if (usage == Usage::kClient) {
    ok = ok && AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    ok = ok && AddExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    ok = ok && AddExt(cert.get(), signer, NID_ext_key_usage, "clientAuth");
  } else {
    ok = ok && AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    ok = ok && AddExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    ok = ok && AddExt(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    ok = ok && AddExt(cert.get(), signer, NID_subject_alt_name,
                      "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:127.0.0.1");
  }
  if (!ok || X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return nullptr;
  return cert;
}

std::string CertPem(X509* cert) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string KeyPem(EVP_PKEY* key) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

absl::StatusOr<ServingCertificates> GenerateServingCertificates() {
  Ptr<EVP_PKEY> ca_key = NewKey();
  Ptr<EVP_PKEY> server_key = NewKey();
  if (!ca_key || !server_key) return absl::InternalError("generate EC keys failed");
  Ptr<X509> ca = NewCert("test-apiserver-ca", ca_key.get(), nullptr, ca_key.get(), Usage::kCa);
  if (!ca) return absl::InternalError("self-sign CA certificate failed");
  Ptr<X509> cert =
      NewCert("test-apiserver", server_key.get(), ca.get(), ca_key.get(), Usage::kServer);
  if (!cert) return absl::InternalError("sign serving certificate failed");
  Ptr<EVP_PKEY> client_key = NewKey();
  if (!client_key) return absl::InternalError("generate EC keys failed");
  Ptr<X509> client =
      NewCert("test-admin", client_key.get(), ca.get(), ca_key.get(), Usage::kClient);
  if (!client) return absl::InternalError("sign client certificate failed");
  return ServingCertificates{CertPem(ca.get()), CertPem(cert.get()), KeyPem(server_key.get()),
                             CertPem(client.get()), KeyPem(client_key.get())};
}

}  // namespace gitops::testing
