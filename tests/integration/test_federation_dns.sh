#!/usr/bin/env bash
# Outbound federation failures a node must diagnose, against dnsmasq and TLS peers on
# loopback (zones.dns: strict naming, no fall-back hosts, srv_mode "microsoft"):
#   oth.test    SRV target in another domain (sip.other.test)          504 + 1009
#   fb.test     SRV target fails strict naming, sip.fb.test exists      504 + 1009
#               (fall-back off: sip.fb.test is never contacted)
#   port.test   SRV port 5601, nothing listens there                    504 + 1046 naming :5601
#   untr.test   peer certificate from a CA we do not trust              504 + 1010, verify failed
#   exp.test    expired peer certificate                                504 + 1010, expired
#   tcp.test    the peer speaks plain TCP, TLS is required              504 + 1047
#   prio.test   SRV 1/100 -> port without listener, 2/100 -> a peer:    504 + 1046, only the
#               first (Microsoft: lowest priority only)                 first target tried
#   wt.test     SRV 1/10 -> wlow, 1/100 -> whigh, both on port 5601:   504 + 1046 naming
#               whigh only (Microsoft: the highest weight, nothing else)
# Each case asserts the response code, the ms-diagnostics code and the GET /history record.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/fed_lib.sh"

fed_init "$@"

fed_ca otherca
fed_cert good_other sip.other.test DNS:sip.other.test
fed_cert untr sip.untr.test DNS:sip.untr.test otherca
fed_expired_cert exp sip.exp.test DNS:sip.exp.test
fed_cert fb sip.fb.test DNS:wrong.fb.test
fed_cert prio2 sip2.prio.test DNS:wrong.prio.test

fed_addr; OTHER=$FED_ADDR
fed_addr; FB=$FED_ADDR
fed_addr; PORT_PEER=$FED_ADDR
fed_addr; UNTR=$FED_ADDR
fed_addr; EXP=$FED_ADDR
fed_addr; TCP=$FED_ADDR
fed_addr; PRIO1=$FED_ADDR
fed_addr; PRIO2=$FED_ADDR

fed_s_server "$OTHER:5061" good_other
fed_s_server "$FB:5061" fb
fed_s_server "$PORT_PEER:5061" good_other # listens on 5061, not on 5601
fed_s_server "$UNTR:5061" untr
fed_s_server "$EXP:5061" exp
fed_tcp_listener "$TCP:5061"
fed_s_server "$PRIO2:5061" prio2

fed_dns \
    "--srv-host=_sipfederationtls._tcp.oth.test,sip.other.test,5061,1,100" \
    "--host-record=sip.other.test,$OTHER" \
    "--srv-host=_sipfederationtls._tcp.fb.test,sip.other.test,5061,1,100" \
    "--host-record=sip.fb.test,$FB" \
    "--srv-host=_sipfederationtls._tcp.port.test,sip.port.test,5601,1,100" \
    "--host-record=sip.port.test,$PORT_PEER" \
    "--srv-host=_sipfederationtls._tcp.untr.test,sip.untr.test,5061,1,100" \
    "--host-record=sip.untr.test,$UNTR" \
    "--srv-host=_sipfederationtls._tcp.exp.test,sip.exp.test,5061,1,100" \
    "--host-record=sip.exp.test,$EXP" \
    "--srv-host=_sipfederationtls._tcp.tcp.test,sip.tcp.test,5061,1,100" \
    "--host-record=sip.tcp.test,$TCP" \
    "--srv-host=_sipfederationtls._tcp.prio.test,sip1.prio.test,5601,1,100" \
    "--srv-host=_sipfederationtls._tcp.prio.test,sip2.prio.test,5061,2,100" \
    "--host-record=sip1.prio.test,$PRIO1" \
    "--host-record=sip2.prio.test,$PRIO2" \
    "--srv-host=_sipfederationtls._tcp.wt.test,wlow.wt.test,5601,1,10" \
    "--srv-host=_sipfederationtls._tcp.wt.test,whigh.wt.test,5601,1,100" \
    "--host-record=wlow.wt.test,$PRIO1" \
    "--host-record=whigh.wt.test,$PRIO1"

CONF=$IT_TMP/node.conf
it_write_config "$CONF"
cat >>"$CONF" <<EOF
zones: {
    dns: { security = "tls-required"; strict_naming = true; fallback_hosts = false;
           srv_mode = "microsoft"; };
};
search_rules = (
    { name = "federated"; priority = 100; mode = "any-alias"; target = "dns"; }
);
federation: {
    privacy = "allow-list";
    allow = [ "oth.test", "fb.test", "port.test", "untr.test", "exp.test", "tcp.test",
              "prio.test", "wt.test" ];
    dns_server = "127.0.0.1:$DNS_PORT";
};
EOF
it_start_node "$CONF"

# log_quiet ADDR:PORT: no TLS connection reached the s_server there
log_quiet() {
    local log=$IT_TMP/s_server-${1/:/-}.log
    [[ ! -s "$log" ]] || {
        cat "$log" >&2
        it_fail "$1 was contacted"
    }
}

fed_check MESSAGE bob@oth.test 504 1009
fed_diag_has 'sip.other.test'
log_quiet "$OTHER:5061"

fed_check MESSAGE bob@fb.test 504 1009
fed_history_has bob@fb.test 504 1009 '.dns | any(test("^sip.fb.test")) | not'
log_quiet "$FB:5061"

fed_check MESSAGE bob@port.test 504 1046
fed_diag_has 'sip.port.test:5601'

fed_check MESSAGE bob@untr.test 504 1010
fed_diag_has 'certificate verify failed'

fed_check MESSAGE bob@exp.test 504 1010
fed_diag_has 'expired'

fed_check MESSAGE bob@tcp.test 504 1047
fed_diag_has 'sip.tcp.test'
grep -q accepted "$IT_TMP/tcp-$TCP-5061.log" || it_fail "the TCP-only peer was never contacted"

fed_check MESSAGE bob@prio.test 504 1046
fed_diag_has 'sip1.prio.test:5601'
fed_history_has bob@prio.test 504 1046 \
    '(.dns | any(test("^sip1.prio.test A"))) and (.dns | any(test("^sip2.prio.test")) | not)'
log_quiet "$PRIO2:5061"

fed_check MESSAGE bob@wt.test 504 1046
fed_diag_has 'whigh.wt.test:5601'
fed_history_has bob@wt.test 504 1046 \
    '(.dns | any(test("^whigh.wt.test A"))) and (.dns | any(test("^wlow.wt.test A")) | not)'

"$CONFNODE" history --admin "127.0.0.1:$ADMIN_PORT" --json >"$IT_TMP/history.json" 2>&1 ||
    it_fail "confnode history --json failed: $(cat "$IT_TMP/history.json")"
jq -e '[.entries[] | .diagnostics.code] | index(1046) and index(1047)' \
    "$IT_TMP/history.json" >/dev/null || it_fail "confnode history --json lacks 1046/1047"

it_stop_node
it_log "ok"
