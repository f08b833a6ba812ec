#!/usr/bin/env bash
# REGISTER/s benchmark, tongdai vs Kamailio: installs what is missing, builds tongdai,
# runs both systems in one run and writes loadtest/results/register-<date>.md.
#
#   loadtest/register_bench.sh                      # both systems, defaults
#   loadtest/register_bench.sh --systems kamailio   # Kamailio only (no build)
#   loadtest/register_bench.sh --no-install ...     # skip install.sh
#   loadtest/register_bench.sh --help               # runner options
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export BENCH_COMMAND="loadtest/register_bench.sh $*"

install=1
args=()
build=1
prev=""
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    *) args+=("$arg") ;;
  esac
  # A run without tongdai needs no build.
  if [ "$prev" = "--systems" ] && [[ "$arg" != *tongdai* ]]; then build=0; fi
  case "$arg" in --systems=*) [[ "$arg" == *tongdai* ]] || build=0 ;; esac
  prev="$arg"
done

if [ "$install" -eq 1 ]; then
  if [ "$build" -eq 1 ]; then "$here/install.sh"; else "$here/install.sh" --no-build; fi
fi
cd "$here"
exec python3 -m bench.register_bench "${args[@]}"
