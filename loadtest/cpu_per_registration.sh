#!/usr/bin/env bash
# Quick A/B helper: CPU µs per registration of one tongdai binary at one offered rate.
#   loadtest/cpu_per_registration.sh BINARY RATE CALLS
# Starts BINARY as `tongdai up` (one replica + node in one process) with 10,000 generated
# users on free loopback ports,
# runs SIPp (tests/scenarios/register_auth.xml, one source address) for CALLS
# registrations at RATE/s (bounded by CALLS and a 120 s timeout), and prints the
# server's utime+stime per 200 OK. Kills only the node it started. Compare two binaries
# by alternating runs in one session; the full benchmark is register_bench.sh.
set -euo pipefail
BIN=${1:?binary}; RATE=${2:?rate}; CALLS=${3:?calls}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mktemp -d); trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SIP=$(free_port); HTTP=$(free_port); SIPP=$(free_port); API=$(free_port)
QUIC=$(python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$DIR/node.toml" <<TOML
[sip]
listen_udp = "127.0.0.1:$SIP"
listen_tcp = "off"
[http]
listen = "127.0.0.1:$HTTP"
[log]
level = "warn"
[replica]
listen = "127.0.0.1:$QUIC"
api_listen = "127.0.0.1:$API"
data_dir = "$DIR/data"
[control_plane]
certs_dir = "$DIR/certs"
[registrar]
algorithms = ["MD5", "SHA-256"]
[demo]
realm = "bench"
first_extension = 100000
count = 10000
password_prefix = "pw"
TOML
python3 -c "
print('SEQUENTIAL')
for u in range(100000, 110000): print(f'{u};[authentication username={u} password=pw{u}];bench')" > "$DIR/users.csv"
"$BIN" up --config "$DIR/node.toml" > "$DIR/node.log" 2>&1 &
PID=$!
for _ in $(seq 300); do curl -sf "127.0.0.1:$HTTP/healthz" >/dev/null && break; sleep 0.1; done
t0=$(awk '{print $14+$15}' /proc/$PID/stat)
timeout 120 sipp "127.0.0.1:$SIP" -sf "$ROOT/tests/scenarios/register_auth.xml" -inf "$DIR/users.csv" \
  -r "$RATE" -rp 1000 -m "$CALLS" -i 127.0.0.1 -p "$SIPP" -nostdin > "$DIR/sipp.out" 2>&1 || true
t1=$(awk '{print $14+$15}' /proc/$PID/stat)
ok=$(grep "Successful call" "$DIR/sipp.out" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
failed=$(grep "Failed call" "$DIR/sipp.out" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
python3 -c "t=($t1-$t0)/$(getconf CLK_TCK); ok=int('${ok:-0}'); print(f'rate=$RATE ok={ok} failed=${failed:-?} cpu_s={t:.2f} us_per_reg={t*1e6/max(ok,1):.1f}')"
