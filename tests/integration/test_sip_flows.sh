#!/bin/bash
# Call flows beyond the plain call, each played by sipp from tests/integration/sipp/:
#
#   uac_404.xml     INVITE to a user that is no VMR         -> 404, ACK
#   uac_cancel.xml  CANCEL while a VMR rings (answer_delay) -> 200 to CANCEL, 487, ACK
#   uac_sdp.xml     offer PCMA+PCMU+telephone-event         -> 200 whose SDP answer picks
#                   PCMA or PCMU on a port inside the configured media range; BYE
#
# over UDP and TCP; then, over UDP,
#   uac_late_offer.xml  INVITE without SDP -> 200 with the node's offer; the answer in
#                   the ACK points at sipp's RTP echo: media flows both ways (the node's
#                   RTP in and out counters rise by at least 2 s of 50 packets/s per call)
#   a call 2.5 s later reuses a rested port's still-bound socket (the socket counters);
#   and an INVITE without SDP to a room that requires SRTP -> 488.
# Afterwards no dialog or call is left.
#
#   tests/integration/test_sip_flows.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
it_require sipp

scenarios=$IT_DIR/sipp
calls=20
IT_VMRS_EXTRA=',
    { alias = "ring@example.test"; name = "Ringing room"; answer_delay = 3000; },
    { alias = "secure@example.test"; srtp = "required"; }'
it_alloc_node_ports
it_write_config "$IT_TMP/node.conf"
it_start_node "$IT_TMP/node.conf"

for transport in u1 t1; do
    it_sipp_start "404-$transport" "127.0.0.1:$SIP_PORT" "$transport" "$calls" 20 \
        -sf "$scenarios/uac_404.xml" -s nobody
    it_sipp_wait "404-$transport"
    it_sipp_expect_all "404-$transport" "$calls"

    it_sipp_start "cancel-$transport" "127.0.0.1:$SIP_PORT" "$transport" "$calls" 20 \
        -sf "$scenarios/uac_cancel.xml" -s ring
    it_sipp_wait "cancel-$transport"
    it_sipp_expect_all "cancel-$transport" "$calls"

    it_sipp_start "sdp-$transport" "127.0.0.1:$SIP_PORT" "$transport" "$calls" 20 \
        -sf "$scenarios/uac_sdp.xml" -s meet
    it_sipp_wait "sdp-$transport"
    it_sipp_expect_all "sdp-$transport" "$calls"

    # every answer: an even RTP port inside media.port_min..port_max, PCMA or PCMU
    answers=$(grep -c 'answer port=' "$IT_TMP/sdp-$transport.log" || true)
    [[ "$answers" == "$calls" ]] ||
        it_fail "sdp-$transport: $answers SDP answers logged, expected $calls"
    bad=$(awk -v lo="$MEDIA_MIN" -v hi="$MEDIA_MAX" '
        match($0, /answer port=[0-9]+ pt=[0-9]+/) {
            split(substr($0, RSTART, RLENGTH), f, /[= ]/)
            port = f[3] + 0; pt = f[5] + 0
            if (port < lo || port > hi || port % 2 != 0 || (pt != 0 && pt != 8)) print
        }' "$IT_TMP/sdp-$transport.log")
    [[ -z "$bad" ]] ||
        it_fail "sdp-$transport: SDP answers outside $MEDIA_MIN..$MEDIA_MAX or not PCMA/PCMU:
$bad"
    it_log "$transport: 404, CANCEL/487 and SDP answers ok"
done

# metric NAME: NAME summed over its labelled series in /metrics
metric() {
    curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" |
        awk -v n="$1" '$1 ~ "^" n "({|$)" { s += $2 } END { print s + 0 }'
}
late=3
in0=$(metric confnode_media_rtp_in_total)
out0=$(metric confnode_media_rtp_out_total)
it_sipp_start late "127.0.0.1:$SIP_PORT" u1 "$late" 10 -sf "$scenarios/uac_late_offer.xml" \
    -s meet -rtp_echo
it_sipp_wait late
it_sipp_expect_all late "$late"
offers=$(grep -c 'offer port=' "$IT_TMP/late.log" || true)
[[ "$offers" == "$late" ]] || it_fail "late offer: $offers offers logged, expected $late"
in1=$(metric confnode_media_rtp_in_total)
out1=$(metric confnode_media_rtp_out_total)
it_log "late offer: RTP out $((out1 - out0)), echoed back in $((in1 - in0)) over $late calls"
((out1 - out0 >= late * 100)) ||
    it_fail "late offer: the node sent $((out1 - out0)) RTP packets to $late calls held 3 s"
((in1 - in0 >= late * 100)) ||
    it_fail "late offer: the node received $((in1 - in0)) RTP packets back from $late calls"

# the ports of those calls have rested 2 s: the next call to the room reuses one's
# still-bound socket instead of binding a new one
sleep 2.5
reuses0=$(metric confnode_media_socket_reuses_total)
binds0=$(metric confnode_media_socket_binds_total)
it_sipp_start reuse "127.0.0.1:$SIP_PORT" u1 1 1 -sf "$scenarios/uac_sdp.xml" -s meet
it_sipp_wait reuse
it_sipp_expect_all reuse 1
reuses1=$(metric confnode_media_socket_reuses_total)
binds1=$(metric confnode_media_socket_binds_total)
it_log "a call after the ports rested: $((reuses1 - reuses0)) socket(s) reused, $((binds1 - binds0)) bound"
((reuses1 > reuses0)) || it_fail "no media socket was reused ($((binds1 - binds0)) bound)"

# a room that requires SRTP cannot make a plain offer: 488 with a Warning
cat >"$IT_TMP/late_srtp.sip" <<'EOF'
INVITE sip:secure@example.test SIP/2.0
Via: SIP/2.0/@TRANSPORT@ 127.0.0.1:@LPORT@;branch=@BRANCH@
From: <sip:caller@client.example.test>;tag=@TAG@
To: <sip:secure@example.test>
Call-ID: @CALLID@
CSeq: 1 INVITE
Contact: <sip:caller@127.0.0.1:@LPORT@>
Max-Forwards: 70
Content-Length: 0

EOF
reply=$(it_sipsend --transport udp --port "$SIP_PORT" "$IT_TMP/late_srtp.sip" 2>&1 || true)
[[ "$reply" =~ codes=(100,)?488\  ]] ||
    it_fail "late offer to the SRTP room: '$reply', expected 488"

it_assert_node_alive
it_wait_status_sum dialogs 0 10
it_wait_status_sum calls 0 10
it_stop_node 10
