#!/usr/bin/env bash
# Installs what the loadtest benchmarks need on a Debian/Ubuntu machine and builds
# tongdai in release mode. Idempotent: packages already present are not reinstalled,
# cargo rebuilds only what changed. Also sets up target/loadtest-venv (matplotlib from
# PyPI), which loadtest/run uses for its PNG plots and nothing else.
#
#   loadtest/install.sh             # packages + venv + `cargo build --release -p tongdai-node`
#   loadtest/install.sh --no-build  # packages + venv only (e.g. a Kamailio-only run)
set -euo pipefail

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# command -> Debian package providing it
declare -A pkg_for=(
  [sipp]=sip-tester
  [kamailio]=kamailio
  [kamcmd]=kamailio
  [python3]=python3
  [curl]=curl
)
missing=()
for cmd in "${!pkg_for[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_for[$cmd]}")
done
# The Kamailio configs (kamailio.cfg, calls.cfg) load these modules; all ship in the
# base `kamailio` package.
moddir=/usr/lib/x86_64-linux-gnu/kamailio/modules
for mod in db_text htable auth usrloc registrar sl pv maxfwd textops siputils kex ctl \
           tm tmx rr dialog rtpengine; do
  if command -v kamailio >/dev/null 2>&1 && [ ! -e "$moddir/$mod.so" ]; then
    echo "install.sh: Kamailio module $mod.so missing from $moddir" >&2
    missing+=(kamailio)
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "install.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update
  as_root apt-get install -y --no-install-recommends "${missing[@]}"
fi
# The Debian package enables a kamailio service on :5060; the benchmark starts its own
# instance and must not compete with one, so say so if it is running (never stop it).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet kamailio 2>/dev/null; then
  echo "install.sh: note: the system kamailio service is running; the benchmark does not use it" \
       "but it shares the CPU. Stop it with 'systemctl stop kamailio' for clean numbers." >&2
fi

# loadtest/run draws its plots with matplotlib in a virtualenv of its own (the runners
# themselves are Python standard library only).
venv="$repo_root/target/loadtest-venv"
if ! "$venv/bin/python" -c "import matplotlib" >/dev/null 2>&1; then
  if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y --no-install-recommends python3-venv
  fi
  echo "install.sh: creating $venv with matplotlib (for loadtest/run's plots)"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet matplotlib
fi
echo "install.sh: matplotlib: $("$venv/bin/python" -c 'import matplotlib; print(matplotlib.__version__)')"

echo "install.sh: sipp: $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1)"
echo "install.sh: kamailio: $(kamailio -v 2>&1 | head -1)"

[ "$build" -eq 1 ] || exit 0

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "install.sh: installing the Rust toolchain with rustup (https://rustup.rs)"
  as_root apt-get install -y --no-install-recommends build-essential pkg-config
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cc >/dev/null 2>&1; then
  as_root apt-get install -y --no-install-recommends build-essential pkg-config
fi

echo "install.sh: cargo build --release -p tongdai-node"
(cd "$repo_root" && cargo build --release -p tongdai-node)
if [ ! -x "$repo_root/target/release/tongdai" ]; then
  echo "install.sh: the build finished but $repo_root/target/release/tongdai does not exist;" \
       "the tongdai binary is not part of this checkout yet." >&2
  exit 1
fi
echo "install.sh: built $repo_root/target/release/tongdai"
