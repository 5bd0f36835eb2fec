# Sourced by .ci/run: makes sure a PostgreSQL server answers on 127.0.0.1:5432
# and sets PG_URL. Installs and starts it when needed; fails loudly otherwise.
PG_URL="postgres://postgres@127.0.0.1:5432/postgres"

pg_answers() {
    command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q
}

if ! pg_answers; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "PostgreSQL is not installed: installing it"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
    fi
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    conf="/etc/postgresql/$version/main"
    # Tests connect over TCP as postgres without a password.
    if ! grep -q "oauthd-ci" "$conf/pg_hba.conf"; then
        sed -i '1i host all all 127.0.0.1/32 trust # oauthd-ci' "$conf/pg_hba.conf"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do
        pg_answers && break
        sleep 1
    done
fi
if ! pg_answers; then
    echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2
    exit 1
fi
