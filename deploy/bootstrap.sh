#!/bin/bash
# Installs the Debian packages confnode needs to build, test and run.
#
# Idempotent and non-interactive: packages already installed are skipped, the
# package index is refreshed only when something is missing, nothing prompts.
# Works as root; uses sudo otherwise. Called by deploy/quickstart.sh and
# tests/run.sh; can be run on its own.
#
#   deploy/bootstrap.sh            install what is missing
#   deploy/bootstrap.sh --list     print the package list, one per line
#   deploy/bootstrap.sh --check    exit 1 (listing them) if any package is missing
#
# CONFNODE_SKIP_BOOTSTRAP=1 skips everything (for machines managed some other way).
set -euo pipefail

# The one list of packages (Debian 12). Add new dependencies here.
CONFNODE_PACKAGES=(
    # toolchain
    build-essential cmake pkg-config clang libclang-rt-14-dev
    # libraries the node links
    libssl-dev libsofia-sip-ua-dev libsrtp2-dev libhiredis-dev libconfig-dev
    libmicrohttpd-dev libjson-c-dev libc-ares-dev libopus-dev libcurl4-openssl-dev
    # unit tests
    libcmocka-dev
    # integration tests: real peers and tools
    openssl sip-tester stunnel4 redis-server redis-sentinel dnsmasq-base curl jq iproute2
    procps python3 ca-certificates baresip
    # DPDK fast path (dataplane = "dpdk") and dpdk-testpmd for its benchmark
    dpdk dpdk-dev libdpdk-dev
    # confbench plots
    gnuplot-nox
)

log() { printf 'bootstrap: %s\n' "$*" >&2; }

missing_packages() {
    local pkg status
    for pkg in "${CONFNODE_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        if [[ "$status" != "installed" ]]; then
            printf '%s\n' "$pkg"
        fi
    done
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n true 2>/dev/null || log "sudo may ask for a password to install packages"
        sudo env DEBIAN_FRONTEND=noninteractive "$@"
    else
        log "not root and sudo is not installed: install the packages above as root"
        return 1
    fi
}

main() {
    if [[ "${CONFNODE_SKIP_BOOTSTRAP:-0}" == 1 ]]; then
        log "CONFNODE_SKIP_BOOTSTRAP=1: not checking packages"
        return 0
    fi
    case "${1:-}" in
    --list)
        printf '%s\n' "${CONFNODE_PACKAGES[@]}"
        return 0
        ;;
    --check | "") ;;
    *)
        log "usage: $0 [--list|--check]"
        return 2
        ;;
    esac
    if ! command -v dpkg-query >/dev/null 2>&1; then
        log "dpkg-query not found: this script supports Debian 12 (bookworm) and derivatives."
        log "Install the equivalents of: ${CONFNODE_PACKAGES[*]}"
        return 1
    fi

    local -a missing
    mapfile -t missing < <(missing_packages)
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "all ${#CONFNODE_PACKAGES[@]} packages present"
        return 0
    fi
    if [[ "${1:-}" == --check ]]; then
        log "missing: ${missing[*]}"
        return 1
    fi

    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # explicit checks: main may run where errexit is off (e.g. in an && list)
    as_root apt-get update -q </dev/null || return 1
    as_root apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null || return 1

    mapfile -t missing < <(missing_packages)
    if [[ ${#missing[@]} -ne 0 ]]; then
        log "still missing after install: ${missing[*]}"
        return 1
    fi
    log "all ${#CONFNODE_PACKAGES[@]} packages present"
}

# libsrtp2 with the OpenSSL backend (several times faster per packet than Debian's
# NSS build, docs/media.md): built once from Debian's own source package. Optional:
# when the source package cannot be fetched, the node builds on Debian's library.
srtp_openssl() {
    [[ "${CONFNODE_SKIP_BOOTSTRAP:-0}" == 1 || "${CONFNODE_SKIP_SRTP_BUILD:-0}" == 1 ]] && return 0
    [[ "${1:-}" == --list || "${1:-}" == --check ]] && return 0
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    if ! as_root "$here/build-libsrtp2-openssl.sh" >/tmp/confnode-libsrtp2-build.log 2>&1; then
        log "libsrtp2 with OpenSSL could not be built (see /tmp/confnode-libsrtp2-build.log);"
        log "continuing with Debian's libsrtp2 (correct, slower SRTP)"
    fi
}

main "$@" && srtp_openssl "$@"
