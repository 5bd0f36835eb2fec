#!/usr/bin/env bash
# The purge scenario of bench/run.sh (issue 15): what a purge of many expired
# rows costs the token requests served meanwhile.
#
#   bench/purge.sh --bin BIN --load LOAD --results FILE [--postgres]
#                  [--rows N] [--seconds S] [--connections C]
#
# N expired refresh tokens (default 1,000,000) are written straight into a
# fresh database. A server with no janitor measures client_credentials and
# refresh over gRPC for S seconds each (default 4): the baseline. Then a server
# whose janitor runs every second replaces it, and the same two scenarios
# alternate in S-second windows until its purge has deleted every row
# (`oauthd_purged_rows_total` in /metrics). Appends one JSON line per window,
# and one with the purge's duration, to FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

bin=
load=
results=
backend=sqlite
rows=1000000
seconds=4
connections=32
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift ;;
        --load) load=$2; shift ;;
        --results) results=$2; shift ;;
        --postgres) backend=postgres ;;
        --rows) rows=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --connections) connections=$2; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$bin" ] || [ -z "$load" ] || [ -z "$results" ]; then
    echo "usage: $0 --bin BIN --load LOAD --results FILE [--postgres] [--rows N] [--seconds S] [--connections C]" >&2
    exit 2
fi

start_work purge
if [ "$backend" = postgres ]; then
    run_sql() { psql -q -X -v ON_ERROR_STOP=1 "$db" -c "$1" >/dev/null; }
    series="SELECT i FROM generate_series(1, $rows) AS s(i)"
    hex="md5(i::text)"
else
    if ! command -v sqlite3 >/dev/null 2>&1; then
        echo "installing sqlite3"
        apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null
    fi
    run_sql() { sqlite3 -bail -cmd ".timeout 5000" "$file" "$1" >/dev/null; }
    series="WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $rows) SELECT i FROM s"
    hex="printf('%032x', i)"
fi

$bin migrate --database-url "$db" >/dev/null
client=$($bin client create --database-url "$db" --name bench \
    --grant-types client_credentials,password,refresh_token --scopes "read write")
client_id=$(echo "$client" | json_field client_id)
client_secret=$(echo "$client" | json_field client_secret)
printf 'bench-password\n' | $bin user create --database-url "$db" --username bench --password-stdin >/dev/null

# Expired refresh tokens of the bench client, each of its own family, written
# as the schema has them; the hashes are distinct hex strings.
expired=$(($(date +%s) - 60))
echo "== purge: writing $rows expired refresh tokens" >&2
run_sql "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, username, scope, \
grant_scope, issued_at, expires_at, used_at, revoked, access_jti, access_expires_at, parent_hash) \
SELECT $hex, $hex, '$client_id', NULL, NULL, 'read', 'read', $((expired - 3600)), $expired, \
NULL, FALSE, $hex, $((expired - 3000)), NULL FROM ($series) AS n"

serve() {
    local name=$1
    shift
    RUST_LOG=warn,oauthd=info $bin serve --database-url "$db" --http-addr 127.0.0.1:0 \
        --grpc-addr 127.0.0.1:0 --login-throttle-max-failures 0 \
        --login-throttle-max-concurrent 0 "$@" 2> "$work/$name.log" &
    pids+=($!)
    server_pid=$!
    grpc=$(address "$work/$name.log" gRPC)
    http=$(address "$work/$name.log" HTTP)
}

# window LABEL SCENARIO PHASE: one window of a scenario, tagged with the phase.
window() {
    local label=$1 scenario=$2 phase=$3 line
    line=$($load grpc --addr "$grpc" --scenario "$scenario" --label "$label" \
        --duration "$seconds" --connections "$connections" --client-id="$client_id" \
        --client-secret="$client_secret" --username bench --password bench-password)
    echo "${line%\}},\"phase\":\"$phase\"}" | tee -a "$results"
}

purged() {
    curl -s "http://$http/metrics" |
        awk '/^oauthd_purged_rows_total\{kind="refresh_token"\}/ {print $NF} END {}' | tail -n 1
}

serve quiet --purge-interval 0
echo "== purge: baseline, no purge running" >&2
window purge-client_credentials client-credentials baseline
window purge-refresh refresh baseline
kill -TERM "$server_pid"
wait "$server_pid" || true

serve janitor --purge-interval 1
started=$(date +%s%N)
echo "== purge: the janitor deletes $rows rows while requests are served" >&2
windows=0
while [ "$(purged)" != "$rows" ] && [ "$(purged)" != "${rows}.0" ]; do
    window purge-client_credentials client-credentials during
    window purge-refresh refresh during
    windows=$((windows + 1))
    if [ "$windows" -gt 100 ]; then
        echo "the purge did not finish; purged so far: $(purged)" >&2
        exit 1
    fi
done
# The purge ended somewhere in the last pair of windows: its duration is known
# to within that pair.
ended=$(date +%s%N)
echo "{\"label\":\"purge-run\",\"backend\":\"$backend\",\"rows\":$rows,\"windows\":$windows,\"seconds_at_most\":$(( (ended - started) / 1000000000 ))}" | tee -a "$results"
