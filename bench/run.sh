#!/usr/bin/env bash
# Measures oauthd against this machine's own floor and writes BENCHMARKS.md.
#
#   bench/run.sh [--postgres] [--duration SECONDS] [--connections N]
#
# Builds release, starts oauthd on a fresh SQLite database (or, with --postgres,
# a fresh PostgreSQL database), creates a client and a user through the CLI, and
# drives each scenario for a fixed time at a fixed concurrency: HTTP with wrk
# (installed from Debian if missing), gRPC with examples/load.rs. Exits non-zero
# when any scenario had errors.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
connections=32
backend=sqlite
while [ $# -gt 0 ]; do
    case "$1" in
        --postgres) backend=postgres ;;
        --duration) duration=$2; shift ;;
        --connections) connections=$2; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

cargo build --release --locked --bin oauthd --example load --example floor
bin=target/release/oauthd
load=target/release/examples/load
floor=target/release/examples/floor

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "$backend" = postgres ]; then dropdb -h 127.0.0.1 -U postgres --if-exists "$pgname" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ "$backend" = postgres ]; then
    . .ci/postgres.sh
    pgname="oauthd_bench_$$"
    createdb -h 127.0.0.1 -U postgres "$pgname"
    db="postgres://postgres@127.0.0.1:5432/$pgname"
else
    db="sqlite://$work/bench.db?mode=rwc"
fi

# Waits for "<what> listening on ADDR" in a log file and prints ADDR.
address() {
    local log=$1 what=$2
    for _ in $(seq 1 300); do
        local addr
        addr=$(grep -o "$what listening on [0-9.:]*" "$log" 2>/dev/null | head -n 1 | awk '{print $4}')
        if [ -n "$addr" ]; then echo "$addr"; return; fi
        sleep 0.05
    done
    echo "no $what address in $log" >&2
    exit 1
}

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

"$floor" > "$work/floor.log" 2>&1 &
pids+=($!)
floor_http=$(address "$work/floor.log" HTTP)
floor_grpc=$(address "$work/floor.log" gRPC)

$bin migrate --database-url "$db" >/dev/null
client=$($bin client create --database-url "$db" --name bench \
    --grant-types client_credentials,password,refresh_token --scopes "read write")
client_id=$(echo "$client" | json_field client_id)
client_secret=$(echo "$client" | json_field client_secret)
printf 'bench-password\n' | $bin user create --database-url "$db" --username bench --password-stdin >/dev/null
basic=$(printf '%s:%s' "$client_id" "$client_secret" | base64 -w0)

RUST_LOG=info $bin serve --database-url "$db" --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 \
    2> "$work/server.log" &
server_pid=$!
pids+=($server_pid)
http=$(address "$work/server.log" HTTP)
grpc=$(address "$work/server.log" gRPC)

token=$(curl -s -u "$client_id:$client_secret" -d grant_type=client_credentials "http://$http/oauth/token" | json_field access_token)
results="$work/results.jsonl"
echo "{\"label\":\"meta\",\"date\":\"$(date -u +%Y-%m-%d)\",\"cores\":$(nproc),\"connections\":$connections,\"duration\":$duration}" > "$results"

http_scenario() {
    local label=$1 url=$2 body=$3
    echo "== $label" >&2
    local line
    line=$(BODY="$body" BASIC="$basic" wrk -t2 -c"$connections" -d"${duration}s" -s bench/wrk.lua "$url" | tail -n 1)
    echo "{\"label\":\"$label\",\"transport\":\"http\",${line#\{}" | tee -a "$results"
}

grpc_scenario() {
    local label=$1 addr=$2 scenario=$3
    shift 3
    echo "== $label" >&2
    $load grpc --addr "$addr" --scenario "$scenario" --label "$label" --duration "$duration" \
        --connections "$connections" --client-id="$client_id" --client-secret="$client_secret" \
        --username bench --password bench-password "$@" | tee -a "$results"
}

http_scenario floor-http "http://$floor_http/oauth/token" "grant_type=client_credentials"
grpc_scenario floor-grpc "$floor_grpc" floor
http_scenario client_credentials-http "http://$http/oauth/token" "grant_type=client_credentials"
grpc_scenario client_credentials-grpc "$grpc" client-credentials
http_scenario introspect-http "http://$http/oauth/introspect" "token=$token"
grpc_scenario introspect-grpc "$grpc" introspect
grpc_scenario refresh-grpc "$grpc" refresh
grpc_scenario password-grpc "$grpc" password

# A burst of password logins beside client_credentials traffic: Argon2 runs off
# the runtime's threads, so the client_credentials p99 must stay low.
echo "== client_credentials during a burst of logins" >&2
$load grpc --addr "$grpc" --scenario password --label password-burst --duration "$duration" \
    --connections 8 --client-id="$client_id" --client-secret="$client_secret" \
    --username bench --password bench-password > "$work/burst.json" &
burst=$!
grpc_scenario client_credentials-during-logins "$grpc" client-credentials
wait "$burst"
tee -a "$results" < "$work/burst.json"

rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
echo "{\"label\":\"rss\",\"kib\":$rss_kib}" | tee -a "$results"
kill -TERM "$server_pid"
wait "$server_pid" || true

if [ "$backend" = sqlite ]; then
    echo "== start to ready" >&2
    $load startup --bin "$bin" --database-url "$db" | tee -a "$results"
fi

$load report --results "$results" --backend "$backend" > BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
if grep -q '"errors":[1-9]' "$results"; then
    echo "some scenarios had errors" >&2
    exit 1
fi
