#!/usr/bin/env bash
# The revocation scenario of bench/run.sh (issue 11): what revocations cost a
# replica that did not receive them, and what a live revocation costs in memory.
#
#   bench/revocations.sh --bin BIN --label LABEL --results FILE [--postgres]
#                        [--live N] [--seconds S] [--rate R]
#
# Two replicas, A and B, of BIN on one fresh database (SQLite, or PostgreSQL
# with --postgres). N live revocations (default 60000) are written straight into
# the database, the way a revoking transaction of BIN's schema writes them, and
# one real revocation through A then tells when B has read them all: B's RSS
# before and after gives the memory per live revocation. Then B idles for S
# seconds (default 30), and A receives R revocations per second (default 4) for
# S seconds, each of a freshly issued token; B's CPU time over that window,
# less its idle rate, divided by the revocations, is the CPU per revoke. Both
# readings come from /proc. Appends one JSON line to FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

bin=
label=
results=
backend=sqlite
live=60000
seconds=30
rate=4
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift ;;
        --label) label=$2; shift ;;
        --results) results=$2; shift ;;
        --postgres) backend=postgres ;;
        --live) live=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --rate) rate=$2; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$bin" ] || [ -z "$label" ] || [ -z "$results" ]; then
    echo "usage: $0 --bin BIN --label LABEL --results FILE [--postgres] [--live N] [--seconds S] [--rate R]" >&2
    exit 2
fi

start_work revocations
if [ "$backend" = postgres ]; then
    # query SQL: prints the result; run_script < FILE: runs a script.
    query() { psql -q -X -v ON_ERROR_STOP=1 -tA "$db" -c "$1"; }
    run_script() { psql -q -X -v ON_ERROR_STOP=1 "$db" >/dev/null; }
else
    query() { sqlite3 -bail -cmd ".timeout 5000" "$file" "$1"; }
    run_script() { sqlite3 -bail -cmd ".timeout 5000" "$file" >/dev/null; }
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The anonymous part of RSS (heap and stacks): the binary's own pages, which
# the code paths a reading touches map in, are left out.
rss_kib() { awk '/RssAnon/ {print $2}' "/proc/$1/status"; }
now_ns() { date +%s%N; }

$bin migrate --database-url "$db" >/dev/null
client=$($bin client create --database-url "$db" --name bench --grant-types client_credentials)
client_id=$(echo "$client" | json_field client_id)
client_secret=$(echo "$client" | json_field client_secret)

serve() {
    RUST_LOG=warn,oauthd=info $bin serve --database-url "$db" --http-addr 127.0.0.1:0 \
        --grpc-addr 127.0.0.1:0 2> "$work/$1.log" &
    pids+=($!)
}
serve a
a_pid=${pids[-1]}
serve b
b_pid=${pids[-1]}
a=$(address "$work/a.log" HTTP)
b=$(address "$work/b.log" HTTP)

issue() {
    curl -sf -u "$client_id:$client_secret" -d grant_type=client_credentials "http://$a/oauth/token" |
        json_field access_token
}
revoke_at_a() { curl -sf -o /dev/null -u "$client_id:$client_secret" -d "token=$1" "http://$a/oauth/revoke"; }
active_at_b() {
    curl -sf -u "$client_id:$client_secret" -d "token=$1" "http://$b/oauth/introspect" | grep -q '"active":true'
}
# Revokes a new token at A and waits (up to a minute) until B has read it.
marker_revocation() {
    local token
    token=$(issue)
    revoke_at_a "$token"
    for _ in $(seq 1 1200); do
        if ! active_at_b "$token"; then return; fi
        sleep 0.05
    done
    echo "B never saw the revocation; its log ends:" >&2
    tail -n 5 "$work/b.log" >&2
    exit 1
}

# Every code path of a revocation has run once at B before the first reading.
marker_revocation
rss_before=$(rss_kib "$b_pid")

# N live revocations, written as BIN's schema has a revoking transaction write
# them: with a `seq` column, stamped with the revocations counter bumped in the
# same transaction; without one (releases before issue 11), unstamped.
expires=$(($(date +%s) + 3600))
has_seq=$(query "SELECT COUNT(*) FROM state_version WHERE id = 5")
{
    [ "$backend" = sqlite ] || echo "SET client_min_messages = warning;"
    echo "CREATE TEMP TABLE preload (jti TEXT, expires_at BIGINT);"
    od -An -tx1 -v -N $((16 * live)) /dev/urandom | tr -d ' \n' | fold -w 32 |
        awk -v expiry="$expires" '
            NR % 500 == 1 { if (NR > 1) print ";"; printf "INSERT INTO preload VALUES " }
            { printf "%s('\''%s'\'', %d)", (NR % 500 == 1 ? "" : ","), $0, expiry }
            END { print ";" }'
    echo "BEGIN;"
    if [ "$has_seq" = 1 ]; then
        echo "UPDATE state_version SET version = version + 1 WHERE id = 5;"
        echo "INSERT INTO revocations (jti, expires_at, seq) SELECT jti, expires_at, (SELECT version FROM state_version WHERE id = 5) FROM preload;"
    else
        echo "INSERT INTO revocations (jti, expires_at) SELECT jti, expires_at FROM preload;"
    fi
    echo "COMMIT;"
} > "$work/preload.sql"
run_script < "$work/preload.sql"
marker_revocation
# Let B finish whatever the load started (the old full reload swaps its whole
# state in at once) before reading its memory.
sleep 2
rss_after=$(rss_kib "$b_pid")

# B at rest: its sync polls the database four times a second.
idle_from=$(cpu_ticks "$b_pid")
idle_started=$(now_ns)
sleep "$seconds"
idle_ticks=$(($(cpu_ticks "$b_pid") - idle_from))
idle_ns=$(($(now_ns) - idle_started))

# R revocations per second at A, each of a token issued just before.
interval_ns=$((1000000000 / rate))
busy_from=$(cpu_ticks "$b_pid")
busy_started=$(now_ns)
deadline=$((busy_started + seconds * 1000000000))
revokes=0
errors=0
next=$busy_started
last=
while [ "$(now_ns)" -lt "$deadline" ]; do
    token=$(issue) || { errors=$((errors + 1)); continue; }
    if revoke_at_a "$token"; then revokes=$((revokes + 1)); last=$token; else errors=$((errors + 1)); fi
    next=$((next + interval_ns))
    wait_ns=$((next - $(now_ns)))
    if [ "$wait_ns" -gt 0 ]; then sleep "$(awk -v ns="$wait_ns" 'BEGIN {printf "%.3f", ns / 1e9}')"; fi
done
# The window ends once B has read the last one.
if [ -n "$last" ]; then
    for _ in $(seq 1 1200); do
        if ! active_at_b "$last"; then break; fi
        sleep 0.05
    done
fi
busy_ticks=$(($(cpu_ticks "$b_pid") - busy_from))
busy_ns=$(($(now_ns) - busy_started))
held=$(query "SELECT COUNT(*) FROM revocations")

hz=$(getconf CLK_TCK)
echo "{\"label\":\"revocations\",\"binary\":\"$label\",\"backend\":\"$backend\",\"live\":$live,\"rows\":$held,\"revokes\":$revokes,\"errors\":$errors,\"busy_seconds\":$(awk -v n="$busy_ns" 'BEGIN {printf "%.3f", n / 1e9}'),\"replica_cpu_s\":$(awk -v t="$busy_ticks" -v hz="$hz" 'BEGIN {printf "%.3f", t / hz}'),\"idle_seconds\":$(awk -v n="$idle_ns" 'BEGIN {printf "%.3f", n / 1e9}'),\"idle_cpu_s\":$(awk -v t="$idle_ticks" -v hz="$hz" 'BEGIN {printf "%.3f", t / hz}'),\"rss_before_kib\":$rss_before,\"rss_after_kib\":$rss_after}" |
    tee -a "$results"
