#!/usr/bin/env bash
# Call-setup benchmark (issue 6): tongdai's B2BUA with media anchored vs Kamailio +
# rtpengine (userspace), same SIPp scenarios, same machine, same run. Installs what is
# missing (SIPp, Kamailio, rtpengine-daemon), builds tongdai (release), then measures
# calls/s (signalling only and with RTP) and concurrent calls with media (recording off
# and on), and writes loadtest/results/calls-<date>.md (+ .jsonl).
#
#   loadtest/calls_bench.sh                                    # everything, defaults (~45-60 min)
#   loadtest/calls_bench.sh --no-install --rates 50,100 --step-seconds 8 --phases cps   # quick check
#   loadtest/calls_bench.sh --systems kamailio --no-build       # the baseline alone
#   loadtest/calls_bench.sh --help                              # every runner option
#
# Options handled here: --no-install (skip apt-get), --no-build (use target/release as it
# is). Everything else goes to the runner (calls/calls_bench.py).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/.." && pwd)"
export BENCH_COMMAND="loadtest/calls_bench.sh $*"

install=1
build=1
args=()
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,15p' "$0"; cd "$here" && exec python3 -m calls.calls_bench --help ;;
    *) args+=("$arg") ;;
  esac
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ "$install" -eq 1 ]; then
  # install.sh: SIPp, Kamailio with the modules calls.cfg loads, python3 (the build below
  # is ours, hence --no-build there).
  "$here/install.sh" --no-build
  if ! command -v rtpengine >/dev/null 2>&1; then
    echo "calls_bench.sh: installing rtpengine-daemon"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update
    # The package's own service is never used nor stopped: the runner starts its own.
    as_root apt-get install -y --no-install-recommends rtpengine-daemon
  fi
fi

if [ "$build" -eq 1 ]; then
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  echo "calls_bench.sh: cargo build --release -p tongdai-node"
  (cd "$repo_root" && cargo build --release -p tongdai-node)
fi

cd "$here"
exec python3 -m calls.calls_bench "${args[@]}"
