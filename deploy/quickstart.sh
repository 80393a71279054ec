#!/bin/bash
# From a fresh clone to a running standalone node, in the foreground:
#
#   ./deploy/quickstart.sh
#
# 1. installs the Debian packages it needs (deploy/bootstrap.sh; skips what is there)
# 2. builds with CMake into build/
# 3. makes a demo CA and certificates in build/demo/ on the first run (never
#    replaces existing ones)
# 4. runs build/bin/confnode with deploy/examples/standalone.conf: SIP on 127.0.0.1
#    UDP/TCP 5060 and TLS 5061, admin HTTP on 127.0.0.1:8088, VMR meet@example.test.
#    Ctrl-C stops it.
#
# Environment: CONFNODE_BUILD_DIR (default build/) builds elsewhere; the demo
# certificates stay in build/demo/ because the example config names them there.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

build_dir=${CONFNODE_BUILD_DIR:-build}
demo_dir=build/demo
config=deploy/examples/standalone.conf

say() { printf 'quickstart: %s\n' "$*" >&2; }

./deploy/bootstrap.sh

say "building into $build_dir/"
cmake -S . -B "$build_dir"
cmake --build "$build_dir" -j "$(nproc)"

confnode=$build_dir/bin/confnode
if [[ ! -x "$confnode" ]]; then
    say "the build did not produce $confnode"
    exit 1
fi

./deploy/mkcerts.sh "$demo_dir"

if [[ ! -r "$config" ]]; then
    say "$config is missing"
    exit 1
fi

echo "Test call: sipp -sn uac -s meet 127.0.0.1:5060 -m 1   (status: curl -s 127.0.0.1:8088/status)"
exec "$confnode" run -c "$config"
