#!/bin/bash
# The whole test suite, from a fresh clone:
#
#   ./tests/run.sh
#
# 1. installs missing Debian packages (deploy/bootstrap.sh)
# 2. build/        normal build; every ctest test (unit, fuzz corpus replay, integration)
# 3. build-asan/   -DCONFNODE_SANITIZE=ON (ASan + UBSan); every ctest test again
# 4. build-fuzz/   clang, -DCONFNODE_FUZZ=ON; each libFuzzer target in tests/fuzz runs
#                  for a bounded time over a scratch copy of its corpus
#
# Exits non-zero if anything failed. The last line of output is the summary:
#   tests: N passed, N failed
#
# Environment:
#   CONFNODE_BUILD_DIR        normal build directory       (default build)
#   CONFNODE_ASAN_BUILD_DIR   sanitizer build directory    (default build-asan)
#   CONFNODE_FUZZ_BUILD_DIR   fuzzing build directory      (default build-fuzz)
#   CONFNODE_FUZZ_SECONDS     seconds per fuzz target      (default 20)
#   CONFNODE_STAGES           stages to run                (default "build asan fuzz")
#   CONFNODE_CTEST_ARGS       extra ctest arguments for both ctest runs, e.g. "-R unit\."
#   CONFNODE_ASAN_CTEST_ARGS  extra ctest arguments for the sanitizer run only, e.g.
#                             "-E integration.test_cluster" to trim it if time is short
# Works without a terminal and without stdin (CI=true).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
exec </dev/null

build_dir=${CONFNODE_BUILD_DIR:-build}
asan_dir=${CONFNODE_ASAN_BUILD_DIR:-build-asan}
fuzz_dir=${CONFNODE_FUZZ_BUILD_DIR:-build-fuzz}
fuzz_seconds=${CONFNODE_FUZZ_SECONDS:-20}
stages=${CONFNODE_STAGES:-build asan fuzz}
read -r -a ctest_extra <<<"${CONFNODE_CTEST_ARGS:-}"
read -r -a asan_ctest_extra <<<"${CONFNODE_ASAN_CTEST_ARGS:-}"
jobs=$(nproc 2>/dev/null || echo 2)

passed=0
failed=0
failures=()

say() { printf '\n=== %s  [%dm%02ds]\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

pass() { passed=$((passed + 1)); }

fail() {
    failed=$((failed + 1))
    failures+=("$1")
    printf '*** FAILED: %s\n' "$1"
}

finish() {
    say "summary"
    if [[ ${#failures[@]} -ne 0 ]]; then
        printf 'failed:\n'
        printf '  %s\n' "${failures[@]}"
    fi
    printf 'tests: %d passed, %d failed\n' "$passed" "$failed"
    if [[ $failed -ne 0 ]]; then
        exit 1
    fi
    exit 0
}

has_stage() { [[ " $stages " == *" $1 "* ]]; }

# configure_and_build DIR LABEL CMAKE-ARGS...
configure_and_build() {
    local dir=$1 label=$2
    shift 2
    say "$label: configure and build in $dir/"
    if ! cmake -S . -B "$dir" "$@"; then
        fail "$label: cmake configure"
        return 1
    fi
    if ! cmake --build "$dir" -j "$jobs"; then
        fail "$label: build"
        return 1
    fi
}

# run_ctest DIR LABEL [ctest args...]: every test registered in DIR (or those the
# arguments select); counts passes and failures.
run_ctest() {
    local dir=$1 label=$2 log total='' nfail='' name
    shift 2
    log=$(mktemp)
    say "$label: ctest in $dir/"
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 600 \
        --no-tests=error "${ctest_extra[@]}" "$@" 2>&1 | tee "$log"
    # "100% tests passed, 0 tests failed out of 42"
    read -r nfail total < <(sed -nE \
        's/^[0-9]+% tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1 \2/p' "$log" |
        tail -n 1)
    if [[ -z "$total" ]]; then
        fail "$label: ctest did not run (see above)"
    else
        passed=$((passed + total - nfail))
        failed=$((failed + nfail))
        # "The following tests FAILED:" then lines like "  7 - unit.test_x (Failed)"
        while read -r name; do
            failures+=("$label: $name")
        done < <(sed -n '/^The following tests FAILED:/,$p' "$log" |
            sed -nE 's/^[[:space:]]+[0-9]+ - ([^ ]+) .*/\1/p')
    fi
    rm -f "$log"
}

# run_fuzzers DIR: each tests/fuzz/fuzz_*.c target for $fuzz_seconds over a copy
# of tests/fuzz/corpus/<target>/; a crash, leak or timeout fails the target.
run_fuzzers() {
    local dir=$1 src name bin scratch
    local -a targets=()
    for src in tests/fuzz/fuzz_*.c; do
        [[ -e "$src" ]] && targets+=("$(basename "$src" .c)")
    done
    if [[ ${#targets[@]} -eq 0 ]]; then
        say "fuzz: no targets in tests/fuzz/"
        return 0
    fi
    say "fuzz: configure and build ${targets[*]} in $dir/"
    if ! cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCONFNODE_FUZZ=ON; then
        fail "fuzz: cmake configure"
        return 0
    fi
    if ! cmake --build "$dir" -j "$jobs" --target "${targets[@]}"; then
        fail "fuzz: build"
        return 0
    fi
    scratch=$(mktemp -d)
    for name in "${targets[@]}"; do
        bin=$dir/bin/$name
        say "fuzz: $name for ${fuzz_seconds}s"
        if [[ ! -x "$bin" ]]; then
            fail "fuzz: $name was not built"
            continue
        fi
        mkdir -p "$scratch/$name/corpus" "$scratch/$name/artifacts"
        if [[ -d "tests/fuzz/corpus/$name" ]]; then
            cp -R "tests/fuzz/corpus/$name/." "$scratch/$name/corpus/"
        fi
        if timeout -k 10 $((fuzz_seconds + 120)) "$bin" -max_total_time="$fuzz_seconds" \
            -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$scratch/$name/artifacts/" "$scratch/$name/corpus" \
            >"$scratch/$name/log" 2>&1; then
            pass "fuzz: $name"
            grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units)' "$scratch/$name/log" ||
                true
        else
            tail -n 60 "$scratch/$name/log"
            mkdir -p "$dir/artifacts/$name"
            cp -R "$scratch/$name/artifacts/." "$dir/artifacts/$name/" 2>/dev/null || true
            fail "fuzz: $name (crashing input kept in $dir/artifacts/$name/)"
        fi
    done
    rm -rf "$scratch"
}

say "bootstrap"
if ! ./deploy/bootstrap.sh; then
    fail "bootstrap: could not install the packages (deploy/bootstrap.sh)"
    finish
fi

if has_stage build; then
    configure_and_build "$build_dir" build && run_ctest "$build_dir" build
fi
if has_stage asan; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    configure_and_build "$asan_dir" asan -DCONFNODE_SANITIZE=ON &&
        run_ctest "$asan_dir" asan "${asan_ctest_extra[@]}"
fi
if has_stage fuzz; then
    run_fuzzers "$fuzz_dir"
fi

finish
