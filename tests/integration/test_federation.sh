#!/usr/bin/env bash
# Federation routing in a running node, against a real DNS server (dnsmasq on a
# loopback port) and a TLS peer (openssl s_server on another loopback address):
#   sub.test     SRV target in a subdomain (strict naming)     504 + ms-diagnostics 1009
#   deny.test    not in the allow list                         403 + ms-diagnostics 1027
#   nosan.test   peer certificate without the SRV target FQDN  504 + ms-diagnostics 1010
# Each case asserts the response code, the ms-diagnostics code and the search-history
# entry served by GET /history (and printed by `confnode history`).
# Needs dnsmasq (Debian: dnsmasq-base), openssl, python3. Loopback only.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"

DNSMASQ=${DNSMASQ:-$(command -v dnsmasq || echo /usr/sbin/dnsmasq)}
[[ -x "$DNSMASQ" ]] || it_fail "dnsmasq is not installed (Debian package dnsmasq-base)"
it_require python3

it_alloc_node_ports
it_free_ports 21000 23999 1 1
DNS_PORT=$IT_PORT
# a loopback address whose port 5061 is free: the federated peer
PEER=""
for x in $(seq 20 60); do
    cand=127.0.$x.15
    if ! ss -Htln "src = $cand:5061" | grep -q . && ! ss -Htln "sport = :5061" | grep -q "0.0.0.0:5061\|\*:5061"; then
        PEER=$cand
        break
    fi
done
[[ -n "$PEER" ]] || it_fail "no loopback address with port 5061 free"

# ---------------------------------------------------------------------------- PKI
PKI=$IT_TMP/pki
it_make_certs "$PKI"
# the peer's certificate: issued by the node's CA, SAN names another host
openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/nosan.key" -subj "/CN=wrong.nosan.test" \
    -out "$PKI/nosan.csr" 2>/dev/null || it_fail "openssl req failed"
printf 'subjectAltName=DNS:wrong.nosan.test\nextendedKeyUsage=serverAuth,clientAuth\n' >"$PKI/nosan.ext"
openssl x509 -req -in "$PKI/nosan.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 30 -extfile "$PKI/nosan.ext" -out "$PKI/nosan.crt" 2>/dev/null ||
    it_fail "openssl x509 failed"

openssl s_server -quiet -accept "$PEER:5061" -cert "$PKI/nosan.crt" -key "$PKI/nosan.key" \
    >"$IT_TMP/s_server.log" 2>&1 &
IT_PIDS+=($!)

# ---------------------------------------------------------------------------- DNS
dns_args=(
    --keep-in-foreground --no-daemon --conf-file=/dev/null --pid-file=
    --port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces
    --no-resolv --no-hosts --local=/test/ --local-ttl=60
    --user="$(id -un)" --log-queries --log-facility="$IT_TMP/dnsmasq.log"
    "--srv-host=_sipfederationtls._tcp.sub.test,sip.x.sub.test,5061,1,100"
    "--host-record=sip.x.sub.test,$PEER"
    "--srv-host=_sipfederationtls._tcp.nosan.test,sip.nosan.test,5061,1,100"
    "--host-record=sip.nosan.test,$PEER"
    "--srv-host=_sipfederationtls._tcp.deny.test,sip.deny.test,5061,1,100"
    "--host-record=sip.deny.test,$PEER"
)
"$DNSMASQ" "${dns_args[@]}" 2>"$IT_TMP/dnsmasq.err" &
IT_PIDS+=($!)
for ((i = 0; i < 50; i++)); do
    ss -Hlun "sport = :$DNS_PORT" | grep -q . && break
    sleep 0.1
done
ss -Hlun "sport = :$DNS_PORT" | grep -q . || it_fail "dnsmasq did not start: $(cat "$IT_TMP/dnsmasq.err")"

# ---------------------------------------------------------------------------- the node
CONF=$IT_TMP/node.conf
it_write_config "$CONF"
cat >>"$CONF" <<EOF
search_rules = (
    { name = "federated"; priority = 100; mode = "any-alias"; target = "dns"; }
);
federation: {
    privacy = "allow-list";
    allow = [ "sub.test", "nosan.test" ];
    dns_server = "127.0.0.1:$DNS_PORT";
};
EOF
it_start_node "$CONF"

# send_message USER@DOMAIN: a MESSAGE over UDP; prints "STATUS DIAGCODE"
send_message() {
    python3 - "$SIP_PORT" "$1" <<'EOF'
import re, socket, sys, time, os
port, target = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
lp = s.getsockname()[1]
cid = os.urandom(8).hex()
msg = (f"MESSAGE sip:{target} SIP/2.0\r\n"
       f"Via: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK{cid}\r\n"
       f"Max-Forwards: 70\r\nFrom: <sip:alice@example.test>;tag=a{cid}\r\n"
       f"To: <sip:{target}>\r\nCall-ID: {cid}@it\r\nCSeq: 1 MESSAGE\r\n"
       f"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi")
s.sendto(msg.encode(), ("127.0.0.1", port))
deadline = time.time() + 20
status, diag = "-", "-"
while time.time() < deadline:
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        data = s.recv(65536).decode(errors="replace")
    except socket.timeout:
        break
    m = re.match(r"SIP/2.0 (\d+)", data)
    if not m or int(m.group(1)) < 200:
        continue
    status = m.group(1)
    d = re.search(r"^ms-diagnostics:\s*(\d+)", data, re.M | re.I)
    diag = d.group(1) if d else "-"
    break
print(status, diag)
EOF
}

# history_has CALLEE STATUS CODE: the newest record for CALLEE shows that outcome
history_has() {
    local doc
    doc=$(curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/history") || it_fail "GET /history failed"
    jq -e --arg to "$1" --argjson st "$2" --argjson code "$3" \
        '[.entries[] | select(.to | contains($to))][0] | .status == $st and .diagnostics.code == $code' \
        <<<"$doc" >/dev/null || {
        jq . <<<"$doc" >&2
        it_fail "history has no entry for $1 with status $2 and ms-diagnostics $3"
    }
}

check() { # USER@DOMAIN STATUS CODE
    local got
    got=$(send_message "$1")
    it_log "$1 -> $got"
    [[ "$got" == "$2 $3" ]] || it_fail "$1: expected '$2 $3', got '$got'"
    history_has "$1" "$2" "$3"
}

check bob@sub.test 504 1009
check bob@deny.test 403 1027
check bob@nosan.test 504 1010

"$CONFNODE" history --admin "127.0.0.1:$ADMIN_PORT" --last 5 >"$IT_TMP/history.txt" 2>&1 ||
    it_fail "confnode history failed: $(cat "$IT_TMP/history.txt")"
grep -q "1009" "$IT_TMP/history.txt" || it_fail "confnode history does not show 1009"

it_stop_node
it_log "ok"
