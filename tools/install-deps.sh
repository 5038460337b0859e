#!/usr/bin/env bash
# Installs, idempotently, everything apphost needs to build, run and test on
# Debian 12. Safe to run again: apt skips what is present.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config libpcre2-dev   # yang2 "bundled" builds libyang
  crun runc squashfs-tools busybox-static          # containers and the test image
  iproute2 util-linux kmod procps psmisc           # netns, veth, losetup, mounts
  libyang2-tools                                   # yanglint for the schema checks
  netconfd yangcli                                 # peer for the benchmark, yangcli interop
  openssh-client sshpass python3 python3-venv python3-pip
  curl ca-certificates
  libcurl4-openssl-dev openssl                     # image import (curl crate links libcurl)
  tftpd-hpa openssh-server                         # image import tests: tftp, scp/sftp servers
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
