#!/usr/bin/env bash
# Makes sure nginx and caddy are installed, for tests/proxies.rs: Debian's
# packages, installed with apt when missing. Starts no service: the tests run
# their own instances on free ports. Fails loudly with what is missing.
# Run by .ci/run, and by the test harness when it finds either one missing.
set -euo pipefail

# nginx lives in /usr/sbin, which is not on every user's PATH.
have() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}

missing() {
    local names=()
    have nginx || names+=(nginx)
    have caddy || names+=(caddy)
    echo "${names[@]}"
}

wanted=$(missing)
if [ -n "$wanted" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "proxies: $wanted not installed, and installing needs root: sudo .ci/proxies.sh" >&2
        exit 1
    fi
    echo "proxies: installing $wanted"
    export DEBIAN_FRONTEND=noninteractive
    # Debian's packages start their service on install (nginx on port 80); a
    # policy-rc.d that answers 101 forbids it, for the length of the install.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $wanted >/dev/null; }; then
        echo "proxies: apt-get install $wanted failed" >&2
        exit 1
    fi
fi

wanted=$(missing)
if [ -n "$wanted" ]; then
    echo "proxies: still missing after the install: $wanted" >&2
    exit 1
fi
