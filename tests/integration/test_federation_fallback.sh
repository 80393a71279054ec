#!/usr/bin/env bash
# Outbound federation with zones.dns fallback_hosts = true and srv_mode = "rfc2782",
# against dnsmasq and TLS peers on loopback:
#   fb.test     SRV target sip.other.test fails strict naming; the node falls back to
#               sip.fb.test:5061, whose certificate lacks the name    504 + 1010 naming
#               sip.fb.test (the fall-back host was contacted)
#   prio.test   SRV 1/100 -> sip1 port 5601 (nothing listens), 2/100 -> sip2 (certificate
#               without its name): RFC 2782 fails over to sip2        504 + 1010 naming sip2
# (test_federation_dns.sh covers fall-back off and the Microsoft selection.)
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/fed_lib.sh"

fed_init "$@"

fed_cert fb sip.fb.test DNS:wrong.fb.test
fed_cert prio2 sip2.prio.test DNS:wrong.prio.test
fed_cert other sip.other.test DNS:sip.other.test

fed_addr; OTHER=$FED_ADDR
fed_addr; FB=$FED_ADDR
fed_addr; PRIO1=$FED_ADDR
fed_addr; PRIO2=$FED_ADDR
fed_s_server "$OTHER:5061" other
fed_s_server "$FB:5061" fb
fed_s_server "$PRIO2:5061" prio2

fed_dns \
    "--srv-host=_sipfederationtls._tcp.fb.test,sip.other.test,5061,1,100" \
    "--host-record=sip.other.test,$OTHER" \
    "--host-record=sip.fb.test,$FB" \
    "--srv-host=_sipfederationtls._tcp.prio.test,sip1.prio.test,5601,1,100" \
    "--srv-host=_sipfederationtls._tcp.prio.test,sip2.prio.test,5061,2,100" \
    "--host-record=sip1.prio.test,$PRIO1" \
    "--host-record=sip2.prio.test,$PRIO2"

CONF=$IT_TMP/node.conf
it_write_config "$CONF"
cat >>"$CONF" <<EOF
zones: {
    dns: { security = "tls-required"; strict_naming = true; fallback_hosts = true;
           srv_mode = "rfc2782"; };
};
search_rules = (
    { name = "federated"; priority = 100; mode = "any-alias"; target = "dns"; }
);
federation: {
    privacy = "allow-list";
    allow = [ "fb.test", "prio.test" ];
    dns_server = "127.0.0.1:$DNS_PORT";
};
EOF
it_start_node "$CONF"

contacted() { # ADDR:PORT: the s_server there saw a TLS connection
    [[ -s "$IT_TMP/s_server-${1/:/-}.log" ]] || it_fail "$1 was never contacted"
}

fed_check MESSAGE bob@fb.test 504 1010
fed_diag_has 'tls-target="sip.fb.test"'
contacted "$FB:5061"
[[ ! -s "$IT_TMP/s_server-$OTHER-5061.log" ]] || it_fail "the refused SRV target was contacted"
fed_history_has bob@fb.test 504 1010 '.dns | any(test("^sip.fb.test"))'

fed_check MESSAGE bob@prio.test 504 1010
fed_diag_has 'tls-target="sip2.prio.test"'
contacted "$PRIO2:5061"
fed_history_has bob@prio.test 504 1010 \
    '(.certificates | any(test("^sip1.prio.test: connect"))) and (.certificates | any(test("^sip2.prio.test")))'

it_stop_node
it_log "ok"
