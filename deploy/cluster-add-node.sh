#!/bin/bash
# Adds one node to a running local cluster (deploy/cluster-up.sh), live, the way a
# production cluster scales out:
#
#   1. the new node's namespace and address (node<K>, 10.231.X.(10+K));
#   2. every node's config lists the new node (`cluster.nodes`), and `confnode plan`
#      of the new config gives the DNS records and SAN list it now needs;
#   3. a new cluster certificate with one more SAN (`confnode csr` with the cluster
#      key, signed by the local CA) is installed on every node (running nodes keep
#      the certificate they loaded until their next start: the old one still names
#      them and sip.<domain>), and `confnode plan --cert` must accept it;
#   4. DNS: the new node's A record and one more sip.<domain> round-robin A record
#      (dnsmasq re-reads its hosts file on SIGHUP);
#   5. the node starts and joins through the sentinels. No other node restarts (their
#      pids are checked before and after).
#
#   deploy/cluster-add-node.sh [-d STATE]
#
# Prints the new node and the cluster summary. On failure the new node is removed
# again and the exit status is 1.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

state=/tmp/confnode-cluster
while [[ $# -gt 0 ]]; do
    case $1 in
    -d | --state) state=${2:?}; shift 2 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2
        ;;
    *) cl_die "unknown argument $1 (usage: $0 [-d STATE])" ;;
    esac
done
[[ $EUID -eq 0 ]] || cl_die "network namespaces need root"
cl_need ip setsid openssl curl jq
cl_load "$state"
for n in $CL_NODES; do
    cl_pid "$n" >/dev/null || cl_die "$n is not running: bring the cluster up first (cluster-up.sh)"
done
cl_pid dnsmasq >/dev/null || cl_die "dnsmasq is not running: bring the cluster up first"

started=$SECONDS
old_nodes=$CL_NODES
last=${CL_NODES##* }
k=$((${last#node} + 1))
node=node$k
((k <= 100)) || cl_die "at most 100 nodes"
declare -A before
for n in $old_nodes; do
    before[$n]=$(cl_pid "$n")
done

rollback() {
    local rc=$? n
    trap - EXIT INT TERM
    if [[ $rc -ne 0 ]]; then
        set +e
        cl_log "adding $node failed: removing it again"
        cl_stop "$node" TERM 5
        cl_env_set CL_NODES "$old_nodes"
        for n in $CL_NODES; do
            cl_node_conf "$n"
        done
        cl_dns_write && cl_dns_reload
        ip netns del "$(cl_ns "$node")" 2>/dev/null
    fi
    exit "$rc"
}
trap rollback EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cl_log "adding $node ($(cl_ip "$node")) to cluster $CL_ID"
cl_env_set CL_NODES "$CL_NODES $node"
cl_node_netns "$node"
for n in $CL_NODES; do
    cl_node_conf "$n"
done
cert=$(cl_cert_make "$CL_STATE/$node/confnode.conf")
for n in $CL_NODES; do
    cl_cert_install "$n" "$cert"
done
"$CL_CONFNODE" plan -c "$CL_STATE/$node/confnode.conf" --cert "$CL_STATE/$node/tls/cluster.crt" \
    >"$CL_STATE/$node/plan.txt" 2>&1 ||
    cl_die "confnode plan finds the new certificate lacking: $(cat "$CL_STATE/$node/plan.txt")"
cl_log "certificate $cert: SAN $(cl_cert_sans "$cert") (installed on every node)"
cl_dns_write
cl_dns_reload
cl_log "DNS: $node.$CL_DOMAIN and sip.$CL_DOMAIN A $(cl_ip "$node") added"
cl_node_start "$node"
cl_nodes_wait_ready 30 "$node" || cl_die "$node did not come up"
for n in $old_nodes; do
    [[ "$(cl_pid "$n" || true)" == "${before[$n]}" ]] ||
        cl_die "$n restarted or stopped while $node joined (pid ${before[$n]} before)"
done
cl_log "$node joined in $((SECONDS - started)) s; no other node restarted"
cl_summary
