// A throwaway certificate authority and a serving certificate for the test
// API server (DNS:localhost, IP:127.0.0.1), generated in memory with OpenSSL.
#ifndef GITOPS_TEST_APISERVER_TLS_H_
#define GITOPS_TEST_APISERVER_TLS_H_

#include <string>

#include "absl/status/statusor.h"

namespace gitops::testing {

struct ServingCertificates {
  std::string ca_pem;           // the CA certificate clients trust
  std::string cert_pem;         // the server certificate, signed by the CA
  std::string key_pem;          // the server's private key (PKCS#8)
  std::string client_cert_pem;  // a client certificate (CN=test-admin, O=system:masters)
  std::string client_key_pem;
};

// Generates a fresh ECDSA P-256 CA and server certificate valid for a day.
absl::StatusOr<ServingCertificates> GenerateServingCertificates();

}  // namespace gitops::testing

#endif  // GITOPS_TEST_APISERVER_TLS_H_
