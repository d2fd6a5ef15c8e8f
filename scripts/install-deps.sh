#!/usr/bin/env bash
# Installs every build, test and demo dependency from Debian 12's archive.
# Idempotent; safe to run on a fresh machine as root (or with sudo available).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates
  # libraries the product links
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libgit2-dev libarchive-dev libyaml-cpp-dev libssl-dev zlib1g-dev
  libcurl4-openssl-dev nlohmann-json3-dev libcpp-httplib-dev libgpgme-dev
  # tests
  libgtest-dev libgmock-dev
  # real servers the integration tests start on loopback
  nginx-light fcgiwrap apache2-utils openssh-server openssh-client openssl curl procps
  tinyproxy gnupg
)

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all ${#PACKAGES[@]} packages present"
