#!/usr/bin/env bash
# Python SDK check of the Data Share simulator (run by hand; not part of scripts/test).
#
# What: installs the official `azure-mgmt-datashare` (+ azure-core) into a project-local venv
# (.local/sdk-venv, cached between runs), starts `datashare-dr sim` on a free loopback port and
# runs check.py, which drives the real SDK against it: create/get/list/delete an account, share,
# data set, invitation and synchronization setting, with no deserialization error.
#
# How the SDK is pointed at plain-http loopback: `base_url=<sim url>` and a custom
# `authentication_policy` that adds `Authorization: Bearer sim` (the SDK's default
# BearerTokenCredentialPolicy refuses to send a token over http). The SDK's default api-version
# (2020-09-01) is sent, which the simulator accepts like ARM does.
#
# Usage: scripts/sdk-check/run.sh            (needs python3 with venv, network to PyPI once)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.local/sdk-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "azure-mgmt-datashare" "azure-core"
fi
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin datashare-dr
log="$(mktemp)"
"$root/target/debug/datashare-dr" sim --listen 127.0.0.1:0 --lro-delay-ms 20 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/^listening on //p' "$log" | head -n1)"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "simulator did not start:"; cat "$log"; exit 1; }
"$venv/bin/python" "$root/scripts/sdk-check/check.py" "$url"
