#!/bin/bash
# confbench --conference against a real node: three SRTP participants in one room
# (two on PCMU, one on Opus), each sending its own tone (400, 700, 1100 Hz), must
# each hear the other two tones and not its own (Goertzel ratios in the JSON), and
# the SRTP packet confbench tampers with must show up in /metrics as an SRTP
# authentication failure, as many as confbench reports it sent. Plain RTP (PCMA) in
# the default room passes the same check; a plain offer to the SRTP-only room is
# refused (488 in the JSON, exit 1); bad options are exit 2.
#
#   tests/integration/test_confbench_conference.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
CONFBENCH=$IT_BUILD/bin/confbench
[[ -x "$CONFBENCH" ]] || it_fail "$CONFBENCH is not built"
it_require jq curl

# the room requires SRTP and mixes all three speakers
IT_VMRS_EXTRA=',
    { alias = "secure@example.test"; srtp = "required"; mix_speakers = 3; }'
it_alloc_node_ports
it_write_config "$IT_TMP/node.conf"
it_start_node "$IT_TMP/node.conf"

# metric NAME: NAME summed over its labelled series in /metrics
metric() {
    curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" |
        awk -v n="$1" '$1 ~ "^" n "({|$)" { s += $2 } END { print s + 0 }'
}

before=$(metric confnode_media_srtp_auth_failures_total)
json=$IT_TMP/conference.json
rc=0
timeout -k 5 60 "$CONFBENCH" "127.0.0.1:$SIP_PORT" -u secure --timeout 5s --conference 3 \
    --tones 400,700,1100 --codecs pcmu,pcmu,opus --srtp --tamper --hold 3s --json "$json" \
    >"$IT_TMP/conference.out" 2>"$IT_TMP/conference.err" || rc=$?
cat "$IT_TMP/conference.out" >&2
if [[ "$rc" != 0 ]]; then
    tail -n 20 "$IT_TMP/conference.err" >&2
    it_fail "confbench --conference: exit $rc, expected 0"
fi

jget() { jq -er "$1" "$json" 2>/dev/null || it_fail "conference.json lacks $1"; }
[[ "$(jget '.participants | length')" == 3 ]] || it_fail "expected 3 participants in the JSON"
[[ "$(jget .srtp)" == true ]] || it_fail "the JSON does not say SRTP"
[[ "$(jget '[.participants[].codec] | join(",")')" == pcmu,pcmu,opus ]] ||
    it_fail "codecs: $(jget '[.participants[].codec] | join(",")')"
for i in 0 1 2; do
    [[ "$(jget ".participants[$i].sip_status")" == 200 ]] ||
        it_fail "participant $i not answered 200"
    for j in 0 1 2; do
        r=$(jget ".participants[$i].ratios[$j]")
        if ((i == j)); then
            jq -e --argjson r "$r" -n '$r <= 0.01' >/dev/null ||
                it_fail "participant $i hears its own tone: ratio $r"
        else
            jq -e --argjson r "$r" -n '$r >= 0.05' >/dev/null ||
                it_fail "participant $i does not hear participant $j's tone: ratio $r"
        fi
    done
    (($(jget ".participants[$i].rtp_received") > 100)) || it_fail "participant $i: too little audio"
    [[ "$(jget ".participants[$i].rtp_rejected")" == 0 ]] ||
        it_fail "participant $i rejected packets from the node"
done

tampered=$(jget .tampered_sent)
((tampered >= 1)) || it_fail "confbench reports no tampered packet sent"
after=$before
for ((i = 0; i < 50; i++)); do
    after=$(metric confnode_media_srtp_auth_failures_total)
    ((after - before >= tampered)) && break
    sleep 0.1
done
((after - before == tampered)) ||
    it_fail "/metrics counted $((after - before)) SRTP authentication failures, confbench sent" \
        "$tampered tampered packet(s)"

# plain RTP in the default (optional) room, PCMA for everyone: the same verdict
rc=0
timeout -k 5 60 "$CONFBENCH" "127.0.0.1:$SIP_PORT" --timeout 5s --conference 3 --codec pcma \
    --hold 2s --json "$IT_TMP/plain.json" >"$IT_TMP/plain.out" 2>"$IT_TMP/plain.err" || rc=$?
[[ "$rc" == 0 ]] || it_fail "plain conference: exit $rc, expected 0: $(cat "$IT_TMP/plain.out")"
[[ "$(jq -r .srtp "$IT_TMP/plain.json")" == false ]] || it_fail "plain conference: srtp not false"

# a plain offer to the room that requires SRTP: every call refused, exit 1, the code
# in the JSON
rc=0
timeout -k 5 60 "$CONFBENCH" "127.0.0.1:$SIP_PORT" -u secure --timeout 5s --conference 2 \
    --hold 1s --json "$IT_TMP/refused.json" >"$IT_TMP/refused.out" 2>"$IT_TMP/refused.err" ||
    rc=$?
[[ "$rc" == 1 ]] || it_fail "plain offer to the SRTP-only room: exit $rc, expected 1"
[[ "$(jq -r '[.participants[].sip_status] | join(",")' "$IT_TMP/refused.json")" == 488,488 ]] ||
    it_fail "plain offer to the SRTP-only room: $(jq -c '[.participants[].sip_status]' \
        "$IT_TMP/refused.json")"
grep -q "INVITE answered 488" "$IT_TMP/refused.err" ||
    it_fail "no message about the 488: $(cat "$IT_TMP/refused.err")"

# usage errors are exit 2
rc=0
"$CONFBENCH" "127.0.0.1:$SIP_PORT" --conference 3 --tamper >/dev/null 2>&1 || rc=$?
[[ "$rc" == 2 ]] || it_fail "--tamper without --srtp: exit $rc, expected 2"
rc=0
"$CONFBENCH" "127.0.0.1:$SIP_PORT" --conference 3 --codecs pcmu,g729 >/dev/null 2>&1 || rc=$?
[[ "$rc" == 2 ]] || it_fail "--codecs with an unknown codec: exit $rc, expected 2"

if grep -lE 'Sanitizer|runtime error:' "$IT_TMP"/*.err >&2; then
    it_fail "confbench reported a sanitizer error (files above)"
fi
it_assert_node_alive
it_stop_node 10
