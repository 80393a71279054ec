#!/usr/bin/env bash
# Privacy modes and static routes of a running node, against dnsmasq and TLS peers on
# loopback. Every reachable domain's peer presents a certificate without its name, so
# "the node routed the request" shows as 504 + 1010 and "refused" as 403 + 1027:
#   allow-list [ok.test]    ok.test -> 504 1010     den.test -> 403 1027
#   deny-list  [den.test]   ok.test -> 504 1010     den.test -> 403 1027
#   off                     ok.test -> 504 1010     den.test -> 504 1010
#   static route for st.test to an address where nothing listens (allowed implicitly):
#               504 + 1046 naming that address; the DNS-served target of st.test is
#               never contacted and st.test is never looked up (no fall-back to DNS)
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/fed_lib.sh"

fed_init "$@"

fed_cert nosan sip.x.test DNS:wrong.x.test
fed_addr; OK=$FED_ADDR
fed_addr; DEN=$FED_ADDR
fed_addr; STDNS=$FED_ADDR
fed_addr; STATIC=$FED_ADDR # nothing listens here
fed_s_server "$OK:5061" nosan
fed_s_server "$DEN:5061" nosan
fed_s_server "$STDNS:5061" nosan

fed_dns \
    "--srv-host=_sipfederationtls._tcp.ok.test,sip.ok.test,5061,1,100" \
    "--host-record=sip.ok.test,$OK" \
    "--srv-host=_sipfederationtls._tcp.den.test,sip.den.test,5061,1,100" \
    "--host-record=sip.den.test,$DEN" \
    "--srv-host=_sipfederationtls._tcp.st.test,sip.st.test,5061,1,100" \
    "--host-record=sip.st.test,$STDNS"

CONF=$IT_TMP/node.conf
# node_with PRIVACY-LINES: (re)starts the node with that federation group body
node_with() {
    it_write_config "$CONF"
    cat >>"$CONF" <<EOF
zones: {
    static_routes = ( { domain = "st.test"; addresses = [ "$STATIC:5061" ]; } );
};
search_rules = (
    { name = "federated"; priority = 100; mode = "any-alias"; target = "dns"; }
);
federation: {
    $1
    dns_server = "127.0.0.1:$DNS_PORT";
};
EOF
    it_start_node "$CONF"
}

node_with 'privacy = "allow-list"; allow = [ "ok.test" ];'
fed_check MESSAGE bob@ok.test 504 1010
fed_check MESSAGE bob@den.test 403 1027
fed_diag_has 'domain="den.test"'
[[ ! -s "$IT_TMP/s_server-$DEN-5061.log" ]] || it_fail "a refused domain's peer was contacted"

fed_check MESSAGE bob@st.test 504 1046
fed_diag_has "$STATIC:5061"
fed_history_has bob@st.test 504 1046 '.dns | any(test("_sipfederationtls")) | not'
[[ ! -s "$IT_TMP/s_server-$STDNS-5061.log" ]] ||
    it_fail "static route unreachable: the node fell back to the DNS-served target"
! grep -q 'st\.test' "$IT_TMP/dnsmasq.log" || it_fail "static route: st.test was looked up in DNS"
it_stop_node

node_with 'privacy = "deny-list"; deny = [ "den.test" ];'
fed_check MESSAGE bob@ok.test 504 1010
fed_check MESSAGE bob@den.test 403 1027
fed_history_has bob@den.test 403 1027 '.decision != "ok" and (.certificates | length == 0)'
[[ ! -s "$IT_TMP/s_server-$DEN-5061.log" ]] || it_fail "a denied domain's peer was contacted"
it_stop_node

node_with 'privacy = "off";'
fed_check MESSAGE bob@ok.test 504 1010
fed_check MESSAGE bob@den.test 504 1010
[[ -s "$IT_TMP/s_server-$DEN-5061.log" ]] || it_fail "privacy off: den.test's peer was not contacted"
it_stop_node
it_log "ok"
