#!/usr/bin/env bash
# A self-signed certificate for trying HAProxy locally: deploy/haproxy/make-cert.sh [out.pem]
# writes key and certificate into one PEM (what HAProxy's `crt` takes), for localhost and
# 127.0.0.1, valid 30 days. Default output: .local/haproxy/sdsim.pem. Not for production:
# browsers warn, and HSTS pins the name to HTTPS. Use a real certificate there.
# SDSIM_CERT_MODE=644 makes the file readable by others (the haproxy image of
# docker-compose.yml runs as its own user); default 600.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/.local/haproxy/sdsim.pem}"
mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -sha256 \
    -subj "/CN=localhost/O=sdsim local" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
(umask 077; cat "$tmp/cert.pem" "$tmp/key.pem" >"$out")
chmod "${SDSIM_CERT_MODE:-600}" "$out"
echo "$out"
