#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, when missing:
# protoc (protobuf-compiler, for the etcd client's generated code), etcd (etcd-server,
# etcd-client; tests/cluster.rs starts real etcd members), and the real DNS/DoH clients
# the integration tests drive (kdig, dig, curl, openssl). Called by .ci/run before
# clippy and by .ci/test, so either works on a fresh machine.
set -euo pipefail

missing=()
command -v protoc >/dev/null || missing+=(protobuf-compiler)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v kdig >/dev/null || missing+=(knot-dnsutils)
command -v dig >/dev/null || missing+=(dnsutils)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "== installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "need root or sudo to apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
# Debian starts the etcd service on install; the tests start their own members on
# ephemeral ports, so the packaged one (on 2379) is not needed.
