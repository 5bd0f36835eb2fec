#!/usr/bin/env bash
# Makes sure Chromium and its WebDriver server are installed, for
# tests/browser.rs: Debian's chromium and chromium-driver, installed with apt
# when missing. Starts nothing: each test runs its own chromedriver, on a port
# the driver picks. Fails loudly with what is missing.
# Run by .ci/run (in the background, after .ci/proxies.sh), and by the test
# harness when it finds either one missing.
set -euo pipefail

# Program, then the Debian package that ships it.
programs=(chromium:chromium chromedriver:chromium-driver)

missing() {
    local entry packages=()
    for entry in "${programs[@]}"; do
        command -v "${entry%%:*}" >/dev/null 2>&1 || packages+=("${entry#*:}")
    done
    echo "${packages[@]}"
}

wanted=$(missing)
if [ -n "$wanted" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "browser: $wanted not installed, and installing needs root: sudo .ci/browser.sh" >&2
        exit 1
    fi
    echo "browser: installing $wanted"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt (the proxies' or PostgreSQL's install, unattended upgrades)
    # may hold the lock: wait for it rather than fail at once.
    wait_for_lock=(-o DPkg::Lock::Timeout=300)
    # chromium-driver depends on the very same version of chromium, so one
    # install brings a matching pair (and upgrades an older chromium).
    if ! { apt-get "${wait_for_lock[@]}" update -qq &&
        apt-get "${wait_for_lock[@]}" install -y -qq --no-install-recommends $wanted >/dev/null; }; then
        echo "browser: apt-get install $wanted failed" >&2
        exit 1
    fi
fi

wanted=$(missing)
if [ -n "$wanted" ]; then
    echo "browser: still missing after the install: $wanted" >&2
    exit 1
fi
