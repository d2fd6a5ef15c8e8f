// Per-remote TLS trust: verifies a server certificate against a PEM CA
// bundle (libgit2 1.5's mbedTLS CA setting is process-global, so the fetcher
// checks a custom CA itself in the certificate_check callback).
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_X509_VERIFY_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_X509_VERIFY_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace gitops::source {

// Verifies the DER leaf certificate `der` chains to a certificate in
// `ca_pem` (one or more PEM certificates, which may include intermediates),
// is within its validity period, and is valid for DNS name or IP `host`.
// PermissionDenied with the reason otherwise; InvalidArgument when `ca_pem`
// holds no certificate.
absl::Status VerifyCertificateWithCa(absl::string_view der, absl::string_view ca_pem,
                                     absl::string_view host);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_X509_VERIFY_H_
