# What the bench scripts share; sourced from the repository's root, not run.

# start_work NAME: a temporary directory ($work), the processes to stop at exit
# ($pids: add to it), and a fresh database ($db) for $backend: a SQLite file
# ($file) in $work, or a PostgreSQL database named after NAME ($pgname).
start_work() {
    work=$(mktemp -d)
    pids=()
    pgnames=()
    trap stop_work EXIT
    if [ "$backend" = postgres ]; then . .ci/postgres.sh; fi
    another_database "$1"
    db=$other_db
    if [ "$backend" = postgres ]; then pgname=${pgnames[0]}; else file="$work/$1.db"; fi
}

# another_database NAME: one more fresh database ($other_db), dropped at exit.
another_database() {
    if [ "$backend" = postgres ]; then
        local name="oauthd_bench_$1_$$"
        createdb -h 127.0.0.1 -U postgres "$name"
        pgnames+=("$name")
        other_db="postgres://postgres@127.0.0.1:5432/$name"
    else
        other_db="sqlite://$work/$1.db?mode=rwc"
    fi
}

stop_work() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for name in "${pgnames[@]}"; do
        dropdb -h 127.0.0.1 -U postgres --if-exists "$name" 2>/dev/null || true
    done
    rm -rf "$work"
}

# address LOG WHAT: waits for "<WHAT> listening on ADDR" in LOG, prints ADDR.
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

# json_field NAME: the string member NAME of the JSON object on stdin.
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# need_wrk: installs wrk from Debian if it is missing.
need_wrk() {
    if ! command -v wrk >/dev/null 2>&1; then
        echo "installing wrk" >&2
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    fi
}

# The CPU seconds a process has used so far, user and system.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"
}

# measured PID COMMAND...: runs COMMAND and adds to its JSON line the CPU seconds
# the server PID used meanwhile. The gRPC load generator needs none of this: with
# --server-pid it counts the server's CPU over its timed window only.
measured() {
    local pid=$1 before line
    shift
    before=$(cpu_seconds "$pid")
    line=$("$@")
    echo "${line%\}},\"server_cpu_s\":$(awk -v a="$before" -v b="$(cpu_seconds "$pid")" 'BEGIN {printf "%.2f", b - a}')}"
}
