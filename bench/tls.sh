#!/usr/bin/env bash
# The TLS scenario of bench/run.sh (issue 16): what TLS costs client_credentials
# over HTTP.
#
#   bench/tls.sh --bin BIN --results FILE [--postgres] [--seconds S]
#                [--rounds R] [--connections C]
#
# Two servers on one fresh database, the same but for TLS: one plaintext, one
# with a self-signed P-256 certificate made with openssl. wrk drives
# client_credentials at each in turn, R rounds of S seconds (default 5 of 2):
# first on keep-alive connections, where the TLS server should stay within
# 15 % of the plaintext one, then with a new connection for every request
# (`Connection: close`), whose rate is new connections per second and whose
# extra server CPU is what a handshake costs. Appends one JSON line per window
# to FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

bin=
results=
backend=sqlite
seconds=2
rounds=5
connections=32
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift ;;
        --results) results=$2; shift ;;
        --postgres) backend=postgres ;;
        --seconds) seconds=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --connections) connections=$2; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$bin" ] || [ -z "$results" ]; then
    echo "usage: $0 --bin BIN --results FILE [--postgres] [--seconds S] [--rounds R] [--connections C]" >&2
    exit 2
fi
need_wrk
if ! command -v openssl >/dev/null 2>&1; then
    echo "installing openssl" >&2
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi

start_work tls
$bin migrate --database-url "$db" >/dev/null
client=$($bin client create --database-url "$db" --name bench --grant-types client_credentials --scopes read)
basic=$(printf '%s:%s' "$(echo "$client" | json_field client_id)" "$(echo "$client" | json_field client_secret)" | base64 -w0)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null

RUST_LOG=info $bin serve --database-url "$db" --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 \
    2> "$work/plain.log" &
plain_pid=$!
pids+=($plain_pid)
RUST_LOG=info $bin serve --database-url "$db" --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 \
    --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" 2> "$work/tls.log" &
tls_pid=$!
pids+=($tls_pid)
plain_url="http://$(address "$work/plain.log" HTTP)/oauth/token"
tls_url="https://$(address "$work/tls.log" HTTP)/oauth/token"

# wrk_line [WRK ARGS...] URL: client_credentials for one window; wrk's JSON line.
wrk_line() {
    BODY=grant_type=client_credentials BASIC="$basic" \
        wrk -t2 -c"$connections" -d"${seconds}s" -s bench/wrk.lua "$@" | tail -n 1
}

# window LABEL PHASE PID URL ROUND [WRK ARGS...]: one window of wrk, as a JSON line.
window() {
    local label=$1 phase=$2 pid=$3 url=$4 round=$5 line
    shift 5
    line=$(measured "$pid" wrk_line "$@" "$url")
    echo "{\"label\":\"$label\",\"transport\":\"http\",\"phase\":\"$phase\",\"group\":\"tls-$phase\",\"round\":$round,${line#\{}" |
        tee -a "$results"
}

echo "== tls: $rounds rounds of ${seconds}s, keep-alive then a new connection per request" >&2
for round in $(seq 1 "$rounds"); do
    window client_credentials-http-plaintext keep-alive "$plain_pid" "$plain_url" "$round"
    window client_credentials-http-tls keep-alive "$tls_pid" "$tls_url" "$round"
done
for round in $(seq 1 "$rounds"); do
    window new-connections-http new-connections "$plain_pid" "$plain_url" "$round" -H "Connection: close"
    window new-connections-http-tls new-connections "$tls_pid" "$tls_url" "$round" -H "Connection: close"
done
