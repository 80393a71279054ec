#!/bin/bash
# Call flows beyond the plain call, each played by sipp from tests/integration/sipp/:
#
#   uac_404.xml     INVITE to a user that is no VMR         -> 404, ACK
#   uac_cancel.xml  CANCEL while a VMR rings (answer_delay) -> 200 to CANCEL, 487, ACK
#   uac_sdp.xml     offer PCMA+PCMU+telephone-event         -> 200 whose SDP answer picks
#                   PCMA or PCMU on a port inside the configured media range; BYE
#
# over UDP and TCP. Afterwards no dialog or call is left.
#
#   tests/integration/test_sip_flows.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
it_require sipp

scenarios=$IT_DIR/sipp
calls=20
IT_VMRS_EXTRA=',
    { alias = "ring@example.test"; name = "Ringing room"; answer_delay = 3000; }'
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

it_assert_node_alive
it_wait_status_sum dialogs 0 10
it_wait_status_sum calls 0 10
it_stop_node 10
