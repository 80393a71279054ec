#!/bin/bash
# confbench against a real node: a few seconds of load over UDP, TCP and TLS.
#
# Each run must end with exit status 0, no failure, and JSON totals that match the
# requested number of calls (INVITE, ACK, BYE each). OPTIONS and MESSAGE load run
# too (the node answers MESSAGE with 501, so that run says --expect 501; without it
# every MESSAGE must be counted as an unexpected 501 and the exit status be 1).
# Errors must be clear: a port nobody listens on is named with its address and
# counted as connect_refused; a CA that did not sign the node's certificate gives
# the certificate verify reason; with dnsmasq installed, the domain is resolved
# through SRV _sipfederationtls._tcp and A records, and a missing SRV record is a
# setup error (exit 2) that names the record.
#
#   tests/integration/test_confbench_smoke.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
CONFBENCH=$IT_BUILD/bin/confbench
[[ -x "$CONFBENCH" ]] || it_fail "$CONFBENCH is not built"

pki=$IT_TMP/pki
other=$IT_TMP/other-pki
it_alloc_node_ports
it_write_config "$IT_TMP/node.conf"
it_make_certs "$other"
it_start_node "$IT_TMP/node.conf"

# cb NAME ARGS...: runs confbench (bounded), JSON in $IT_TMP/NAME.json, stderr in
# $IT_TMP/NAME.err; sets CB_RC.
cb() {
    local name=$1
    shift
    CB_RC=0
    timeout -k 5 60 "$CONFBENCH" --timeout 5s --json "$IT_TMP/$name.json" "$@" \
        >"$IT_TMP/$name.out" 2>"$IT_TMP/$name.err" || CB_RC=$?
    it_log "confbench $name: exit $CB_RC"
}

cb_show() {
    tail -n 20 "$IT_TMP/$1.err" >&2 || true
}

# jget NAME FILTER: a value from NAME's JSON report.
jget() {
    jq -er "$2" "$IT_TMP/$1.json" 2>/dev/null || it_fail "$1.json lacks $2"
}

# expect_all NAME COUNT PER_CALL: exit 0, COUNT started and succeeded, no failure,
# at least COUNT * PER_CALL requests sent and as many final latencies recorded.
expect_all() {
    local name=$1 count=$2 per=$3 started ok failed sent
    if [[ "$CB_RC" != 0 ]]; then
        cb_show "$name"
        it_fail "confbench $name: exit $CB_RC, expected 0"
    fi
    started=$(jget "$name" .totals.started)
    ok=$(jget "$name" .totals.succeeded)
    failed=$(jget "$name" .totals.failed)
    sent=$(jget "$name" .totals.requests_sent)
    [[ "$started" == "$count" && "$ok" == "$count" && "$failed" == 0 ]] ||
        it_fail "confbench $name: started $started, succeeded $ok, failed $failed;" \
            "expected $count, $count, 0"
    ((sent >= count * per)) || it_fail "confbench $name: $sent requests sent, expected" \
        "at least $((count * per))"
    [[ "$(jget "$name" .totals.unfinished)" == 0 ]] || it_fail "confbench $name: unfinished calls"
}

# --- calls over UDP, TCP (two connections, two source addresses) and verified TLS
cb udp "127.0.0.1:$SIP_PORT" -t udp -r 20 -n 40 -d 10
expect_all udp 40 3
[[ "$(jget udp '.latency.invite_to_200.count')" == 40 ]] || it_fail "udp: INVITE latencies != 40"
[[ "$(jget udp '.latency.non_invite.count')" == 40 ]] || it_fail "udp: BYE latencies != 40"

cb tcp "127.0.0.1:$SIP_PORT" -t tcp -c 2 -b 127.0.0.1,127.0.0.2 -r 20 -n 40 -d 10
expect_all tcp 40 3
(($(jget tcp .totals.connects) >= 2)) || it_fail "tcp: expected at least 2 connections"

cb tls "127.0.0.1:$TLS_PORT" -t tls --ca "$pki/ca.crt" --tls-name sip.example.test \
    --cert "$pki/client.crt" --key "$pki/client.key" -r 20 -n 40 -d 10
expect_all tls 40 3
(($(jget tls .totals.tls_handshakes) >= 1)) || it_fail "tls: no TLS handshake counted"

cb tls_per_call "127.0.0.1:$TLS_PORT" -s handshake --ca "$pki/ca.crt" \
    --tls-name sip.example.test -r 20 -n 20 -d 10
expect_all tls_per_call 20 1
[[ "$(jget tls_per_call .totals.tls_handshakes)" == 20 ]] ||
    it_fail "handshake scenario: expected 20 TLS handshakes"

# --- OPTIONS and MESSAGE
cb options "127.0.0.1:$SIP_PORT" -t tcp -s options -r 50 -n 50 -d 10
expect_all options 50 1

cb message501 "127.0.0.1:$SIP_PORT" -s message --expect 501 -r 20 -n 20 -d 10
expect_all message501 20 1

cb message "127.0.0.1:$SIP_PORT" -s message -r 20 -n 20 -d 10
[[ "$CB_RC" == 1 ]] || it_fail "MESSAGE answered 501 without --expect 501: exit $CB_RC, expected 1"
[[ "$(jget message '.failures.by_code."501"')" == 20 ]] ||
    it_fail "MESSAGE: the 501 answers were not counted by code"
[[ "$(jget message .failures.by_reason.unexpected_response)" == 20 ]] ||
    it_fail "MESSAGE: the 501 answers were not counted as unexpected responses"
grep -q "unexpected 501 to MESSAGE" "$IT_TMP/message.err" ||
    it_fail "MESSAGE: no message about the unexpected 501: $(cat "$IT_TMP/message.err")"

# --- a port nobody listens on
it_free_port
dead=$IT_PORT
cb refused "127.0.0.1:$dead" -t tcp -r 10 -n 5 -d 5
[[ "$CB_RC" == 1 || "$CB_RC" == 2 ]] || it_fail "unreachable target: exit $CB_RC, expected 1 or 2"
grep -q "127.0.0.1:$dead" "$IT_TMP/refused.err" ||
    it_fail "unreachable target: the error does not name 127.0.0.1:$dead: $(cat "$IT_TMP/refused.err")"
grep -qi "refused" "$IT_TMP/refused.err" || it_fail "unreachable target: no 'refused' in the error"
[[ "$(jget refused .failures.by_reason.connect_refused)" == 5 ]] ||
    it_fail "unreachable target: connect_refused is not 5"

cb refused_udp "127.0.0.1:$dead" -t udp -r 10 -n 5 -d 5
[[ "$CB_RC" == 1 ]] || it_fail "unreachable UDP target: exit $CB_RC, expected 1"
grep -q "127.0.0.1:$dead" "$IT_TMP/refused_udp.err" ||
    it_fail "unreachable UDP target: the error does not name the address"

# --- TLS with a CA that did not sign the node's certificate
cb wrongca "127.0.0.1:$TLS_PORT" -t tls --ca "$other/ca.crt" --tls-name sip.example.test \
    -r 10 -n 5 -d 5
[[ "$CB_RC" == 1 ]] || it_fail "wrong CA: exit $CB_RC, expected 1"
grep -qE "certificate verify failed: [a-z]" "$IT_TMP/wrongca.err" ||
    it_fail "wrong CA: no certificate verify reason: $(cat "$IT_TMP/wrongca.err")"
[[ "$(jget wrongca .failures.by_reason.tls_failure)" == 5 ]] || it_fail "wrong CA: tls_failure != 5"
[[ "$(jget wrongca '.failures.tls | length')" -ge 1 ]] || it_fail "wrong CA: no TLS reason in JSON"
[[ "$(jget wrongca .totals.succeeded)" == 0 ]] || it_fail "wrong CA: a call went through"

# --- the wrong name in the certificate
cb wrongname "127.0.0.1:$TLS_PORT" -t tls --ca "$pki/ca.crt" --tls-name other.example.test \
    -r 10 -n 3 -d 5
[[ "$CB_RC" == 1 ]] || it_fail "wrong name: exit $CB_RC, expected 1"
grep -q "hostname mismatch" "$IT_TMP/wrongname.err" ||
    it_fail "wrong name: no hostname mismatch reason: $(cat "$IT_TMP/wrongname.err")"

# --- usage errors
cb usage "127.0.0.1:$SIP_PORT" --rate fast
[[ "$CB_RC" == 2 ]] || it_fail "bad --rate: exit $CB_RC, expected 2"

# --- a SIP domain through SRV and A records (needs dnsmasq)
if command -v dnsmasq >/dev/null 2>&1; then
    it_free_port
    dns_port=$IT_PORT
    dnsmasq --keep-in-foreground --no-daemon --port="$dns_port" --listen-address=127.0.0.1 \
        --bind-interfaces --no-resolv --no-hosts --pid-file= --conf-file=/dev/null \
        --local=/example.test/ \
        --srv-host="_sipfederationtls._tcp.example.test,sip.example.test,$TLS_PORT,1,100" \
        --srv-host="_sip._udp.example.test,sip.example.test,$SIP_PORT,1,100" \
        --host-record=sip.example.test,127.0.0.1 >"$IT_TMP/dnsmasq.log" 2>&1 &
    IT_PIDS+=("$!")
    for ((i = 0; i < 50; i++)); do
        ss -Huln "sport = :$dns_port" | grep -q . && break
        sleep 0.1
    done
    cb srv_tls example.test -t tls --dns "127.0.0.1:$dns_port" --ca "$pki/ca.crt" -r 20 -n 20 -d 10
    expect_all srv_tls 20 3
    [[ "$(jget srv_tls '.config.addresses[0]')" == "127.0.0.1:$TLS_PORT" ]] ||
        it_fail "SRV: resolved to $(jget srv_tls '.config.addresses')"
    cb srv_udp example.test -t udp --dns "127.0.0.1:$dns_port" -r 20 -n 20 -d 10
    expect_all srv_udp 20 3
    cb nosrv nosrv.example.test -t tls --dns "127.0.0.1:$dns_port" --ca "$pki/ca.crt" -n 1
    [[ "$CB_RC" == 2 ]] || it_fail "missing SRV record: exit $CB_RC, expected 2"
    grep -q "_sipfederationtls._tcp.nosrv.example.test" "$IT_TMP/nosrv.err" ||
        it_fail "missing SRV record: the error does not name it: $(cat "$IT_TMP/nosrv.err")"
else
    it_log "dnsmasq is not installed: SRV resolution not tested"
fi

# A sanitizer build of confbench must not have reported anything in any run.
if grep -lE 'Sanitizer|runtime error:' "$IT_TMP"/*.err >&2; then
    it_fail "confbench reported a sanitizer error (files above)"
fi

it_assert_node_alive
it_stop_node 10
