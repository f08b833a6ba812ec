#!/usr/bin/env bash
# Media relay benchmark, tongdai media vs rtpengine (userspace forwarding, table=-1):
# installs rtpengine-daemon if missing, builds tongdai and rtpgen (release), runs both
# relays pinned to one core with rtpgen on another, climbing the calls ladder until loss,
# with and without recording, and writes loadtest/results/media-<date>.md (+ .jsonl).
#
#   loadtest/media_bench.sh                                   # everything, defaults
#   loadtest/media_bench.sh --no-install --levels "100 1000" --duration 10
#   loadtest/media_bench.sh --systems rtpengine --recording off   # baseline only
#   loadtest/media_bench.sh --help                            # every runner option
#
# Options handled here: --no-install (skip apt-get), --no-build (use the binaries in
# target/release as they are). Everything else goes to the runner (media/media_bench.py).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/.." && pwd)"
export BENCH_COMMAND="loadtest/media_bench.sh $*"

install=1
build=1
args=()
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    *) args+=("$arg") ;;
  esac
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ "$install" -eq 1 ]; then
  missing=()
  command -v rtpengine >/dev/null 2>&1 || missing+=(rtpengine-daemon)
  command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "media_bench.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update
    # The package's postinst may try to start its systemd service; the benchmark never uses
    # it (it starts its own rtpengine with its own flags) and never stops it.
    as_root apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rtpengine-daemon 2>/dev/null; then
    echo "media_bench.sh: note: the system rtpengine-daemon service is running; the benchmark does not" \
         "use it but it shares the CPU. Stop it with 'systemctl stop rtpengine-daemon' for clean numbers." >&2
  fi
fi

if [ "$build" -eq 1 ]; then
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  echo "media_bench.sh: cargo build --release -p tongdai-node -p tongdai-rtpgen"
  (cd "$repo_root" && cargo build --release -p tongdai-node -p tongdai-rtpgen)
fi

cd "$here"
exec python3 -m media.media_bench "${args[@]}"
