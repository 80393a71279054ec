#!/bin/bash
# The Redis primary dies: Sentinel promotes the replica, every node follows it, and
# calls keep completing.
#
# A local cluster of three nodes (deploy/cluster-up.sh: a Redis primary on :6379, a
# replica on :6380, three sentinels with quorum 2). A call holds room1 up; calls
# into room3 keep arriving at node2 (2 per second) across the fail-over. The
# primary is killed (SIGKILL). Within a bounded time the sentinels name :6380, and
# every node's /status shows it as the primary, connected, not degraded, with one
# fail-over counted (and /metrics says so). Every call placed during the fail-over
# succeeded; the held call ends with a BYE answered; three calls into room2, one at
# each node, find a single owner in the new primary.
#
#   tests/integration/test_cluster_failover.sh BUILD_DIR      (as root: ip netns)
# shellcheck source-path=SCRIPTDIR disable=SC2086 # CL_NODES and friends are word lists
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../../deploy/cluster-lib.sh
source "$IT_ROOT/deploy/cluster-lib.sh"

it_init "$@"
cl_test_up 3

old=$(cl_primary)
[[ "$old" == "$(cl_infra_ip):6379" ]] || it_fail "the sentinels name $old as primary, not :6379"
cl_wait_status 5 "every node on $old" ".cluster.primary == \"$old\" and .cluster.failovers == 0" \
    $CL_NODES

cl_hold held node1 room1 12000
cl_call stream node2 room3 0 16 2

kill -KILL "$(cl_pid redis-6379)"
t0=$(date +%s%N)
new="$(cl_infra_ip):6380"
promoted() { [[ "$(cl_primary)" == "$new" ]]; }
cl_wait 30 "the sentinels to promote $new" promoted || it_fail "no fail-over to $new within 30 s"
it_log "sentinels promoted $new $((($(date +%s%N) - t0) / 1000000)) ms after the primary died"
cl_wait_status 30 "every node to follow the fail-over to $new" \
    ".cluster.primary == \"$new\" and .cluster.connected and (.cluster.degraded | not) and .cluster.failovers == 1" \
    $CL_NODES
it_log "every node on $new $((($(date +%s%N) - t0) / 1000000)) ms after the primary died"
for n in $CL_NODES; do
    cl_in "$(cl_ns "$n")" curl -fsS --max-time 3 "http://127.0.0.1:$CL_ADMIN_PORT/metrics" \
        >"$IT_TMP/$n.metrics" || it_fail "GET /metrics on $n failed"
    { grep -qx 'confnode_cluster_failovers_total 1' "$IT_TMP/$n.metrics" &&
        grep -qx 'confnode_cluster_degraded 0' "$IT_TMP/$n.metrics"; } ||
        it_fail "$n /metrics: $(grep '^confnode_cluster' "$IT_TMP/$n.metrics" | paste -sd' ')"
done

# calls placed across the fail-over all succeeded; the held call ended normally
it_sipp_wait stream
it_sipp_expect_all stream 16
it_log "room3 calls at node2 across the fail-over: $(cl_outcome_counts stream)"
it_sipp_wait "$CL_HELD_NAME"
it_sipp_expect_all "$CL_HELD_NAME" 1

# placement works on the new primary: one owner for room2
for n in $CL_NODES; do
    cl_call "room2-$n" "$n" room2 3000
done
owned() { [[ -n "$(cl_owner room2)" ]]; }
cl_wait 10 "an owner for room2 in the new primary" owned || it_fail "room2 has no owner in $new"
owner=$(cl_owner room2)
for n in $CL_NODES; do
    cl_wait_outcome "room2-$n" 15
    out=$(cl_outcomes "room2-$n")
    [[ $out == 200 || $out == "302 $(cl_ip "$owner")" ]] ||
        it_fail "room2 at $n: '$out'; the owner is $owner ($(cl_ip "$owner"))"
    it_sipp_wait "room2-$n"
    it_sipp_expect_all "room2-$n" 1
done
cl_test_finish
