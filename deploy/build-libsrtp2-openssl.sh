#!/bin/bash
# Builds libsrtp2 from Debian's own source package with its OpenSSL crypto backend
# instead of NSS, and installs it as a static library where pkg-config finds it
# before the system package:
#
#   PREFIX/include/srtp2/*.h  PREFIX/lib/libsrtp2.a  PREFIX/lib/pkgconfig/libsrtp2.pc
#
# Why: Debian builds libsrtp2 with --enable-nss, whose backend creates and destroys a
# PKCS#11 context (malloc, locks, hash lookups) for every packet; the OpenSSL backend
# of the same source is several times faster per packet (docs/media.md has the
# numbers; bench/srtp_bench measures both and checks byte-identical output).
#
# Same upstream version as the installed libsrtp2-dev, same Debian patches, only
# the backend differs. The library's own test programs (known-answer tests of every
# cipher, SRTP drivers, replay and ROC tests) must pass before anything is installed.
# Idempotent: does nothing when the installed build matches the package version.
# Reconfigure the project's build directories afterwards (cmake picks the new
# libsrtp2.pc up; the media library links it statically).
#
#   deploy/build-libsrtp2-openssl.sh            # as root
#   CONFNODE_SRTP_PREFIX=/opt/x deploy/build-libsrtp2-openssl.sh
#
# Needs: network access to the Debian mirror already configured for apt (a deb-src
# entry for it is added when missing), dpkg-dev, build-essential, pkg-config,
# libssl-dev.
set -euo pipefail

prefix=${CONFNODE_SRTP_PREFIX:-/usr/local}
stamp=$prefix/lib/libsrtp2-openssl.version

say() { printf 'build-libsrtp2-openssl: %s\n' "$*"; }
die() {
    say "error: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (apt-get source and install into $prefix)"

version=$(dpkg-query -W -f='${Version}' libsrtp2-dev 2>/dev/null) ||
    die "libsrtp2-dev is not installed (deploy/bootstrap.sh installs it)"

if [[ -f $stamp && $(cat "$stamp") == "$version" && -f $prefix/lib/libsrtp2.a ]]; then
    say "libsrtp2 $version with the OpenSSL backend is already in $prefix"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
missing=()
for pkg in dpkg-dev build-essential pkg-config libssl-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    say "installing ${missing[*]}"
    apt-get install -y -q "${missing[@]}" >/dev/null
fi

# A deb-src entry mirroring the configured Debian sources, if there is none yet.
if ! grep -Eqs '^[[:space:]]*(deb-src|Types:.*deb-src)' /etc/apt/sources.list \
    /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        say "adding deb-src for the sources in /etc/apt/sources.list.d/debian.sources"
        sed -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' \
            /etc/apt/sources.list.d/debian.sources \
            >/etc/apt/sources.list.d/confnode-deb-src.sources
    elif grep -Eqs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
        say "adding deb-src lines for the deb lines of /etc/apt/sources.list"
        sed -nE 's/^[[:space:]]*deb([[:space:]])/deb-src\1/p' /etc/apt/sources.list \
            >/etc/apt/sources.list.d/confnode-deb-src.list
    else
        die "no Debian apt source found to derive a deb-src entry from"
    fi
    apt-get update -q >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
say "fetching the source package libsrtp2=$version"
if ! apt-get source -q "libsrtp2=$version" >apt-source.log 2>&1; then
    apt-get update -q >/dev/null || true
    apt-get source -q "libsrtp2=$version" >apt-source.log 2>&1 ||
        { cat apt-source.log >&2; die "apt-get source libsrtp2=$version failed"; }
fi
src=$(find . -maxdepth 1 -type d -name 'libsrtp2-*' | head -n 1)
[[ -n $src ]] || die "the source package did not unpack"
cd "$src"

jobs=$(nproc 2>/dev/null || echo 2)
say "configuring with --enable-openssl"
# -fPIC: the static library is linked into position-independent executables.
./configure --enable-openssl --disable-debug-logging --prefix="$prefix" \
    CFLAGS="-O2 -g -fPIC" >configure.log 2>&1 || { tail -n 30 configure.log >&2; die "configure failed"; }
grep -q '^#define OPENSSL 1' crypto/include/config.h ||
    die "configure did not select the OpenSSL backend"

say "building"
make -j"$jobs" libsrtp2.a >make.log 2>&1 || { tail -n 30 make.log >&2; die "make failed"; }
make -j"$jobs" test >make-test.log 2>&1 || { tail -n 30 make-test.log >&2; die "make test failed"; }

say "running the library's self tests"
for t in crypto/test/cipher_driver crypto/test/kernel_driver test/test_srtp test/rdbx_driver \
    test/srtp_driver test/roc_driver test/replay_driver; do
    args=(-v)
    [[ $t == test/test_srtp ]] && args=()
    "./$t" "${args[@]}" >"$work/$(basename "$t").log" 2>&1 ||
        { tail -n 30 "$work/$(basename "$t").log" >&2; die "$t failed"; }
done

say "installing into $prefix"
make install >install.log 2>&1 || { tail -n 30 install.log >&2; die "make install failed"; }
# The static library needs libcrypto; say so outside Libs.private so that a plain
# `pkg-config --libs libsrtp2` links.
sed -i -E 's/^(Libs:.*-lsrtp2)[[:space:]]*$/\1 -lcrypto/' "$prefix/lib/pkgconfig/libsrtp2.pc"
echo "$version" >"$stamp"
say "done: $(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --libs libsrtp2)"
