#!/usr/bin/env bash
# Federation between peers that each have their own address in their own network
# namespace, on a 10.232.X.0/24 behind a bridge (a blackhole route keeps the subnet
# off the root namespace):
#   dns  .2        dnsmasq, authoritative for a.test, b.test and c.test:
#                  _sipfederationtls._tcp.D SRV 1 100 5061 sip.D, sip.D A -> the D peer
#   a    .11 .21   node A (a.test, sip.a.test, room@a.test) on .11; on .21 a sipp user
#                  agent that answers MESSAGE with 200, reached through A's neighbour
#                  zone "users" (search rule .*@a\.test)
#   b    .12 .22   node B, the same shape for b.test
#   c    .13       a peer holding a valid certificate for sip.b.test (signed by the
#                  CA both nodes trust), and an openssl s_server with it as sip.c.test
# Cases, each with the response code, the ms-diagnostics code and the search history:
#   1. a call from a user of a.test to room@b.test completes (A: DNS route to
#      sip.b.test), and one from b.test to room@a.test; a MESSAGE from alice@a.test to
#      bob@b.test crosses A and B and is answered 200 by B's user agent, and the same
#      from b.test to a.test;
#   2. the c peer, over mutual TLS to A with the sip.b.test certificate, sends a
#      MESSAGE From someone@c.test: c.test's SRV target sip.c.test is not in that
#      certificate -> 504 with ms-diagnostics 1010, recorded as such; the same peer
#      with From x@b.test passes the check and reaches A's user agent (200);
#   3. confnode doctor from inside the a namespace: b.test passes every check (exit 0);
#      c.test (its server's certificate lacks sip.c.test) exits 1 naming the san check.
# Needs root (ip netns), dnsmasq (Debian: dnsmasq-base), sipp, openssl, python3.
#   tests/integration/test_federation_netns.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/fed_lib.sh"

it_init "$@"
it_require sipp python3
DNSMASQ=${DNSMASQ:-$(command -v dnsmasq || echo /usr/sbin/dnsmasq)}
[[ -x "$DNSMASQ" ]] || it_fail "dnsmasq is not installed (Debian package dnsmasq-base)"

fed_ns_net
N=$FED_NET
DNS=$N.2 A=$N.11 B=$N.12 C=$N.13 UA_A=$N.21 UA_B=$N.22
fed_ns_add dns 2
fed_ns_add a 11 21
fed_ns_add b 12 22
fed_ns_add c 13
# every namespace has its own stack: the same ports everywhere
ADMIN_PORT=8088

# ---------------------------------------------------------------------------- PKI
PKI=$IT_TMP/pki
mkdir -p "$PKI"
fed_ca ca
fed_cert_days 365 a sip.a.test DNS:sip.a.test
fed_cert_days 365 b sip.b.test DNS:sip.b.test
fed_cert_days 365 impostor sip.b.test DNS:sip.b.test

# ---------------------------------------------------------------------------- DNS
fed_ns_dns dns "$DNS" \
    "--srv-host=_sipfederationtls._tcp.a.test,sip.a.test,5061,1,100" \
    "--host-record=sip.a.test,$A" \
    "--srv-host=_sipfederationtls._tcp.b.test,sip.b.test,5061,1,100" \
    "--host-record=sip.b.test,$B" \
    "--srv-host=_sipfederationtls._tcp.c.test,sip.c.test,5061,1,100" \
    "--host-record=sip.c.test,$C"

# ---------------------------------------------------------------------------- user agents
cat >"$IT_TMP/ua.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="user agent answering MESSAGE">
  <recv request="MESSAGE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]ua[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
</scenario>
EOF

# ua NAME ADDR: a sipp user agent on ADDR:5060 (UDP) in namespace NAME; every message
# it receives lands in $IT_TMP/ua-NAME.msg
ua() {
    fed_ns_spawn "$1" "$IT_TMP/ua-$1.out" sipp -sf "$IT_TMP/ua.xml" -i "$2" -p 5060 -t u1 \
        -mi "$2" -mp 6100 -nostdin -trace_msg -message_file "$IT_TMP/ua-$1.msg"
    fed_ns_wait_listen "$1" "$2:5060" udp
}
ua a "$UA_A"
ua b "$UA_B"

# ---------------------------------------------------------------------------- nodes
# node NAME DOMAIN ADDR UA_ADDR ALLOW: node NAME's config and start; it is ready when the
# admin API answers and TLS listens
node() {
    local name=$1 dom=$2 addr=$3 ua_addr=$4 allow=$5 conf=$IT_TMP/$1.conf i re
    re=${dom//./\\\\.} # a\\.test: a regex's \. as a libconfig string
    cat >"$conf" <<EOF
node: { name = "node-$name"; workers = 2; log_level = "info"; };
sip: { listen = "$addr"; udp_port = 5060; tcp_port = 5060; tls_port = 5061;
       domain = "$dom"; };
tls: { certificate = "$PKI/$name.crt"; key = "$PKI/$name.key"; ca = "$PKI/ca.crt";
       verify_client = "request"; };
media: { address = "$addr"; port_min = 40000; port_max = 40999; };
admin: { listen = "127.0.0.1"; port = $ADMIN_PORT; };
vmrs = ( { alias = "room@$dom"; name = "Room $name"; } );
cluster: { sip_fqdn = "sip.$dom"; };
zones: {
    neighbours = ( { name = "users"; peers = [ "$ua_addr:5060" ]; security = "no-tls";
                     transport = "udp"; } );
};
search_rules = (
    { name = "rooms"; priority = 10; mode = "any-alias"; on_match = "continue";
      target = "local"; },
    { name = "users"; priority = 20; pattern_type = "regex"; pattern = ".*@$re";
      target = "users"; },
    { name = "federated"; priority = 100; mode = "any-alias"; target = "dns"; }
);
federation: { privacy = "allow-list"; allow = [ $allow ]; dns_server = "$DNS:53"; };
EOF
    fed_ns_spawn "$name" "$IT_TMP/$name.log" "$CONFNODE" run -c "$conf"
    printf '%s\n' "$FED_PID" >"$IT_TMP/$name.pid"
    for ((i = 0; i < 300; i++)); do
        it_pid_alive "$FED_PID" || it_fail "node $name exited during start-up: $(tail -5 "$IT_TMP/$name.log")"
        if fed_in "$name" curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$ADMIN_PORT/status" \
            2>/dev/null && fed_in "$name" ss -Htln "src = $addr:5061" | grep -q .; then
            it_log "node $name up (pid $FED_PID) on $addr"
            return 0
        fi
        sleep 0.1
    done
    it_fail "node $name did not become ready within 30 s"
}

stop_node() {
    local pid
    pid=$(cat "$IT_TMP/$1.pid")
    kill -TERM "$pid"
    it_wait_exit "$pid" 10 || it_fail "node $1 did not stop within 10 s"
    [[ "$IT_WAIT_RC" == 0 ]] || it_fail "node $1 exited with status $IT_WAIT_RC"
    ! grep -qE 'Sanitizer|runtime error:' "$IT_TMP/$1.log" ||
        it_fail "node $1's log shows a sanitizer report"
}

node a a.test "$A" "$UA_A" '"b.test", "c.test"'
node b b.test "$B" "$UA_B" '"a.test"'

# ---------------------------------------------------------------------------- 1. both ways
cat >"$IT_TMP/call.tmpl" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="federated call">
  <send retrans="500">
    <![CDATA[
      INVITE sip:room@@TO@ SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:alice@@FROM@>;tag=[pid]-[call_number]
      To: <sip:room@@TO@>
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
  <pause milliseconds="500"/>
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

# call NAME NS FROM_DOMAIN TO_DOMAIN SRC NODE_ADDR: one call from a user agent address
# of NS through its node to room@TO_DOMAIN must complete
call() {
    local name=$1 pid
    sed -e "s/@FROM@/$3/g" -e "s/@TO@/$4/g" "$IT_TMP/call.tmpl" >"$IT_TMP/$name.xml"
    (
        cd "$IT_TMP"
        exec ip netns exec "$FED_NS-$2" timeout -k 5 60 sipp -sf "$IT_TMP/$name.xml" -s room \
            "$6:5060" -t u1 -i "$5" -p 5062 -mi "$5" -mp 6200 -m 1 -r 1 -l 1 -nostdin \
            -timeout 30s -timeout_error -trace_stat -stf "$IT_TMP/$name.csv" -fd 1 \
            -trace_err -error_file "$IT_TMP/$name.errors" \
            -trace_logs -log_file "$IT_TMP/$name.log" >"$IT_TMP/$name.out" 2>&1
    ) &
    pid=$!
    IT_PIDS+=("$pid")
    printf '%s\n' "$pid" >"$IT_TMP/$name.pid"
    it_sipp_wait "$name"
    it_sipp_expect_all "$name" 1
}

call call_ab a a.test b.test "$UA_A" "$A"
fed_ns_history_has a room@b.test 200 null \
    '.zone == "dns" and (.dns | any(test("SRV 1 100 5061 sip.b.test")))'
# nothing routes to a.test yet: only B's inbound check of A looks a.test up
grep -q 'query\[SRV\] _sipfederationtls._tcp.a.test' "$IT_TMP/dnsmasq.log" ||
    it_fail "node B never checked A (no SRV query for _sipfederationtls._tcp.a.test)"
it_log "call a.test -> room@b.test: 200, A's history shows the DNS route to sip.b.test"
call call_ba b b.test a.test "$UA_B" "$B"
fed_ns_history_has b room@a.test 200 null \
    '.zone == "dns" and (.dns | any(test("SRV 1 100 5061 sip.a.test")))'
it_log "call b.test -> room@a.test: 200, B's history shows the DNS route to sip.a.test"

# expect NS SRC DST METHOD USER@DOMAIN FROM STATUS CODE [CERT SNI]: fed_ns_send's answer
expect() {
    local got want="$7 $8"
    got=$(fed_ns_send "$1" "$2" "$3" "$4" "$5" "$6" "${9:-}" "${10:-}")
    it_log "$4 $6 -> $5 from $1: $got"
    [[ "$want" == "$7 null" ]] && want="$7 -"
    [[ "$got" == "$want" ]] || {
        cat "$IT_TMP/last_response.txt" >&2
        it_fail "$4 $6 -> $5: expected '$want', got '$got'"
    }
}

# ua_got NAME FROM ADDR1 ADDR2: the user agent NAME received a MESSAGE From FROM with
# a Via naming ADDR1 and one naming ADDR2 (the hops it crossed)
ua_got() {
    local name=$1 from=$2 v1=$3 v2=$4
    python3 - "$IT_TMP/ua-$name.msg" "$from" "$v1" "$v2" <<'PY' || {
import re, sys
path, frm, v1, v2 = sys.argv[1:5]
text = open(path, errors="replace").read()
for msg in re.split(r"\n-{5,}[^\n]*\n", text):
    start = msg.find("MESSAGE sip:")
    if start < 0:
        continue
    msg = msg[start:]
    vias = re.findall(r"^Via:.*$", msg, re.M | re.I)
    if re.search(r"^From:.*<sip:" + re.escape(frm) + ">", msg, re.M | re.I) and \
            any(f" {v1}:" in v for v in vias) and any(f" {v2}:" in v for v in vias):
        sys.exit(0)
sys.exit(1)
PY
        tail -n 60 "$IT_TMP/ua-$name.msg" >&2
        it_fail "user agent $name got no MESSAGE from $from through $v1 and $v2"
    }
}

expect a "$UA_A" "$A:5060" MESSAGE bob@b.test alice@a.test 200 null
ua_got b alice@a.test "$A" "$B"
fed_ns_history_has a bob@b.test 200 null '.method == "MESSAGE" and .zone == "dns"'
fed_ns_history_has b bob@b.test 200 null \
    '.method == "MESSAGE" and .zone == "users" and .source.zone == "dns"'
it_log "MESSAGE alice@a.test -> bob@b.test: 200 from B's user agent, through A and B"

expect b "$UA_B" "$B:5060" MESSAGE bob@a.test alice@b.test 200 null
ua_got a alice@b.test "$B" "$A"
fed_ns_history_has b bob@a.test 200 null '.method == "MESSAGE" and .zone == "dns"'
fed_ns_history_has a bob@a.test 200 null \
    '.method == "MESSAGE" and .zone == "users" and .source.zone == "dns"'
it_log "MESSAGE alice@b.test -> bob@a.test: 200 from A's user agent, through B and A"

# ---------------------------------------------------------------------------- 2. inbound check
expect c "$C" "$A:5061" MESSAGE carol@a.test someone@c.test 504 1010 impostor sip.a.test
grep -qi '^ms-diagnostics: 1010;.*tls-target="sip.c.test"' "$IT_TMP/last_response.txt" || {
    cat "$IT_TMP/last_response.txt" >&2
    it_fail "the refusal's ms-diagnostics does not name the tls-target sip.c.test"
}
fed_ns_history_has a carol@a.test 504 1010 \
    ".source.zone == \"dns\" and (.source.address | startswith(\"$C:\"))
     and (.certificates | any(test(\"sip.c.test: not in the peer certificate\")))"
grep -q 'query\[SRV\] _sipfederationtls._tcp.c.test' "$IT_TMP/dnsmasq.log" ||
    it_fail "node A refused someone@c.test without looking up c.test's SRV record"
it_log "From someone@c.test with a sip.b.test certificate: 504 + 1010, recorded"

expect c "$C" "$A:5061" MESSAGE dave@a.test x@b.test 200 null impostor sip.a.test
ua_got a x@b.test "$C" "$A"
fed_ns_history_has a dave@a.test 200 null '.source.zone == "dns" and .zone == "users"'
it_log "From x@b.test with the same certificate: passes the check, 200 from A's user agent"

# ---------------------------------------------------------------------------- 3. doctor
fed_ns_spawn c "$IT_TMP/s_server.log" openssl s_server -accept "$C:5061" \
    -cert "$PKI/impostor.crt" -key "$PKI/impostor.key" -www -quiet
fed_ns_wait_listen c "$C:5061"

# doctor DOMAIN [ARGS...]: from inside the a namespace; sets DOC_RC and DOC_OUT
doctor() {
    DOC_RC=0
    DOC_OUT=$(fed_in a timeout -k 2 60 "$CONFNODE" doctor "$@" --dns "$DNS:53" \
        --ca "$PKI/ca.crt" --timeout 3 2>&1) || DOC_RC=$?
    ((DOC_RC < 124)) || it_fail "doctor $1: timed out or killed ($DOC_RC): $DOC_OUT"
    ! grep -qE 'Sanitizer|runtime error:' <<<"$DOC_OUT" || it_fail "doctor $1: $DOC_OUT"
}

doctor b.test
[[ "$DOC_RC" == 0 ]] || it_fail "doctor b.test: exit $DOC_RC: $DOC_OUT"
! grep -qE '^(FAIL|WARN)  ' <<<"$DOC_OUT" || it_fail "doctor b.test: $DOC_OUT"
for check in srv srv_port strict_naming address tcp tls chain san expiry eku; do
    grep -qE "^PASS  $check " <<<"$DOC_OUT" || it_fail "doctor b.test: $check did not pass: $DOC_OUT"
done
grep -q "tcp .*connected to $B:5061" <<<"$DOC_OUT" || it_fail "doctor b.test: $DOC_OUT"
grep -qE '^[0-9]+ passed, 0 warnings, 0 failed: b.test is ready for federation' <<<"$DOC_OUT" ||
    it_fail "doctor b.test: no summary: $DOC_OUT"
it_log "doctor b.test: exit 0, every check passed"

doctor c.test
[[ "$DOC_RC" == 1 ]] || it_fail "doctor c.test: exit $DOC_RC, expected 1: $DOC_OUT"
grep -qE "^FAIL  san +sip.c.test is not in the certificate's SAN \(sip.b.test\)" <<<"$DOC_OUT" ||
    it_fail "doctor c.test: the san check does not fail: $DOC_OUT"
[[ $(grep -cE '^FAIL  ' <<<"$DOC_OUT") == 1 ]] || it_fail "doctor c.test: $DOC_OUT"
grep -q "c.test is not ready for federation" <<<"$DOC_OUT" || it_fail "doctor c.test: $DOC_OUT"
it_log "doctor c.test: exit 1, the san check fails"

stop_node a
stop_node b
it_log "ok"
