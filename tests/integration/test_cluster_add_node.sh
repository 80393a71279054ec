#!/bin/bash
# Scaling out: deploy/cluster-add-node.sh adds a fourth node to a running cluster,
# and it serves calls.
#
# A local cluster of three nodes (deploy/cluster-up.sh). cluster-add-node.sh gives
# node4 its namespace, a DNS A record (and one more sip.<domain> round-robin
# record), and a new cluster certificate with one more SAN, rolled out to every
# node; no other node restarts (same pids). Then:
#   - `confnode plan -c node4.conf --cert <new certificate>` passes (exit 0), while
#     the first certificate lacks node4's SAN (exit 1);
#   - `confnode doctor <domain>` through the cluster's DNS server finds the SRV
#     record, four addresses behind sip.<domain>, and a good TLS handshake on each;
#   - with calls holding room1..room3 on node1..node3, a new conference (room4) is
#     placed on node4, the least loaded node, and its call completes there.
#
#   tests/integration/test_cluster_add_node.sh BUILD_DIR      (as root: ip netns)
# shellcheck source-path=SCRIPTDIR disable=SC2086 # CL_NODES and friends are word lists
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../../deploy/cluster-lib.sh
source "$IT_ROOT/deploy/cluster-lib.sh"

it_init "$@"
cl_test_up 3

declare -A pid_before
for n in $CL_NODES; do
    pid_before[$n]=$(cl_pid "$n")
done
first_cert=$CL_STATE/pki/cluster-1.crt

t0=$SECONDS
"$CL_ROOT/deploy/cluster-add-node.sh" -d "$CL_STATE" >"$IT_TMP/add-node.out" 2>&1 || {
    tail -n 30 "$IT_TMP/add-node.out" >&2
    it_fail "deploy/cluster-add-node.sh failed"
}
it_log "cluster-add-node.sh took $((SECONDS - t0)) s"
old_nodes=$CL_NODES
cl_load "$CL_STATE"
[[ "$CL_NODES" == "$old_nodes node4" ]] || it_fail "the cluster's nodes are '$CL_NODES' after adding one"
for n in $old_nodes; do
    [[ "$(cl_pid "$n" || true)" == "${pid_before[$n]}" ]] || it_fail "$n restarted while node4 joined"
done
cl_wait_status 10 "node4 up and connected" '.node == "node4" and .cluster.connected' node4

# the certificate: node4's plan accepts the new one, not the first one
new_cert=$CL_STATE/node4/tls/cluster.crt
"$CONFNODE" plan -c "$CL_STATE/node4/confnode.conf" --cert "$new_cert" >"$IT_TMP/plan-new.out" 2>&1 ||
    it_fail "confnode plan rejects the new certificate: $(cat "$IT_TMP/plan-new.out")"
rc=0
"$CONFNODE" plan -c "$CL_STATE/node4/confnode.conf" --cert "$first_cert" >"$IT_TMP/plan-old.out" 2>&1 ||
    rc=$?
if [[ $rc != 1 ]] || ! grep -q "node4.$CL_DOMAIN" "$IT_TMP/plan-old.out"; then
    it_fail "confnode plan with the first certificate: exit $rc, expected 1 naming node4: $(cat "$IT_TMP/plan-old.out")"
fi
for n in $CL_NODES; do
    cmp -s "$new_cert" "$CL_STATE/$n/tls/cluster.crt" || it_fail "$n did not get the new certificate"
done
it_log "new certificate SAN: $(cl_cert_sans "$new_cert")"

# DNS and TLS as a federated edge sees them
cl_in "$(cl_ns_client)" "$CONFNODE" doctor "$CL_DOMAIN" --dns "$(cl_infra_ip):53" \
    --ca "$CL_STATE/pki/ca.crt" --json >"$IT_TMP/doctor.json" 2>"$IT_TMP/doctor.err" ||
    it_fail "confnode doctor $CL_DOMAIN failed: $(head -c 2000 "$IT_TMP/doctor.json") $(cat "$IT_TMP/doctor.err")"
for n in $CL_NODES; do
    grep -q "\"$(cl_ip "$n")" "$IT_TMP/doctor.json" ||
        it_fail "confnode doctor did not find $n ($(cl_ip "$n")) behind sip.$CL_DOMAIN"
done
it_log "confnode doctor $CL_DOMAIN: ok, four addresses behind sip.$CL_DOMAIN"

# placement: rooms 1-3 held on nodes 1-3 (each placed on the least-loaded node, ties
# to the smaller name), then room4 goes to node4
k=0
for room in room1 room2 room3; do
    k=$((k + 1))
    cl_hold "hold-$room" node1 "$room" 20000
    [[ $CL_HELD_NODE == "node$k" ]] || it_fail "$room was placed on $CL_HELD_NODE, expected node$k"
    # its load reaches Redis with its next heartbeat
    cl_wait_status 5 "$CL_HELD_NODE to count its call" '.totals.calls >= 1' "$CL_HELD_NODE"
    sleep "$((CL_HEARTBEAT + 1))"
    held[k]=$CL_HELD_NAME
done
cl_hold hold-room4 node1 room4 2000
[[ $CL_HELD_NODE == node4 ]] || it_fail "room4 was placed on $CL_HELD_NODE, expected node4 (least loaded)"
[[ "$(cl_owner room4)" == node4 ]] || it_fail "Redis names '$(cl_owner room4)' as room4's owner"
cl_wait_status 5 "node4 to host room4" '.cluster.conferences == 1 and .totals.calls == 1' node4
it_sipp_wait "$CL_HELD_NAME"
it_sipp_expect_all "$CL_HELD_NAME" 1
for k in 1 2 3; do
    cl_call_stop "${held[k]}"
done
cl_test_finish
