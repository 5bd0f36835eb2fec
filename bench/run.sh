#!/usr/bin/env bash
# Measures oauthd against this machine's own floor and writes BENCHMARKS.md.
#
#   bench/run.sh [--postgres] [--duration SECONDS] [--connections N]
#                [--only revocations|purge|tls] [--before BIN] [--prebuilt DIR]
#
# Builds release, starts oauthd on a fresh SQLite database (or, with --postgres,
# a fresh PostgreSQL database), creates a client and a user through the CLI, and
# drives each scenario for a fixed time at a fixed concurrency: HTTP with wrk
# (installed from Debian if missing), gRPC with examples/load.rs. Scenarios with
# a floor alternate with it in rounds (see in_rounds). Exits non-zero when any
# scenario had errors.
#
# The revocation scenario (bench/revocations.sh), the purge scenario
# (bench/purge.sh) and the TLS scenario (bench/tls.sh) run last, on their own
# servers and databases. With --before
# BIN (an older release, say) the revocation scenario runs for that binary too,
# and the refresh scenario alternates between it, on a database of its own, and
# this build; BENCHMARKS.md shows both. --only NAME runs just that scenario and
# replaces only its section of BENCHMARKS.md. --prebuilt DIR takes oauthd and
# the load and floor examples from DIR instead of building them.
#
# BENCHMARKS.md is written for SQLite; --postgres writes BENCHMARKS-postgres.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

duration=10
connections=32
backend=sqlite
only=
before=
prebuilt=
while [ $# -gt 0 ]; do
    case "$1" in
        --postgres) backend=postgres ;;
        --only) only=$2; shift ;;
        --before) before=$2; shift ;;
        --prebuilt) prebuilt=$2; shift ;;
        --duration) duration=$2; shift ;;
        --connections) connections=$2; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

case "$only" in
    ""|revocations|purge|tls) ;;
    *) echo "--only takes: revocations, purge, tls" >&2; exit 2 ;;
esac
pg_flag=()
report_file=BENCHMARKS.md
if [ "$backend" = postgres ]; then
    pg_flag=(--postgres)
    report_file=BENCHMARKS-postgres.md
fi
if [ -n "$prebuilt" ]; then
    bin=$prebuilt/oauthd
    load=$prebuilt/load
    floor=$prebuilt/floor
else
    bin=target/release/oauthd
    load=target/release/examples/load
    floor=target/release/examples/floor
fi
# build: the binaries this run measures, unless --prebuilt gave them.
build() {
    if [ -z "$prebuilt" ]; then cargo build --release --locked --bin oauthd --example load --example floor; fi
}
# revocation_runs RESULTS: the revocation scenario, for --before's binary first.
revocation_runs() {
    echo "== revocations" >&2
    if [ -n "$before" ]; then
        bench/revocations.sh --bin "$before" --label before --results "$1" "${pg_flag[@]}"
    fi
    bench/revocations.sh --bin "$bin" --label "this build" --results "$1" "${pg_flag[@]}"
}
# purge_run RESULTS: the purge scenario, on this build.
purge_run() {
    echo "== purge" >&2
    bench/purge.sh --bin "$bin" --load "$load" --results "$1" "${pg_flag[@]}"
}
# tls_run RESULTS: the TLS scenario, on this build, in as many rounds as the others.
tls_run() {
    echo "== tls" >&2
    local rounds=5
    if [ "$duration" -lt "$rounds" ]; then rounds=$duration; fi
    bench/tls.sh --bin "$bin" --results "$1" --connections "$connections" \
        --rounds "$rounds" --seconds $((duration / rounds)) "${pg_flag[@]}"
}
if [ -n "$only" ]; then
    build
    only_results=$(mktemp)
    section_file=$(mktemp)
    trap 'rm -f "$only_results" "$section_file"' EXIT
    case "$only" in
        revocations) revocation_runs "$only_results" ;;
        purge) purge_run "$only_results" ;;
        tls) tls_run "$only_results" ;;
    esac
    "$load" report --results "$only_results" --backend "$backend" --only "$only" |
        sed '/./,$!d' > "$section_file"
    title=$(head -n 1 "$section_file")
    # Replace the section from its title to the next one, or add it at the end.
    awk -v title="$title" -v file="$section_file" '
        BEGIN { while ((getline line < file) > 0) section = section line "\n" }
        $0 == title { printf "%s", section; skipping = 1; replaced = 1; next }
        skipping && /^## / { skipping = 0; print "" }
        !skipping { print }
        END { if (!replaced) printf "\n%s", section }
    ' "$report_file" > "$report_file.new"
    mv "$report_file.new" "$report_file"
    echo "wrote the ${title#\#\# } section of $report_file" >&2
    if grep -q '"errors":[1-9]' "$only_results"; then
        echo "the $only scenario had errors" >&2
        exit 1
    fi
    exit 0
fi

need_wrk

build

start_work main

"$floor" > "$work/floor.log" 2>&1 &
floor_pid=$!
pids+=($floor_pid)
floor_http=$(address "$work/floor.log" HTTP)
floor_grpc=$(address "$work/floor.log" gRPC)

$bin migrate --database-url "$db" >/dev/null
client=$($bin client create --database-url "$db" --name bench \
    --grant-types client_credentials,password,refresh_token --scopes "read write")
client_id=$(echo "$client" | json_field client_id)
client_secret=$(echo "$client" | json_field client_secret)
# A web client for the authorization-code exchange: first-party (no consent
# page), confidential, PKCE required.
code_redirect=https://bench.example/cb
code_client=$($bin client create --database-url "$db" --name bench-web \
    --grant-types authorization_code,refresh_token --scopes "read write" \
    --redirect-uri "$code_redirect" --skip-consent)
code_client_id=$(echo "$code_client" | json_field client_id)
code_client_secret=$(echo "$code_client" | json_field client_secret)
printf 'bench-password\n' | $bin user create --database-url "$db" --username bench --password-stdin >/dev/null
basic=$(printf '%s:%s' "$client_id" "$client_secret" | base64 -w0)

# Every load connection comes from 127.0.0.1, which the login throttle would
# hold to a few password checks at a time: it is off here, so the password
# scenarios still measure Argon2.
RUST_LOG=info $bin serve --database-url "$db" --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 \
    --login-throttle-max-failures 0 --login-throttle-max-concurrent 0 \
    --authorization-code-ttl 600 \
    2> "$work/server.log" &
server_pid=$!
pids+=($server_pid)
http=$(address "$work/server.log" HTTP)
grpc=$(address "$work/server.log" gRPC)

# A second server on the same database, the same but for an HS256 key: the gap
# between its client_credentials rate and the first one's is what the default
# ES256 signature costs, and BENCHMARKS.md shows the ceiling that cost leaves.
RUST_LOG=info $bin serve --database-url "$db" --signing-alg HS256 \
    --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 2> "$work/server-hs256.log" &
hs256_pid=$!
pids+=($hs256_pid)
http_hs256=$(address "$work/server-hs256.log" HTTP)

# With --before, the older binary on a database of its own (its migrations
# stop short of this build's), set up as the first server.
if [ -n "$before" ]; then
    another_database before
    $before migrate --database-url "$other_db" >/dev/null
    before_client=$($before client create --database-url "$other_db" --name bench \
        --grant-types client_credentials,password,refresh_token --scopes "read write")
    before_client_id=$(echo "$before_client" | json_field client_id)
    before_client_secret=$(echo "$before_client" | json_field client_secret)
    printf 'bench-password\n' | $before user create --database-url "$other_db" --username bench --password-stdin >/dev/null
    RUST_LOG=info $before serve --database-url "$other_db" --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 \
        --login-throttle-max-failures 0 --login-throttle-max-concurrent 0 \
        2> "$work/server-before.log" &
    before_pid=$!
    pids+=($before_pid)
    before_grpc=$(address "$work/server-before.log" gRPC)
fi

token=$(curl -s -u "$client_id:$client_secret" -d grant_type=client_credentials "http://$http/oauth/token" | json_field access_token)
api_key=$($bin apikey create --database-url "$db" --client "$client_id" --name bench | json_field api_key)

# A scenario measured against its floor runs in rounds: a slice of the floor, then
# a slice of the scenario, `rounds` times. On a shared machine the speed moves by
# a quarter from one few-second window to the next, so a floor measured a minute
# before its scenario would mostly measure that drift; BENCHMARKS.md takes the
# median of the rounds' ratios instead.
rounds=5
if [ "$duration" -lt "$rounds" ]; then rounds=$duration; fi
slice=$((duration / rounds))

results="$work/results.jsonl"
echo "{\"label\":\"meta\",\"date\":\"$(date -u +%Y-%m-%d)\",\"cores\":$(nproc),\"connections\":$connections,\"duration\":$duration,\"rounds\":$rounds,\"slice\":$slice}" > "$results"

wrk_json() {
    local url=$1 body=$2 seconds=$3
    BODY="$body" BASIC="$basic" wrk -t2 -c"$connections" -d"${seconds}s" -s bench/wrk.lua "$url" | tail -n 1
}

# wrk_check_json URL HEADER VALUE SECONDS: GETs with one credential header.
wrk_check_json() {
    local url=$1 header=$2 value=$3 seconds=$4
    HEADER="$header" VALUE="$value" wrk -t2 -c"$connections" -d"${seconds}s" -s bench/wrk-check.lua "$url" | tail -n 1
}

# check_scenario LABEL HEADER VALUE SECONDS [TAGS]: /oauth/check with a credential.
check_scenario() {
    local label=$1 header=$2 value=$3 seconds=$4 tags=${5:-}
    local line
    line=$(measured "$server_pid" wrk_check_json "http://$http/oauth/check?scope=read" "$header" "$value" "$seconds")
    echo "{\"label\":\"$label\",\"transport\":\"http\"$tags,${line#\{}" | tee -a "$results"
}

# The database lookups of API keys the server has made so far, from /metrics.
key_lookups() {
    curl -s "http://$http/metrics" | awk '/^oauthd_store_lookups_total\{.*kind="api_key"/ {n += $NF} END {print n + 0}'
}

# http_scenario LABEL PID URL BODY SECONDS [TAGS]; TAGS are more JSON fields.
http_scenario() {
    local label=$1 pid=$2 url=$3 body=$4 seconds=$5 tags=${6:-}
    local line
    line=$(measured "$pid" wrk_json "$url" "$body" "$seconds")
    echo "{\"label\":\"$label\",\"transport\":\"http\"$tags,${line#\{}" | tee -a "$results"
}

# grpc_scenario LABEL PID ADDR SCENARIO SECONDS [TAGS]
grpc_scenario() {
    local label=$1 pid=$2 addr=$3 scenario=$4 seconds=$5 tags=${6:-}
    local line
    line=$($load grpc --addr "$addr" --scenario "$scenario" --label "$label" \
        --duration "$seconds" --connections "$connections" --client-id="$client_id" \
        --client-secret="$client_secret" --username bench --password bench-password \
        --server-pid "$pid")
    echo "${line%\}}$tags}" | tee -a "$results"
}

floor_http() { http_scenario floor-http "$floor_pid" "http://$floor_http/oauth/token" grant_type=client_credentials "$@"; }
floor_grpc() { grpc_scenario floor-grpc "$floor_pid" "$floor_grpc" floor "$@"; }
cc_http() { http_scenario client_credentials-http "$server_pid" "http://$http/oauth/token" grant_type=client_credentials "$@"; }
cc_http_hs256() { http_scenario client_credentials-http-hs256 "$hs256_pid" "http://$http_hs256/oauth/token" grant_type=client_credentials "$@"; }
cc_grpc() { grpc_scenario client_credentials-grpc "$server_pid" "$grpc" client-credentials "$@"; }
introspect_http() { http_scenario introspect-http "$server_pid" "http://$http/oauth/introspect" "token=$token" "$@"; }
introspect_grpc() { grpc_scenario introspect-grpc "$server_pid" "$grpc" introspect "$@"; }
check_jwt_http() { check_scenario check-jwt-http Authorization "Bearer $token" "$@"; }
check_api_key_http() { check_scenario check-api-key-http X-API-Key "$api_key" "$@"; }
check_grpc() { grpc_scenario check-grpc "$server_pid" "$grpc" check "$@"; }
refresh_grpc() { grpc_scenario refresh-grpc "$server_pid" "$grpc" refresh "$@"; }
# minted_grpc LABEL SCENARIO SECONDS [TAGS]: a scenario of the web client whose
# connections mint codes before the window. A worker whose codes run out
# counts errors, so each mints more than it can redeem: 600 a second per
# connection is 19200 a second at 32 connections, twice the rate measured here.
minted_grpc() {
    local label=$1 scenario=$2 seconds=$3 tags=${4:-} line
    line=$($load grpc --addr "$grpc" --scenario "$scenario" \
        --label "$label" --duration "$seconds" --connections "$connections" \
        --client-id="$code_client_id" --client-secret="$code_client_secret" \
        --username bench --password bench-password \
        --http-addr "$http" --redirect-uri "$code_redirect" \
        --codes-per-connection $((seconds * 600)) --server-pid "$server_pid")
    echo "${line%\}}$tags}" | tee -a "$results"
}
# code_grpc SECONDS [TAGS]: redeems codes minted before the window.
code_grpc() { minted_grpc authorization_code-grpc authorization-code "$@"; }
# refresh_ahead_grpc SECONDS [TAGS]: refreshes tokens issued before the window,
# as code_grpc's codes are minted before theirs: each connection redeems all
# its codes for refresh tokens first, and the window presents each token once.
# refresh_grpc presents the token its connection received a moment before,
# whose pages are still in SQLite's cache.
refresh_ahead_grpc() { minted_grpc refresh-ahead-grpc refresh-ahead "$@"; }

# refresh_before SECONDS [TAGS]: the refresh scenario on --before's binary.
refresh_before() {
    local seconds=$1 tags=${2:-} line
    line=$($load grpc --addr "$before_grpc" --scenario refresh \
        --label refresh-grpc-before --duration "$seconds" --connections "$connections" \
        --client-id="$before_client_id" --client-secret="$before_client_secret" \
        --username bench --password bench-password --server-pid "$before_pid")
    echo "${line%\}}$tags}" | tee -a "$results"
}

# in_rounds GROUP RUN...: each RUN (a function above) gets one slice per round.
in_rounds() {
    local group=$1 round run
    shift
    echo "== $group: $rounds rounds of $* for ${slice}s each" >&2
    for round in $(seq 1 "$rounds"); do
        for run in "$@"; do
            "$run" "$slice" ",\"group\":\"$group\",\"round\":$round"
        done
    done
}

in_rounds client_credentials-http floor_http cc_http cc_http_hs256
in_rounds client_credentials-grpc floor_grpc cc_grpc
in_rounds introspect-http floor_http introspect_http
in_rounds introspect-grpc floor_grpc introspect_grpc
# The first check of the key reads it from the database; every later one must
# be answered from memory, so the lookup count stays where that one left it.
curl -s -o /dev/null -H "X-API-Key: $api_key" "http://$http/oauth/check"
lookups_before=$(key_lookups)
in_rounds check-http floor_http check_jwt_http check_api_key_http
lookups_after=$(key_lookups)
in_rounds check-grpc floor_grpc check_grpc
echo "{\"label\":\"api-key-lookups\",\"before\":$lookups_before,\"after\":$lookups_after}" | tee -a "$results"
echo "== password" >&2
grpc_scenario password-grpc "$server_pid" "$grpc" password "$duration"
# The code exchange is judged against the refresh rate, so the two alternate
# in rounds, as scenarios do with their floors. Each connection mints its codes
# through /oauth/authorize (one login, then a GET per code) before its timed
# window; the window only redeems them. Like every gRPC line, its server CPU
# counts the timed window only.
# The refresh of tokens issued before the window joins each round: it is the
# code exchange's like for like. With --before, the older binary's refresh
# joins too.
in_rounds refresh-and-code refresh_grpc code_grpc refresh_ahead_grpc ${before:+refresh_before}

# A burst of password logins beside client_credentials traffic: Argon2 runs off
# the runtime's threads, so the client_credentials p99 must stay low.
echo "== client_credentials during a burst of logins" >&2
$load grpc --addr "$grpc" --scenario password --label password-burst --duration "$duration" \
    --connections 8 --client-id="$client_id" --client-secret="$client_secret" \
    --username bench --password bench-password > "$work/burst.json" &
burst=$!
grpc_scenario client_credentials-during-logins "$server_pid" "$grpc" client-credentials "$duration"
wait "$burst"
tee -a "$results" < "$work/burst.json"

rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
echo "{\"label\":\"rss\",\"kib\":$rss_kib}" | tee -a "$results"
kill -TERM "$server_pid" "$hs256_pid"
wait "$server_pid" "$hs256_pid" || true

if [ "$backend" = sqlite ]; then
    echo "== start to ready" >&2
    $load startup --bin "$bin" --database-url "$db" | tee -a "$results"
fi

revocation_runs "$results"
purge_run "$results"
tls_run "$results"

$load report --results "$results" --backend "$backend" > "$report_file"
echo "wrote $report_file" >&2
if grep -q '"errors":[1-9]' "$results"; then
    echo "some scenarios had errors" >&2
    exit 1
fi
