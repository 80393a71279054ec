#!/bin/bash
# Starts a local confnode cluster of N nodes in network namespaces on this machine:
# a bridge, a real Redis (primary, replica, three sentinels), a real DNS server
# (dnsmasq) serving the SRV record, the round-robin sip.<domain> A records and one
# A record per node (all taken from `confnode plan`), a local CA and one cluster
# certificate (from `confnode csr`: CN sip.<domain>, SAN sip.<domain> + every node
# FQDN, serverAuth + clientAuth), and N `confnode run` processes in Redis cluster
# mode through the sentinels. Needs root (ip netns).
#
#   deploy/cluster-up.sh [-d STATE] [--domain D] [--confnode PATH] [--workers N]
#                        [--lease SECONDS] [--heartbeat SECONDS] N
#
#   -d STATE        state directory (default /tmp/confnode-cluster): configs,
#                   certificates, logs, pids; deploy/cluster-down.sh -d STATE removes
#                   everything
#   --domain D      SIP domain (default cluster.test): rooms room1..room4@D, nodes
#                   node<K>.D, SRV target sip.D
#   --confnode PATH the binary (default $CONFNODE, else build/bin/confnode)
#   --workers N     workers per node (default 1)
#   --lease S, --heartbeat S   cluster.lease_ttl / heartbeat (default 3 / 1: a dead
#                   node's conferences move within seconds)
#
# Environment: CONFNODE (the binary), CL_CERT_IP_SANS=1 (the certificate also names
# every node's address; by default it carries DNS names only, like a public CA's).
#
# Idempotent: when STATE already holds this cluster, up and complete, it only prints
# the summary; when it holds an incomplete one (a crash, a failed start), that one is
# removed first. On failure everything made so far is removed again (logs stay in
# STATE) and the exit status is 1. See docs/cluster.md.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

state=/tmp/confnode-cluster
domain=cluster.test
confnode=${CONFNODE:-$CL_ROOT/build/bin/confnode}
workers=1
lease=3
heartbeat=1
count=
while [[ $# -gt 0 ]]; do
    case $1 in
    -d | --state) state=${2:?}; shift 2 ;;
    --domain) domain=${2:?}; shift 2 ;;
    --confnode) confnode=${2:?}; shift 2 ;;
    --workers) workers=${2:?}; shift 2 ;;
    --lease) lease=${2:?}; shift 2 ;;
    --heartbeat) heartbeat=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    -*) cl_log "unknown option $1"; usage ;;
    *) [[ -z "$count" ]] || usage; count=$1; shift ;;
    esac
done
if ! [[ "$count" =~ ^[0-9]+$ ]] || ((count < 1 || count > 100)); then
    usage
fi
[[ "$domain" =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$ ]] || cl_die "--domain '$domain': not a domain name"
[[ "$workers" =~ ^[0-9]+$ && "$lease" =~ ^[0-9]+$ && "$heartbeat" =~ ^[0-9]+$ ]] ||
    cl_die "--workers, --lease and --heartbeat take whole numbers"
((heartbeat >= 1 && heartbeat < lease)) || cl_die "--heartbeat must be 1 or more and less than --lease"
[[ $EUID -eq 0 ]] || cl_die "network namespaces need root: run it as root (or with sudo)"
cl_need ip setsid redis-server redis-cli openssl curl jq ss awk
CL_DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[[ -x "$CL_DNSMASQ" ]] || cl_die "dnsmasq is not installed (Debian package dnsmasq-base)"
[[ -x "$confnode" ]] || cl_die "$confnode is not built (cmake --build build, or --confnode PATH)"
confnode=$(realpath "$confnode")
"$confnode" version 2>/dev/null | grep -q '^confnode ' || cl_die "$confnode is not a confnode binary"

# ---------------------------------------------------------------------------- the state

if [[ -e "$state/cluster.env" ]]; then
    cl_load "$state"
    complete=1
    [[ "$(wc -w <<<"$CL_NODES")" == "$count" ]] || complete=0
    for p in redis-6379 redis-6380 sentinel-26379 sentinel-26380 sentinel-26381 dnsmasq $CL_NODES; do
        [[ $complete == 1 ]] || break
        cl_pid "$p" >/dev/null || complete=0
    done
    # shellcheck disable=SC2086 # a word list
    if [[ $complete == 1 ]] && cl_nodes_wait_ready 1 $CL_NODES 2>/dev/null; then
        cl_log "$CL_STATE already runs this cluster"
        cl_summary
        exit 0
    fi
    cl_log "$CL_STATE holds an incomplete or different cluster: removing it first"
    cl_teardown
    rm -rf -- "${CL_STATE:?}"/*
    unset CL_CERT_GEN
elif [[ -e "$state" && -n "$(ls -A "$state" 2>/dev/null)" ]]; then
    cl_die "$state exists and is not a cluster state directory (no cluster.env): choose another -d"
fi
mkdir -p "$state"
chmod 700 "$state"
CL_STATE=$(cd "$state" && pwd)
: >"$CL_STATE/resources"

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ $rc -ne 0 ]]; then
        set +e
        cl_log "cluster-up failed: removing what it made (logs stay in $CL_STATE)"
        cl_teardown
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
cl_env_set CL_ID "cn$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
cl_env_set CL_DOMAIN "$domain"
cl_env_set CL_CONFNODE "$confnode"
cl_env_set CL_DNSMASQ "$CL_DNSMASQ"
cl_env_set CL_WORKERS "$workers"
cl_env_set CL_LEASE "$lease"
cl_env_set CL_HEARTBEAT "$heartbeat"
node_list=""
for ((k = 1; k <= count; k++)); do node_list+="${node_list:+ }node$k"; done
cl_env_set CL_NODES "$node_list"
cl_log "cluster $CL_ID: $count nodes, domain $domain, state $CL_STATE"

# ---------------------------------------------------------------------------- network

cl_pick_net
cl_log "subnet $CL_NET.0/24 (blackhole route added in the root namespace)"
cl_hub_up
cl_netns_add "$(cl_ns_infra)"
cl_port "$(cl_ns_infra)" pinfra "$(cl_infra_ip)/24"
cl_netns_add "$(cl_ns_client)"
cl_port "$(cl_ns_client)" pclient "$(cl_client_ip)/24"
for n in $CL_NODES; do
    cl_node_netns "$n"
done

# ---------------------------------------------------------------------------- Redis

cl_log "redis primary :6379, replica :6380, sentinels :26379-26381 on $(cl_infra_ip)"
cl_infra_up || cl_die "Redis/Sentinel did not come up (logs in $CL_STATE/infra/)"

# ---------------------------------------------------------------------------- configs, PKI, DNS

for n in $CL_NODES; do
    cl_node_conf "$n"
done
cl_ca_make
cert=$(cl_cert_make "$CL_STATE/node1/confnode.conf")
for n in $CL_NODES; do
    cl_cert_install "$n" "$cert"
    "$CL_CONFNODE" plan -c "$CL_STATE/$n/confnode.conf" >"$CL_STATE/$n/plan.txt" 2>&1 ||
        cl_die "$n: confnode plan finds the certificate lacking: $(cat "$CL_STATE/$n/plan.txt")"
done
cl_log "certificate $cert: SAN $(cl_cert_sans "$cert")"
cl_dns_write
cl_dns_start || cl_die "dnsmasq did not start: $(tail -n 5 "$CL_STATE/infra/dnsmasq.out" 2>/dev/null)"

# ---------------------------------------------------------------------------- nodes

for n in $CL_NODES; do
    cl_node_start "$n"
done
# shellcheck disable=SC2086 # a word list
cl_nodes_wait_ready 30 $CL_NODES || cl_die "the nodes did not come up"
cl_log "up in $((SECONDS - started)) s"
cl_summary
