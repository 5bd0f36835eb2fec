#!/usr/bin/env bash
# The fuzz targets in fuzz/ (README, "Fuzzing"), in three steps that .ci/run
# calls apart, so the slow build can overlap the test suite:
#   prepare  checks the fuzz crate's formatting and lints the `fuzzing`
#            feature, and installs nightly and cargo-fuzz when missing;
#   build    builds every target (nightly, ASan, a target dir of its own);
#   smoke    gives each target an equal share of FUZZ_SECONDS (default 180),
#            starting from its committed seeds. A crash, leak or timeout fails
#            the step and leaves the input in fuzz/artifacts/<target>/.
# With no argument it runs all three.
set -euo pipefail
cd "$(dirname "$0")/.."

prepare() {
    # The fuzz crate is a workspace of its own, and src/fuzzing.rs is compiled
    # only with the feature: neither is covered by the main lint step.
    cargo fmt --manifest-path fuzz/Cargo.toml -- --check
    cargo clippy --lib --locked --features fuzzing -- -D warnings

    if ! rustup toolchain list | grep -q '^nightly-'; then
        echo "fuzz: the nightly toolchain is missing; installing it" >&2
        # --no-self-update: rustup's own update can fail on a read-only home
        # even when the toolchain installed fine.
        rustup toolchain install nightly --profile minimal --no-self-update || true
    fi
    if ! cargo +nightly --version >/dev/null 2>&1; then
        echo "fuzz: no usable nightly toolchain ('rustup toolchain install nightly --profile minimal' failed); cargo-fuzz needs nightly" >&2
        exit 1
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "fuzz: cargo-fuzz is missing; installing it" >&2
        if ! cargo install cargo-fuzz --locked; then
            echo "fuzz: 'cargo install cargo-fuzz --locked' failed" >&2
            exit 1
        fi
    fi
}

build() {
    local started=$SECONDS
    cargo +nightly fuzz build
    echo "fuzz: targets built in $((SECONDS - started)) s"
}

smoke() {
    local total=${FUZZ_SECONDS:-180} targets share
    targets=$(cargo +nightly fuzz list)
    share=$((total / $(wc -w <<<"$targets")))
    for target in $targets; do
        mkdir -p "fuzz/corpus/$target"
        echo "fuzz: $target for $share s"
        # New inputs go to the ignored corpus/; the seeds are only read.
        # `cargo fuzz run` would rebuild first if anything changed; it has not.
        cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
            -max_total_time="$share" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
            -print_final_stats=1
    done
}

case "${1:-all}" in
    prepare) prepare ;;
    build) build ;;
    smoke) smoke ;;
    all) prepare; build; smoke ;;
    *) echo "usage: $0 [prepare|build|smoke]" >&2; exit 2 ;;
esac
