#!/bin/bash
# Calls from sipp over UDP and TCP into the demo VMR.
#
# sipp's built-in uac scenario (INVITE, 100/200 with SDP, ACK, BYE) places 200 calls
# over UDP and 200 over one TCP connection; every call must succeed. Afterwards the
# admin API counts at least 400 calls in total and no live dialog or call.
#
#   tests/integration/test_sipp_udp_tcp.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
it_require sipp

calls=200
it_alloc_node_ports
it_write_config "$IT_TMP/node.conf"
it_start_node "$IT_TMP/node.conf"

before=$(it_status_sum calls_total)

it_sipp_start udp "127.0.0.1:$SIP_PORT" u1 "$calls" 50
it_sipp_wait udp
it_sipp_expect_all udp "$calls"

it_sipp_start tcp "127.0.0.1:$SIP_PORT" t1 "$calls" 50
it_sipp_wait tcp
it_sipp_expect_all tcp "$calls"

it_assert_node_alive
total=$(it_status_sum calls_total)
((total - before >= 2 * calls)) ||
    it_fail "/status calls_total grew by $((total - before)), expected at least $((2 * calls))"
it_log "/status calls_total: $total"

# BYE transactions may linger a moment; dialogs and calls must drain to zero.
it_wait_status_sum dialogs 0 10
it_wait_status_sum calls 0 10

curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" >"$IT_TMP/metrics" ||
    it_fail "GET /metrics failed"
grep -q '^confnode_' "$IT_TMP/metrics" ||
    it_fail "/metrics has no confnode_* sample: $(head -c 300 "$IT_TMP/metrics")"

it_stop_node 10
