#!/bin/bash
# The node that owns a conference dies: the next join places the conference again on
# a survivor, within the lease time.
#
# A local cluster of three nodes (deploy/cluster-up.sh; lease_ttl 3 s, heartbeat
# 1 s). A call holds room1 up on its owner, which is then killed (SIGKILL: no
# goodbye to Redis). Joins keep arriving at the survivors every half second; once
# the dead owner's lease has run out, a join is taken by a survivor (it completes,
# or is sent to a live survivor) instead of being sent to the dead node. That must
# happen within the lease plus two heartbeats. A held call then shows the new owner
# in Redis and in its /status, and the dead node has left Redis's node set.
#
#   tests/integration/test_cluster_owner_dies.sh BUILD_DIR    (as root: ip netns)
# shellcheck source-path=SCRIPTDIR disable=SC2086 # CL_NODES and friends are word lists
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../../deploy/cluster-lib.sh
source "$IT_ROOT/deploy/cluster-lib.sh"

it_init "$@"
cl_test_up 3

cl_hold first node1 room1 60000
dead=$CL_HELD_NODE
first_run=$CL_HELD_NAME
[[ "$(cl_owner room1)" == "$dead" ]] || it_fail "room1 is up on $dead but Redis names '$(cl_owner room1)'"
cl_wait_status 5 "$dead to count its call" '.totals.calls == 1' "$dead"
survivors=$(tr ' ' '\n' <<<"$CL_NODES" | grep -vx "$dead" | paste -sd' ')
it_log "room1 is up on $dead; killing it (survivors: $survivors)"

kill -KILL "$(cl_pid "$dead")"
t0=$(date +%s%N)
limit_ms=$(((CL_LEASE + 2 * CL_HEARTBEAT) * 1000))
dead_ip=$(cl_ip "$dead")
placed=""
for ((i = 0; i < 60; i++)); do
    for s in $survivors; do
        # a join forwarded to the dead owner fails: give up on it after 4 s
        CL_SIPP_OPTS="-recv_timeout 4000" cl_call "join-$i-$s" "$s" room1 0
        it_sipp_wait "join-$i-$s"
        out=$(cl_outcomes "join-$i-$s")
        case $out in
        "302 $dead_ip" | "") ;; # the lease has not run out yet
        200 | "302 "*)
            [[ $out == 200 ]] && placed=$s || placed=$(cl_node_of_ip "${out#302 }")
            [[ " $survivors " == *" $placed "* ]] || it_fail "join at $s: '$out' names no survivor"
            it_sipp_expect_all "join-$i-$s" 1
            break 2
            ;;
        *)
            it_sipp_show "join-$i-$s"
            it_fail "join at $s: unexpected outcome '$out'"
            ;;
        esac
    done
    (($(date +%s%N) - t0 < 15000000000)) || break
    sleep 0.5
done
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
[[ -n "$placed" ]] || it_fail "after ${elapsed_ms} ms joins were still sent to the dead $dead"
it_log "room1 served by the survivors again ${elapsed_ms} ms after $dead died (join at $s: $out; lease ${CL_LEASE} s)"
((elapsed_ms <= limit_ms)) ||
    it_fail "re-placement took ${elapsed_ms} ms, more than the lease plus two heartbeats (${limit_ms} ms)"

cl_call_stop "$first_run" # its call was on the dead node

# a held join shows the new owner in Redis and in its /status
cl_hold second "$placed" room1 4000
[[ "$CL_HELD_NODE" != "$dead" && "$(cl_owner room1)" == "$CL_HELD_NODE" ]] ||
    it_fail "room1 is up on $CL_HELD_NODE but Redis names '$(cl_owner room1)'"
cl_wait_status 5 "the new owner to count room1" '.cluster.conferences >= 1' "$CL_HELD_NODE"
cl_redis sismember confnode:nodes "$dead" | grep -qx 0 ||
    it_fail "$dead is still in Redis's node set after its lease ran out"
it_sipp_wait "$CL_HELD_NAME"
it_sipp_expect_all "$CL_HELD_NAME" 1
cl_wait_status 5 "the survivors connected" '.cluster.connected' $survivors
cl_test_finish $survivors
