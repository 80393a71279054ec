#!/bin/bash
# Redis gone entirely: every node goes on in degraded mode, placing conferences on
# itself, and comes back when Redis does.
#
# A local cluster of three nodes (deploy/cluster-up.sh). A call holds room4 up on
# its owner. Then the sentinels and both Redis servers are killed (SIGKILL). Every
# node's /status says degraded (with since when) and /metrics
# confnode_cluster_degraded 1. A call into room1 at each node completes on that node
# (200, no redirect: there is no one to ask). Redis and the sentinels start again:
# every node is connected and not degraded within a bounded time, and placement is
# shared again: three calls into room2, one at each node, find one owner in Redis.
# The call held across the outage ends with its BYE answered.
#
#   tests/integration/test_cluster_degraded.sh BUILD_DIR      (as root: ip netns)
# shellcheck source-path=SCRIPTDIR disable=SC2086 # CL_NODES and friends are word lists
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../../deploy/cluster-lib.sh
source "$IT_ROOT/deploy/cluster-lib.sh"

it_init "$@"
cl_test_up 3

cl_hold held node1 room4 15000

cl_redis_all_down
t0=$(date +%s%N)
cl_wait_status 15 "every node to notice Redis is gone" \
    '.cluster.degraded and (.cluster.connected | not) and .cluster.degraded_since > 0' $CL_NODES
it_log "every node degraded $((($(date +%s%N) - t0) / 1000000)) ms after Redis went away"
for n in $CL_NODES; do
    cl_in "$(cl_ns "$n")" curl -fsS --max-time 3 "http://127.0.0.1:$CL_ADMIN_PORT/metrics" |
        grep -qx 'confnode_cluster_degraded 1' || it_fail "$n /metrics does not say degraded"
done

# calls complete locally
for n in $CL_NODES; do
    cl_call "local-$n" "$n" room1 1000
done
for n in $CL_NODES; do
    it_sipp_wait "local-$n"
    it_sipp_expect_all "local-$n" 1
    out=$(cl_outcomes "local-$n")
    [[ $out == 200 ]] || it_fail "room1 at $n while Redis is gone: '$out', expected 200 on $n"
done
it_log "room1 completed locally on every node while degraded"
cl_wait_status 5 "the nodes still degraded" '.cluster.degraded' $CL_NODES

cl_redis_all_up || it_fail "Redis did not start again"
t1=$(date +%s%N)
cl_wait_status 30 "every node to be back on Redis" \
    '.cluster.connected and (.cluster.degraded | not) and .cluster.degraded_since == 0' $CL_NODES
it_log "every node restored $((($(date +%s%N) - t1) / 1000000)) ms after Redis came back"

for n in $CL_NODES; do
    cl_call "room2-$n" "$n" room2 3000
done
owned() { [[ -n "$(cl_owner room2)" ]]; }
cl_wait 10 "an owner for room2" owned || it_fail "room2 has no owner in Redis after the restore"
owner=$(cl_owner room2)
for n in $CL_NODES; do
    cl_wait_outcome "room2-$n" 15
    out=$(cl_outcomes "room2-$n")
    [[ $out == 200 || $out == "302 $(cl_ip "$owner")" ]] ||
        it_fail "room2 at $n after the restore: '$out'; the owner is $owner"
    it_sipp_wait "room2-$n"
    it_sipp_expect_all "room2-$n" 1
done
it_sipp_wait "$CL_HELD_NAME"
it_sipp_expect_all "$CL_HELD_NAME" 1
cl_test_finish
