#!/bin/bash
# Maintenance: a drained node takes no new conferences, keeps its calls until they
# end, then leaves the cluster registry.
#
# A local cluster of three nodes (deploy/cluster-up.sh). A call holds room1 up on
# its owner D, which is then drained with `confnode drain` (its admin API, inside
# its namespace). D's /status says draining; D is still in Redis (its lease, drain
# flag set) because its call is up. New conferences go elsewhere: three calls into
# room2, one at each node (D included), find an owner that is not D, and D's
# conference count stays 1. D's call is untouched until its BYE; then D leaves the
# registry (its lease and its place in the node set are gone, /status left = true)
# and `confnode drain --wait` agrees. A call into room3 at D is sent to another node.
# Finally SIGUSR2 drains an idle node, which leaves at once.
#
#   tests/integration/test_cluster_drain.sh BUILD_DIR         (as root: ip netns)
# shellcheck source-path=SCRIPTDIR disable=SC2086 # CL_NODES and friends are word lists
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../../deploy/cluster-lib.sh
source "$IT_ROOT/deploy/cluster-lib.sh"

it_init "$@"
cl_test_up 3

cl_hold held node1 room1 15000
d=$CL_HELD_NODE
cl_wait_status 5 "$d to count its call" '.totals.calls == 1' "$d"
others=$(tr ' ' '\n' <<<"$CL_NODES" | grep -vx "$d" | paste -sd' ')
it_log "room1 is up on $d; draining $d"

cl_in "$(cl_ns "$d")" "$CONFNODE" drain --admin "127.0.0.1:$CL_ADMIN_PORT" \
    >"$IT_TMP/drain.out" 2>&1 || it_fail "confnode drain failed: $(cat "$IT_TMP/drain.out")"
it_log "confnode drain: $(cat "$IT_TMP/drain.out")"
{ grep -q "draining now" "$IT_TMP/drain.out" && grep -q "1 call up" "$IT_TMP/drain.out"; } ||
    it_fail "confnode drain did not report draining with 1 call up: $(cat "$IT_TMP/drain.out")"
cl_wait_status 5 "$d to report draining" \
    '.cluster.draining and (.cluster.left | not) and .cluster.conferences == 1' "$d"
in_registry() { [[ "$(cl_redis exists "confnode:node:$1")" == 1 ]]; }
drain_flag() { [[ "$(cl_redis hget "confnode:node:$1" drain)" == 1 ]]; }
cl_wait 5 "Redis to carry $d's drain flag" drain_flag "$d" || it_fail "$d's drain flag is not in Redis"
in_registry "$d" || it_fail "$d left the registry while its call is up"

# new conferences go elsewhere
for n in $CL_NODES; do
    cl_call "room2-$n" "$n" room2 2000
done
owned() { [[ -n "$(cl_owner room2)" ]]; }
cl_wait 10 "an owner for room2" owned || it_fail "room2 has no owner"
owner=$(cl_owner room2)
[[ $owner != "$d" ]] || it_fail "room2 was placed on the draining $d"
for n in $CL_NODES; do
    cl_wait_outcome "room2-$n" 15
    out=$(cl_outcomes "room2-$n")
    [[ $out == 200 || $out == "302 $(cl_ip "$owner")" ]] ||
        it_fail "room2 at $n: '$out'; the owner is $owner"
    it_log "room2 at $n: $out (owner $owner)"
done
for n in $CL_NODES; do
    it_sipp_wait "room2-$n"
    it_sipp_expect_all "room2-$n" 1
done
cl_wait_status 2 "$d to host room1 only" '.cluster.conferences == 1' "$d"

# the held call stays up until its BYE; then the node leaves the registry
cl_status_is "$d" '.totals.calls == 1' || it_fail "$d lost its call while draining"
in_registry "$d" || it_fail "$d left the registry while its call is up"
it_sipp_wait "$CL_HELD_NAME"
it_sipp_expect_all "$CL_HELD_NAME" 1
t0=$(date +%s%N)
cl_wait_status 10 "$d to leave the registry after its last call" '.cluster.left' "$d"
gone() { ! in_registry "$1" && [[ "$(cl_redis sismember confnode:nodes "$1")" == 0 ]]; }
cl_wait 5 "$d out of Redis" gone "$d" || it_fail "$d is still in Redis after leaving"
it_log "$d left the registry $((($(date +%s%N) - t0) / 1000000)) ms after its last call ended"
cl_in "$(cl_ns "$d")" "$CONFNODE" drain -c "$CL_STATE/$d/confnode.conf" --wait 5 \
    >"$IT_TMP/drain2.out" 2>&1 || it_fail "confnode drain --wait: $(cat "$IT_TMP/drain2.out")"
{ grep -q "was draining already" "$IT_TMP/drain2.out" && grep -q "has left" "$IT_TMP/drain2.out"; } ||
    it_fail "confnode drain -c ... --wait: $(cat "$IT_TMP/drain2.out")"

# a new conference asked of the drained node goes to another node
cl_call room3 "$d" room3 2000
cl_wait_outcome room3 15
owned3() { [[ -n "$(cl_owner room3)" ]]; }
cl_wait 5 "an owner for room3" owned3 || it_fail "room3 has no owner"
[[ "$(cl_owner room3)" != "$d" ]] || it_fail "room3 was placed on $d, which has left"
out=$(cl_outcomes room3)
[[ $out == 200 || ($out == "302 "* && $out != "302 $(cl_ip "$d")") ]] ||
    it_fail "room3 at the drained $d: '$out'"
it_log "room3 at $d: $out (owner $(cl_owner room3))"
it_sipp_wait room3
it_sipp_expect_all room3 1

# SIGUSR2 drains an idle node: it leaves at once
p=${others%% *}
kill -USR2 "$(cl_pid "$p")"
cl_wait_status 5 "$p to drain and leave on SIGUSR2" '.cluster.draining and .cluster.left' "$p"
cl_wait 5 "$p out of Redis" gone "$p" || it_fail "$p is still in Redis after SIGUSR2"
grep -q 'event=drain_started node='"$p"' by=SIGUSR2' "$CL_STATE/$p/node.log" ||
    it_fail "$p's log does not say it drained on SIGUSR2"
last=${others##* }
[[ "$(cl_redis smembers confnode:nodes)" == "$last" ]] ||
    it_fail "Redis's node set is '$(cl_redis smembers confnode:nodes | paste -sd' ')', expected only $last"
cl_call_run room4 "$last" room4 0
[[ "$(cl_outcomes room4)" == 200 ]] || it_fail "room4 at $last, the only node left: $(cl_outcomes room4)"
cl_test_finish
