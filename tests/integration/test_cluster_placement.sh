#!/bin/bash
# Calls to one room arriving at three different nodes all end up with the room's
# owner.
#
# A local cluster of three nodes (deploy/cluster-up.sh: network namespaces, Redis
# with Sentinel, dnsmasq, a local CA). For room1 and room2 at once, three calls arrive
# together, one at each node, and are held 5 s. While they are up Redis names one
# owner per room, and every call either completed (at the owner, or through the node
# it reached once non-owners forward calls) or was answered 302 with that owner in
# the Contact. Each node's /status counts exactly the conferences Redis gives it, and
# every answered call is up on its room's owner (none on the other nodes).
# When the calls have ended the conferences are released. With one call keeping
# room1 up on its (new) owner, five calls placed directly at that owner complete.
#
#   tests/integration/test_cluster_placement.sh BUILD_DIR     (as root: ip netns)
# shellcheck source-path=SCRIPTDIR disable=SC2086 # CL_NODES and friends are word lists
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../../deploy/cluster-lib.sh
source "$IT_ROOT/deploy/cluster-lib.sh"

it_init "$@"
cl_test_up 3

rooms="room1 room2"
owned() { [[ -n "$(cl_owner "$1")" ]]; }

for room in $rooms; do
    for n in $CL_NODES; do
        cl_call "$room-$n" "$n" "$room" 5000
    done
done

declare -A owner_of
for room in $rooms; do
    cl_wait 10 "Redis to name an owner for $room" owned "$room" ||
        it_fail "no owner for $room in Redis"
    owner_of[$room]=$(cl_owner "$room")
    [[ " $CL_NODES " == *" ${owner_of[$room]} "* ]] ||
        it_fail "$room is owned by '${owner_of[$room]}', which is no node"
    owner_ip=$(cl_ip "${owner_of[$room]}")
    for n in $CL_NODES; do
        cl_wait_outcome "$room-$n" 15
        out=$(cl_outcomes "$room-$n")
        case $out in
        200 | "302 $owner_ip") ;;
        *) it_fail "$room at $n: '$out'; expected 200 or 302 to the owner $owner_ip" ;;
        esac
        it_log "$room at $n: ${out/302/302 ->} (owner ${owner_of[$room]})"
    done
    # the owner stays the owner while its calls are up
    [[ "$(cl_owner "$room")" == "${owner_of[$room]}" ]] ||
        it_fail "$room changed owner while its calls were up: $(cl_owner "$room")"
done

# every answered call is up on its room's owner, none elsewhere; each node owns the
# conferences Redis gives it
for n in $CL_NODES; do
    confs=0
    calls=0
    for room in $rooms; do
        [[ ${owner_of[$room]} == "$n" ]] || continue
        confs=$((confs + 1))
        calls=$((calls + $(cat "$IT_TMP"/"$room"-node*.calls | grep -c 'outcome=200' || true)))
    done
    cl_wait_status 5 "$n to host $calls calls of its $confs conferences" \
        ".cluster.conferences == $confs and .totals.calls == $calls" "$n"
    it_log "$n: $confs conferences, $calls calls up"
done

for room in $rooms; do
    for n in $CL_NODES; do
        it_sipp_wait "$room-$n"
        it_sipp_expect_all "$room-$n" 1
    done
done

# every participant left: the conferences are released
released() { [[ -z "$(cl_owner room1)" && -z "$(cl_owner room2)" ]]; }
cl_wait 10 "room1 and room2 to be released" released ||
    it_fail "conferences still owned after their calls ended: room1 $(cl_owner room1), room2 $(cl_owner room2)"

# with one call keeping room1's conference up, calls placed at its owner complete there
cl_hold held node3 room1 8000
owner=$CL_HELD_NODE
[[ "$(cl_owner room1)" == "$owner" ]] ||
    it_fail "room1's held call is up on $owner but Redis names '$(cl_owner room1)'"
cl_call_run direct "$owner" room1 0 5
[[ "$(cl_outcomes direct | sort -u)" == 200 ]] ||
    it_fail "calls placed at room1's owner $owner: $(cl_outcome_counts direct)"
it_sipp_wait "$CL_HELD_NAME"
it_sipp_expect_all "$CL_HELD_NAME" 1
cl_wait_status 10 "every node connected, none degraded" \
    '.cluster.connected and (.cluster.degraded | not)' $CL_NODES
cl_test_finish
