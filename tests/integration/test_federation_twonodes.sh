#!/usr/bin/env bash
# Federation between two running nodes found through DNS (dnsmasq on loopback):
# node A (domain a.test, 127.0.0.1) and node B (domain b.test, room meet@b.test, TLS on
# its own loopback address port 5061). A locates b.test by
#   _sipfederationtls._tcp.b.test SRV 1 100 5061 sip.b.test  ->  sip.b.test A -> B
# and connects over mutual TLS, checking that B's certificate names sip.b.test; B checks
# A the same way (_sipfederationtls._tcp.a.test -> sip.a.test, A's client certificate).
#   - a call from a sipp UAC over UDP into A, INVITE sip:meet@b.test -> 200 -> ACK -> BYE,
#     completes; A's search history shows the DNS route to sip.b.test with no diagnostics;
#   - a MESSAGE to meet@b.test: B answers 501 and A passes the 501 back unchanged;
#   - B restarted with a certificate whose only name is its CN (sip.b.test, no SAN):
#     the call still completes;
#   - the other way: a call into B for meet@a.test, located through
#     _sipfederationtls._tcp.a.test, with A checking B's (CN-only) certificate;
#   - A restarted with a static route for b.test (sip.b.test:5061): the call completes
#     and A never asks DNS for b.test's SRV record.
# Both nodes run two workers: a new call is handed to its room's worker, so the
# inbound certificate check runs on a worker other than the one holding the TLS
# connection about half the time (the certificate travels with the request).
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/fed_lib.sh"

fed_init "$@"
it_require sipp
A_SIP=$SIP_PORT A_ADMIN=$ADMIN_PORT
it_alloc_node_ports
B_SIP=$SIP_PORT B_ADMIN=$ADMIN_PORT B_MEDIA_MIN=$MEDIA_MIN B_MEDIA_MAX=$MEDIA_MAX
SIP_PORT=$A_SIP ADMIN_PORT=$A_ADMIN
TLS_PORT=$((SIP_PORT + 1))
fed_addr; B=$FED_ADDR

fed_cert a sip.a.test DNS:sip.a.test,DNS:localhost,IP:127.0.0.1
fed_cert b sip.b.test DNS:sip.b.test
fed_cert bcn sip.b.test ""

fed_dns \
    "--srv-host=_sipfederationtls._tcp.b.test,sip.b.test,5061,1,100" \
    "--host-record=sip.b.test,$B" \
    "--srv-host=_sipfederationtls._tcp.a.test,sip.a.test,$TLS_PORT,1,100" \
    "--host-record=sip.a.test,127.0.0.1"

B_PID=
# start_b CERT: node B with $PKI/CERT.{crt,key}
start_b() {
    local i
    cat >"$IT_TMP/b.conf" <<EOF
node: { name = "node-b"; workers = 2; log_level = "info"; };
sip: { listen = "$B"; udp_port = $B_SIP; tcp_port = $B_SIP; tls_port = 5061;
       domain = "b.test"; };
tls: { certificate = "$PKI/$1.crt"; key = "$PKI/$1.key"; ca = "$PKI/ca.crt";
       verify_client = "request"; };
media: { address = "127.0.0.1"; port_min = $B_MEDIA_MIN; port_max = $B_MEDIA_MAX; };
admin: { listen = "127.0.0.1"; port = $B_ADMIN; };
vmrs = ( { alias = "meet@b.test"; name = "B"; } );
cluster: { sip_fqdn = "sip.b.test"; };
search_rules = (
    { name = "rooms"; priority = 10; mode = "any-alias"; on_match = "continue";
      target = "local"; },
    { name = "federated"; priority = 100; mode = "any-alias"; target = "dns"; }
);
federation: { privacy = "allow-list"; allow = [ "a.test" ]; dns_server = "127.0.0.1:$DNS_PORT"; };
EOF
    "$CONFNODE" run -c "$IT_TMP/b.conf" >>"$IT_TMP/b.log" 2>&1 &
    B_PID=$!
    IT_PIDS+=("$B_PID")
    for ((i = 0; i < 300; i++)); do
        it_pid_alive "$B_PID" || it_fail "node B exited during start-up: $(tail -5 "$IT_TMP/b.log")"
        if curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$B_ADMIN/status" 2>/dev/null &&
            ss -Htln "src = $B:5061" | grep -q .; then
            it_log "node B up (pid $B_PID) on $B:5061"
            return 0
        fi
        sleep 0.1
    done
    it_fail "node B did not become ready within 30 s"
}

stop_b() {
    kill -TERM "$B_PID"
    it_wait_exit "$B_PID" 10 || it_fail "node B did not stop"
    [[ "$IT_WAIT_RC" == 0 ]] || it_fail "node B exited with status $IT_WAIT_RC"
    ! grep -qE 'Sanitizer|runtime error:' "$IT_TMP/b.log" ||
        it_fail "node B's log shows a sanitizer report"
}

start_b b

# start_a [ZONES]: node A (two workers, room meet@a.test) with that zones group body
start_a() {
    CONF=$IT_TMP/a.conf
    IT_WORKERS=2 IT_VMRS_EXTRA=', { alias = "meet@a.test"; name = "A"; }' it_write_config "$CONF"
    sed -i -e 's/domain = "example.test";/domain = "a.test";/' \
        -e "s#$IT_TMP/pki/node.crt#$PKI/a.crt#" -e "s#$IT_TMP/pki/node.key#$PKI/a.key#" "$CONF"
    cat >>"$CONF" <<EOF
cluster: { sip_fqdn = "sip.a.test"; };
zones: { ${1:-} };
search_rules = (
    { name = "rooms"; priority = 10; mode = "any-alias"; on_match = "continue";
      target = "local"; },
    { name = "federated"; priority = 100; mode = "any-alias"; target = "dns"; }
);
federation: {
    privacy = "allow-list";
    allow = [ "b.test" ];
    dns_server = "127.0.0.1:$DNS_PORT";
};
EOF
    it_start_node "$CONF"
}
start_a

cat >"$IT_TMP/call.tmpl" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="federated call">
  <send retrans="500">
    <![CDATA[
      INVITE sip:meet@@TO@ SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:alice@@FROM@>;tag=[pid]-[call_number]
      To: <sip:meet@@TO@>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:alice@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=alice 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:alice@@FROM@>;tag=[pid]-[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="2000"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:alice@@FROM@>;tag=[pid]-[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
EOF

sed -e 's/@FROM@/a.test/g' -e 's/@TO@/b.test/g' "$IT_TMP/call.tmpl" >"$IT_TMP/call_ab.xml"
sed -e 's/@FROM@/b.test/g' -e 's/@TO@/a.test/g' "$IT_TMP/call.tmpl" >"$IT_TMP/call_ba.xml"

# call NAME [JQ]: one call through A to meet@b.test must complete, and A's history
# shows how it was routed (default: the DNS SRV record of b.test)
call() {
    local filter=${2:-'.zone == "dns" and (.dns | any(test("SRV 1 100 5061 sip.b.test")))'}
    it_sipp_start "$1" "127.0.0.1:$A_SIP" u1 1 1 -sf "$IT_TMP/call_ab.xml" -s meet
    it_sipp_wait "$1"
    it_sipp_expect_all "$1" 1
    fed_history_has meet@b.test 200 null "$filter"
}

call call1
# B checked A as a federated peer: it looked up a.test's SRV record
grep -q 'query\[SRV\] _sipfederationtls._tcp.a.test' "$IT_TMP/dnsmasq.log" ||
    it_fail "node B never checked a.test (no SRV query for _sipfederationtls._tcp.a.test)"

# MESSAGE: B answers 501 (no IM in rooms); A relays it unchanged
got=$(FED_FROM=alice@a.test fed_send MESSAGE meet@b.test)
it_log "MESSAGE meet@b.test -> $got"
[[ "$got" == "501 -" ]] || it_fail "MESSAGE through A: expected '501 -', got '$got'"
fed_history_has meet@b.test 501 null '.method == "MESSAGE" and .zone == "dns"'

# B with a certificate carrying its name only in the CN
stop_b
start_b bcn
call call2

# the other way: a call into B for meet@a.test, B locates a.test and A checks B
it_sipp_start call3 "$B:$B_SIP" u1 1 1 -sf "$IT_TMP/call_ba.xml" -s meet
it_sipp_wait call3
it_sipp_expect_all call3 1
ADMIN_PORT=$B_ADMIN fed_history_has meet@a.test 200 null \
    '.zone == "dns" and (.dns | any(test("sip.a.test")))'
grep -q 'query\[SRV\] _sipfederationtls._tcp.b.test' "$IT_TMP/dnsmasq.log" ||
    it_fail "node A never checked b.test"

# a static route to B: A reaches it without asking DNS for b.test's SRV record
it_stop_node
srv_queries=$(grep -c 'query\[SRV\] _sipfederationtls._tcp.b.test' "$IT_TMP/dnsmasq.log" || true)
start_a 'static_routes = ( { domain = "b.test"; addresses = [ "sip.b.test:5061" ]; } );'
call call4 ".zone == \"dns\" and .dns == [\"sip.b.test A -> $B:5061 tls\"]"
[[ $(grep -c 'query\[SRV\] _sipfederationtls._tcp.b.test' "$IT_TMP/dnsmasq.log") == "$srv_queries" ]] ||
    it_fail "static route: node A looked up b.test's SRV record"

stop_b
it_stop_node
it_log "ok"
