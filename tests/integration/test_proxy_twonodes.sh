#!/bin/bash
# The stateful proxy between two real nodes on loopback.
#
# sipp calls node A with a preloaded route set (RFC 3261 §8.1.2):
#   Route: <sip:127.0.0.1:A;lr>, <sip:127.0.0.1:B-TLS;transport=tls;lr>
# so A removes its own Route and forwards the INVITE to node B over mutual TLS
# (both nodes use the certificates of deploy/mkcerts.sh; B requires a client
# certificate). B's room answers; A relays 100/180/200 and Record-Routes, so the ACK
# and the BYE come through A again. Checked, over TCP and UDP into A:
#   - the call completes end to end (sipp: 1 successful call each);
#   - while it runs, B's /status counts the call and A's does not (A only proxies);
#   - sipp received A's Record-Route in the 200;
#   - B ends with no call left.
# Then failures, each answered by A with 504 and an ms-diagnostics header that sipp
# checks:
#   - a Route to a TLS port where nothing listens: 1046 naming 127.0.0.1:port;
#   - a Route to B under a name its certificate lacks (maddr=127.0.0.1): 1010 with
#     ErrorType "The peer certificate does not contain a matching FQDN".
#
#   tests/integration/test_proxy_twonodes.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
it_require sipp

# ---------------------------------------------------------------- two nodes

# node_config NAME FILE VERIFY: it_write_config with the node's own name and
# tls.verify_client = VERIFY.
node_config() {
    local name=$1 file=$2 verify=$3
    it_write_config "$file"
    sed -i -e "s/name = \"it-$IT_NAME\";/name = \"$name\";/" \
        -e "s/verify_client = \"request\";/verify_client = \"$verify\";/" "$file"
}

# start_node NAME CONF: like it_start_node, with the log in $IT_TMP/NAME.log; sets
# NODE_PID. Uses SIP_PORT and ADMIN_PORT as allocated for that node.
start_node() {
    local name=$1 conf=$2 log=$IT_TMP/$1.log pid i
    "$CONFNODE" run -c "$conf" >>"$log" 2>&1 &
    pid=$!
    IT_PIDS+=("$pid")
    NODE_PID=$pid
    for ((i = 0; i < 300; i++)); do
        it_pid_alive "$pid" || fail "node $name exited during start-up"
        if curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$ADMIN_PORT/status" 2>/dev/null &&
            ss -Htln "sport = :$SIP_PORT" | grep -q .; then
            it_log "node $name up (pid $pid): sip $SIP_PORT, tls $TLS_PORT, admin $ADMIN_PORT"
            return 0
        fi
        sleep 0.1
    done
    fail "node $name did not become ready within 30 s"
}

fail() {
    local n
    for n in a b; do
        if [[ -s "$IT_TMP/$n.log" ]]; then
            printf '[%s] --- last lines of node %s ---\n' "$IT_NAME" "$n" >&2
            tail -n 25 "$IT_TMP/$n.log" >&2
        fi
    done
    it_fail "$@"
}

# status_sum ADMIN_PORT KEY: KEY summed over the workers of that node's /status.
status_sum() {
    local port=$1 key=$2
    curl -fsS --max-time 5 "http://127.0.0.1:$port/status" |
        jq -e --arg k "$key" '[.workers[] | .[$k]] | add' ||
        fail "GET /status on admin port $port lacks \"$key\""
}

it_alloc_node_ports
B_SIP=$SIP_PORT B_TLS=$TLS_PORT B_ADMIN=$ADMIN_PORT
node_config node-b "$IT_TMP/b.conf" require
start_node b "$IT_TMP/b.conf"
B_PID=$NODE_PID

# A is the entry point the test steers with a preloaded route set, so it is told to
# follow one from any peer; B keeps the default and refuses them (no open relay).
it_alloc_node_ports
A_SIP=$SIP_PORT A_TLS=$TLS_PORT A_ADMIN=$ADMIN_PORT
IT_SIP_EXTRA="accept_preloaded_routes = true;"
node_config node-a "$IT_TMP/a.conf" request
IT_SIP_EXTRA=""
start_node a "$IT_TMP/a.conf"
A_PID=$NODE_PID

# ---------------------------------------------------------------- no open relay

cat >"$IT_TMP/relay.sip" <<EOF
OPTIONS sip:someone@example.org SIP/2.0
Via: SIP/2.0/@TRANSPORT@ 127.0.0.1:@LPORT@;branch=@BRANCH@
Route: <sip:127.0.0.1:$B_SIP;lr>, <sip:127.0.0.1:$A_SIP;lr>
From: <sip:probe@client.example.test>;tag=@TAG@
To: <sip:someone@example.org>
Call-ID: @CALLID@
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

EOF
out=$(python3 "$IT_ROOT/tests/integration/sipsend.py" --transport udp --port "$B_SIP" \
    "$IT_TMP/relay.sip") || fail "could not reach node B: $out"
[[ $out == *codes=403* ]] ||
    fail "node B followed a preloaded Route from an unauthenticated peer: $out"
it_log "preloaded route from an unauthenticated UDP peer: 403 (no open relay)"

# ---------------------------------------------------------------- scenarios

# call_scenario FILE SECOND_ROUTE: INVITE through A to SECOND_ROUTE, 200, ACK and BYE
# along the recorded route set, with a pause while the call is up.
call_scenario() {
    cat >"$1" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="call through node A to node B">
  <send retrans="500">
    <![CDATA[
      INVITE sip:meet@example.test SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Route: <sip:127.0.0.1:$A_SIP;lr>, $2
      From: <sip:caller@client.example.test>;tag=[pid]-[call_number]
      To: <sip:meet@example.test>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true">
    <action>
      <ereg regexp="transport=tls;lr" search_in="hdr" header="Record-Route:" check_it="true"
            assign_to="rr"/>
    </action>
  </recv>
  <Reference variables="rr"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:caller@client.example.test>;tag=[pid]-[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="4000"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:caller@client.example.test>;tag=[pid]-[call_number]
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
}

# fail_scenario FILE SECOND_ROUTE REGEXP: INVITE through A to SECOND_ROUTE; the answer
# must be 504 with an ms-diagnostics header matching REGEXP; ACK (same branch: it
# belongs to the INVITE's transaction, and A absorbs it).
fail_scenario() {
    cat >"$1" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="a route A cannot follow">
  <send retrans="500">
    <![CDATA[
      INVITE sip:meet@example.test SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-px-[call_number]-[pid]
      Route: <sip:127.0.0.1:$A_SIP;lr>, $2
      From: <sip:caller@client.example.test>;tag=[pid]-[call_number]
      To: <sip:meet@example.test>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="504">
    <action>
      <ereg regexp="$3" search_in="hdr" header="ms-diagnostics:" check_it="true"
            assign_to="diag"/>
    </action>
  </recv>
  <Reference variables="diag"/>
  <send>
    <![CDATA[
      ACK sip:meet@example.test SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-px-[call_number]-[pid]
      Route: <sip:127.0.0.1:$A_SIP;lr>, $2
      From: <sip:caller@client.example.test>;tag=[pid]-[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
EOF
}

to_b="<sip:127.0.0.1:$B_TLS;transport=tls;lr>"
call_scenario "$IT_TMP/call.xml" "$to_b"

# ---------------------------------------------------------------- calls through A

b_total=0
for transport in t1 u1; do
    name=call-$transport
    it_sipp_start "$name" "127.0.0.1:$A_SIP" "$transport" 1 1 -sf "$IT_TMP/call.xml" \
        -trace_msg -message_file "$IT_TMP/$name.msg"
    # while sipp pauses between ACK and BYE, B hosts the call and A does not
    seen=0
    for ((i = 0; i < 60; i++)); do
        if [[ $(status_sum "$B_ADMIN" calls) == 1 ]]; then
            seen=1
            break
        fi
        sleep 0.1
    done
    [[ $seen == 1 ]] || fail "$name: node B's /status never showed the call"
    [[ $(status_sum "$A_ADMIN" calls) == 0 ]] || fail "$name: node A answered the call itself"
    it_sipp_wait "$name"
    if [[ "$SIPP_RC" != 0 || "$SIPP_OK" != 1 || "$SIPP_FAILED" != 0 ]]; then
        it_sipp_show "$name"
        fail "$name: the call through A to B did not complete (exit $SIPP_RC)"
    fi
    grep -q "Record-Route: <sip:127.0.0.1:$A_TLS;transport=tls;lr>" "$IT_TMP/$name.msg" ||
        fail "$name: sipp's 200 lacks A's Record-Route"
    b_total=$((b_total + 1))
    for ((i = 0; i < 50; i++)); do
        [[ $(status_sum "$B_ADMIN" calls) == 0 ]] && break
        sleep 0.1
    done
    [[ $(status_sum "$B_ADMIN" calls) == 0 ]] || fail "$name: the BYE through A did not end B's call"
    it_log "$name: INVITE/200/ACK/BYE through A to B over TLS ok"
done
[[ $(status_sum "$B_ADMIN" calls_total) == "$b_total" ]] ||
    fail "node B counted $(status_sum "$B_ADMIN" calls_total) calls, expected $b_total"
[[ $(status_sum "$A_ADMIN" calls_total) == 0 ]] || fail "node A counted calls of its own"

# ---------------------------------------------------------------- failures

it_free_port
closed=$IT_PORT
fail_scenario "$IT_TMP/closed.xml" "<sip:127.0.0.1:$closed;transport=tls;lr>" \
    "^ *1046;reason=.Failed to connect to a federated peer server.;fqdn=.127\\.0\\.0\\.1:$closed."
it_sipp_start closed "127.0.0.1:$A_SIP" t1 1 1 -sf "$IT_TMP/closed.xml" \
    -trace_msg -message_file "$IT_TMP/closed.msg"
it_sipp_wait closed
if [[ "$SIPP_RC" != 0 || "$SIPP_OK" != 1 ]]; then
    it_sipp_show closed
    fail "closed port: no 504 with ms-diagnostics 1046 (exit $SIPP_RC)"
fi
grep -q "Connection refused" "$IT_TMP/closed.msg" || fail "closed port: the reason is not named"
it_log "route to a closed port: 504, ms-diagnostics 1046 naming 127.0.0.1:$closed"

fail_scenario "$IT_TMP/name.xml" \
    "<sip:other.example.test:$B_TLS;transport=tls;lr;maddr=127.0.0.1>" \
    "^ *1010;reason=.Certificate trust with another server could not be established.;ErrorType=.The peer certificate does not contain a matching FQDN.;tls-target=.other\\.example\\.test."
it_sipp_start name "127.0.0.1:$A_SIP" u1 1 1 -sf "$IT_TMP/name.xml" \
    -trace_msg -message_file "$IT_TMP/name.msg"
it_sipp_wait name
if [[ "$SIPP_RC" != 0 || "$SIPP_OK" != 1 ]]; then
    it_sipp_show name
    fail "name mismatch: no 504 with ms-diagnostics 1010 (exit $SIPP_RC)"
fi
it_log "route to B under a name its certificate lacks: 504, ms-diagnostics 1010"

# ---------------------------------------------------------------- clean end

for n in a b; do
    pid_var=${n^^}_PID
    pid=${!pid_var}
    it_pid_alive "$pid" || fail "node $n died"
    kill -TERM "$pid"
    it_wait_exit "$pid" 10 || fail "node $n did not stop within 10 s"
    [[ "$IT_WAIT_RC" == 0 ]] || fail "node $n exited with status $IT_WAIT_RC"
    if grep -qE 'Sanitizer|runtime error:' "$IT_TMP/$n.log"; then
        grep -nE -m 5 'Sanitizer|runtime error:' "$IT_TMP/$n.log" >&2
        fail "node $n's log shows a sanitizer report"
    fi
done
