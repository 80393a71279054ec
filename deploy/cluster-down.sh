#!/bin/bash
# Removes a local cluster made by deploy/cluster-up.sh: stops its processes (nodes
# first, with SIGTERM), deletes its network namespaces, its blackhole route and its
# /etc/netns entries, then its state directory. Works on a partial cluster (a failed
# or interrupted cluster-up) and on one already removed; never touches anything the
# state directory does not list.
#
#   deploy/cluster-down.sh [-d STATE] [--keep-state]
#
#   -d STATE      state directory (default /tmp/confnode-cluster); also accepted as
#                 the only argument
#   --keep-state  keep STATE (configs, certificates, logs) after removing the rest
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

state=/tmp/confnode-cluster
keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
    -d | --state) state=${2:?}; shift 2 ;;
    --keep-state) keep=1; shift ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2
        ;;
    -*) cl_die "unknown option $1" ;;
    *) state=$1; shift ;;
    esac
done
[[ $EUID -eq 0 ]] || cl_die "removing network namespaces needs root"

if [[ ! -e "$state/cluster.env" && ! -e "$state/resources" ]]; then
    cl_log "no cluster in $state: nothing to do"
    exit 0
fi
CL_STATE=$(cd "$state" && pwd)
# cluster.env may be missing after a very early failure; resources is enough
if [[ -r "$CL_STATE/cluster.env" ]]; then
    # shellcheck source=/dev/null
    source "$CL_STATE/cluster.env"
fi
cl_log "removing cluster ${CL_ID:-?} (state $CL_STATE)"
while read -r kind what; do
    cl_log "  $kind $what"
done <"$CL_STATE/resources"
cl_teardown
left=""
while read -r kind what; do
    if [[ $kind == netns ]] && ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF "$what"; then
        left+=" netns:$what"
    elif [[ $kind == route && -n "$(ip route show "$what" 2>/dev/null)" ]]; then
        left+=" route:$what"
    fi
done <"$CL_STATE/resources"
[[ -z "$left" ]] || cl_die "could not remove:$left"
if [[ $keep == 1 ]]; then
    rm -f "$CL_STATE/resources" "$CL_STATE/cluster.env"
    cl_log "removed; state kept in $CL_STATE"
else
    rm -rf -- "$CL_STATE"
    cl_log "removed, with $CL_STATE"
fi
