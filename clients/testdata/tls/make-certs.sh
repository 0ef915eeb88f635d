#!/usr/bin/env bash
# Makes the test certificates the SDK tests use (run once; the PEMs are committed so tests
# need no openssl). Documentation names only: resolver.test is reserved (RFC 6761).
#   ca.pem            test CA the clients are told to trust
#   server.pem/-key   signed by ca: DNS:resolver.test, IP:127.0.0.1
#   name-only.pem/-key signed by ca: DNS:resolver.test only (fails the default IP check)
#   other-ca.pem      a CA the clients never trust
#   untrusted.pem/-key signed by other-ca: DNS:resolver.test, IP:127.0.0.1
#   pins.json         SPKI pins of ca.pem and server.pem
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
days=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
ca() { # name cn
  key "$tmp/$1-key.pem"
  openssl req -x509 -new -key "$tmp/$1-key.pem" -subj "/CN=$2" -days $days -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
}
leaf() { # name ca san
  key "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=resolver.test" -out "$tmp/$1.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" >"$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$2.pem" -CAkey "$tmp/$2-key.pem" -CAcreateserial \
    -CAserial "$tmp/$2.srl" -days $days -extfile "$tmp/$1.ext" -out "$1.pem"
}
ca ca "httpdns SDK test CA"
ca other-ca "httpdns SDK untrusted test CA"
leaf server ca "DNS:resolver.test,IP:127.0.0.1"
leaf name-only ca "DNS:resolver.test"
leaf untrusted other-ca "DNS:resolver.test,IP:127.0.0.1"
# SPKI pins (base64 SHA-256 of the public key), checked by both SDKs' pin code.
pin() { openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64; }
printf '{"ca.pem": "%s", "server.pem": "%s"}\n' "$(pin ca.pem)" "$(pin server.pem)" >pins.json
