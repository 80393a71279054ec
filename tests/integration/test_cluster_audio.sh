#!/bin/bash
# Participants of one conference who arrive at different cluster nodes all hear each
# other, through the conference's owner.
#
# A local cluster of three nodes (deploy/cluster-up.sh). confbench --conference 3 runs
# in the client namespace against sip.<domain>:5060, the round-robin name holding
# every node's address, so participant i calls the i-th node over UDP: one
# participant at each node, each sending its own tone (400, 700, 1100 Hz) for 4 s.
# While the calls are up Redis names one owner for the room, the owner's /status
# counts the three calls and its one conference, and the other two nodes host
# nothing (they proxied their calls, Record-Routing them). confbench must exit 0:
# every participant was answered 200, heard both other tones and not its own
# (Goertzel ratios in its JSON), and every SDP answer put the media on the owner's
# address. The calls placed at the non-owners carry a Record-Route set, the one at
# the owner none; the BYEs follow it, so the conference is released afterwards. The
# same with SRTP (RTP/SAVP, SDES keys) in a second room.
#
#   tests/integration/test_cluster_audio.sh BUILD_DIR     (as root: ip netns)
# shellcheck source-path=SCRIPTDIR disable=SC2086 # CL_NODES and friends are word lists
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../../deploy/cluster-lib.sh
source "$IT_ROOT/deploy/cluster-lib.sh"

it_init "$@"
CONFBENCH=$IT_BUILD/bin/confbench
[[ -x "$CONFBENCH" ]] || it_fail "$CONFBENCH is not built"
cl_test_up 3

# conference NAME ROOM [OPTION...]: starts confbench --conference 3 into ROOM from the
# client namespace, one participant at each node; $IT_TMP/NAME.{json,out,err,pid}.
conference() {
    local name=$1 room=$2 pid
    shift 2
    (
        exec timeout -k 5 40 ip netns exec "$(cl_ns_client)" "$CONFBENCH" \
            "sip.$CL_DOMAIN:$CL_SIP_PORT" --dns "$(cl_infra_ip):53" -b "$(cl_client_ip)" \
            -u "$room" --domain "$CL_DOMAIN" --timeout 5s --conference 3 \
            --tones 400,700,1100 --hold 4s --json "$IT_TMP/$name.json" "$@" \
            >"$IT_TMP/$name.out" 2>"$IT_TMP/$name.err"
    ) &
    pid=$!
    IT_PIDS+=("$pid")
    echo "$pid" >"$IT_TMP/$name.pid"
}

# check_conference NAME ROOM SRTP: while run NAME holds its calls: one owner in Redis
# hosts all three, the other nodes none; then confbench's verdict and JSON.
check_conference() {
    local name=$1 room=$2 srtp=$3 json=$IT_TMP/$1.json owner owner_ip n i j r rr t all
    local others=()
    owned() { [[ -n "$(cl_owner "$room")" ]]; }
    cl_wait 10 "Redis to name an owner for $room" owned || {
        cat "$IT_TMP/$name.out" "$IT_TMP/$name.err" >&2
        it_fail "no owner for $room in Redis"
    }
    owner=$(cl_owner "$room")
    [[ " $CL_NODES " == *" $owner "* ]] || it_fail "$room is owned by '$owner', which is no node"
    owner_ip=$(cl_ip "$owner")
    for n in $CL_NODES; do
        [[ $n == "$owner" ]] || others+=("$n")
    done
    cl_wait_status 8 "$owner to host the 3 calls of $room" \
        '.totals.calls == 3 and .cluster.conferences == 1' "$owner"
    for n in "${others[@]}"; do
        cl_status_is "$n" '.totals.calls == 0 and .cluster.conferences == 0' ||
            it_fail "$n is not $room's owner but hosts calls or conferences:" \
                "$(cl_status "$n" | jq -c '{calls: .totals.calls, cluster: .cluster}')"
    done
    [[ "$(cl_owner "$room")" == "$owner" ]] ||
        it_fail "$room changed owner while its calls were up: $(cl_owner "$room")"
    it_log "$room: owner $owner ($owner_ip) hosts the 3 calls; ${others[*]} none"

    it_wait_exit "$(cat "$IT_TMP/$name.pid")" 30 ||
        it_fail "confbench $name still running after 30 s"
    cat "$IT_TMP/$name.out" >&2
    if [[ "$IT_WAIT_RC" != 0 ]]; then
        tail -n 20 "$IT_TMP/$name.err" >&2
        it_fail "confbench $name: exit $IT_WAIT_RC, expected 0"
    fi

    # jget PATH: the value at PATH as text (false too); a missing one fails the
    # comparison it is used in
    jget() {
        jq -er "$1 | select(. != null) | tostring" "$json" 2>/dev/null || echo "<missing $1>"
    }
    [[ "$(jget '.participants | length')" == 3 ]] || it_fail "$name: expected 3 participants"
    [[ "$(jget .srtp)" == "$srtp" ]] || it_fail "$name: the JSON says srtp $(jget .srtp)"
    # one participant at each node's own address
    t=$(jq -r '[.participants[].target] | sort | join(" ")' "$json")
    all=$(for n in $CL_NODES; do echo "$(cl_ip "$n"):$CL_SIP_PORT"; done | sort | paste -sd' ')
    [[ "$t" == "$all" ]] || it_fail "$name: participants called '$t', not one at each of $all"
    for i in 0 1 2; do
        [[ "$(jget ".participants[$i].sip_status")" == 200 ]] ||
            it_fail "$name: participant $i not answered 200"
        for j in 0 1 2; do
            r=$(jget ".participants[$i].ratios[$j]")
            if ((i == j)); then
                jq -e --argjson r "$r" -n '$r <= 0.01' >/dev/null ||
                    it_fail "$name: participant $i hears its own tone: ratio $r"
            else
                jq -e --argjson r "$r" -n '$r >= 0.05' >/dev/null ||
                    it_fail "$name: participant $i does not hear participant $j's tone: ratio $r"
            fi
        done
        (($(jget ".participants[$i].rtp_received") > 100)) ||
            it_fail "$name: participant $i: too little audio"
        [[ "$(jget ".participants[$i].rtp_rejected")" == 0 ]] ||
            it_fail "$name: participant $i rejected packets from the owner"
        # the answer, whichever node was called, is the owner's
        [[ "$(jget ".participants[$i].media_address")" == "$owner_ip":* ]] ||
            it_fail "$name: participant $i (called $(jget ".participants[$i].target")) was" \
                "answered with media at $(jget ".participants[$i].media_address"), not at the" \
                "owner $owner_ip"
        # proxied by a non-owner (Record-Routed), answered directly by the owner
        rr=$(jget ".participants[$i].record_routes")
        if [[ "$(jget ".participants[$i].target")" == "$owner_ip:$CL_SIP_PORT" ]]; then
            ((rr == 0)) ||
                it_fail "$name: the call placed at the owner has $rr Record-Route entries"
        else
            ((rr >= 1)) ||
                it_fail "$name: participant $i's call through a non-owner was not Record-Routed"
        fi
    done
    # ACK and BYE went through the proxies: no call ended by the node, every BYE answered
    if grep -E 'BYE answered|ended the call|no final response' "$IT_TMP/$name.err" >&2; then
        it_fail "$name: in-dialog requests did not reach the owner (confbench's messages above)"
    fi
    released() { [[ -z "$(cl_owner "$room")" ]]; }
    cl_wait 10 "$room to be released" released ||
        it_fail "$room still owned by $(cl_owner "$room") after its calls ended"
    cl_wait_status 5 "$owner to have no call left" '.totals.calls == 0' "$owner"
}

conference plain room1
check_conference plain room1 false
conference srtp room2 --srtp
check_conference srtp room2 true

if grep -lE 'Sanitizer|runtime error:' "$IT_TMP"/*.err >&2; then
    it_fail "confbench reported a sanitizer error (files above)"
fi
cl_wait_status 5 "every node connected, none degraded" \
    '.cluster.connected and (.cluster.degraded | not)' $CL_NODES
cl_test_finish
