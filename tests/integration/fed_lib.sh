# shellcheck shell=bash
# Helpers for the federation integration tests (tests/integration/test_federation_*.sh),
# on top of lib.sh. Sourced, never run. Everything stays on 127.0.0.0/8, except with
# the namespace helpers at the end (fed_ns_*: peers on 10.232.X.0/24 in namespaces):
#   fed_init BUILD_DIR        it_init, node ports, a DNS port ($DNS_PORT)
#   fed_addr                  sets FED_ADDR: a fresh loopback address, ports 5061/5601 free
#   fed_cert NAME CN [SAN] [CA]       NAME.{crt,key} in $PKI, signed by CA (default ca)
#   fed_expired_cert NAME CN SAN      as fed_cert, valid only in the past
#   fed_ca NAME                       another self-signed CA
#   fed_s_server ADDR:PORT NAME       openssl s_server with $PKI/NAME.{crt,key}
#   fed_tcp_listener ADDR:PORT        a plain TCP listener that answers garbage
#   fed_dns ARGS...                   dnsmasq on $DNS_PORT, authoritative for *.test
#   fed_send METHOD USER@DOMAIN       one request over UDP to the node: "STATUS DIAG"
#   fed_history_has USER@DOMAIN STATUS CODE [JQ-FILTER]
#   fed_check METHOD USER@DOMAIN STATUS CODE
# Needs dnsmasq (Debian: dnsmasq-base), openssl, python3.

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FED_USED_ADDRS=()

fed_init() {
    it_init "$@"
    DNSMASQ=${DNSMASQ:-$(command -v dnsmasq || echo /usr/sbin/dnsmasq)}
    [[ -x "$DNSMASQ" ]] || it_fail "dnsmasq is not installed (Debian package dnsmasq-base)"
    it_require python3
    it_alloc_node_ports
    it_free_ports 21000 23999 1 1
    DNS_PORT=$IT_PORT
    PKI=$IT_TMP/pki
    it_make_certs "$PKI"
}

# A loopback address 127.0.X.Y (random X) with 5061 and 5601 free, not handed out before.
fed_addr() {
    local attempt cand listening
    listening=$(ss -Htln 2>/dev/null | awk '{print $4}')
    for ((attempt = 0; attempt < 200; attempt++)); do
        cand=127.0.$((70 + RANDOM % 180)).$((2 + RANDOM % 250))
        [[ " ${FED_USED_ADDRS[*]} " == *" $cand "* ]] && continue
        grep -qE "^($cand|0\.0\.0\.0|\*|\[::\]):(5061|5601)$" <<<"$listening" && continue
        FED_USED_ADDRS+=("$cand")
        # shellcheck disable=SC2034 # read by the test that sources this file
        FED_ADDR=$cand
        return 0
    done
    it_fail "no loopback address with ports 5061 and 5601 free"
}

# fed_ca NAME: a self-signed CA in $PKI/NAME.{crt,key}.
fed_ca() {
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.crt" \
        -subj "/CN=$1 test CA" -days 30 -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || it_fail "openssl: CA $1"
}

# fed_cert NAME CN [SAN] [CA]: SAN is a subjectAltName value ("" for none).
fed_cert() {
    local name=$1 cn=$2 san=${3:-} ca=${4:-ca}
    openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "/CN=$cn" \
        -out "$PKI/$name.csr" 2>/dev/null || it_fail "openssl req $name failed"
    {
        printf 'extendedKeyUsage=serverAuth,clientAuth\n'
        [[ -n "$san" ]] && printf 'subjectAltName=%s\n' "$san"
    } >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
        -CAcreateserial -days 30 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null ||
        it_fail "openssl x509 $name failed"
}

# fed_expired_cert NAME CN SAN: signed by ca, valid from 2020-01-01 to 2020-02-01.
fed_expired_cert() {
    local name=$1 cn=$2 san=$3 d=$PKI/ca-db
    mkdir -p "$d"
    : >"$d/index.txt"
    printf '1000\n' >"$d/serial"
    cat >"$d/ca.cnf" <<EOF
[ ca ]
default_ca = test
[ test ]
dir = $d
database = $d/index.txt
serial = $d/serial
new_certs_dir = $d
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[ any ]
commonName = supplied
[ ext ]
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = $san
EOF
    openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "/CN=$cn" \
        -out "$PKI/$name.csr" 2>/dev/null || it_fail "openssl req $name failed"
    openssl ca -batch -config "$d/ca.cnf" -cert "$PKI/ca.crt" -keyfile "$PKI/ca.key" \
        -startdate 20200101000000Z -enddate 20200201000000Z -extensions ext \
        -in "$PKI/$name.csr" -out "$PKI/$name.crt" >"$d/$name.log" 2>&1 ||
        it_fail "openssl ca $name failed: $(cat "$d/$name.log")"
}

# fed_s_server ADDR:PORT NAME: a TLS server with $PKI/NAME.{crt,key}; its log is
# $IT_TMP/s_server-ADDR-PORT.log (every accepted connection leaves a line there).
fed_s_server() {
    local hp=$1 name=$2 log i
    log=$IT_TMP/s_server-${hp/:/-}.log
    # s_server ends at end of input: a sleeping writer keeps its stdin open
    mkfifo "$IT_TMP/fifo-${hp/:/-}"
    sleep 300 >"$IT_TMP/fifo-${hp/:/-}" &
    IT_PIDS+=($!)
    openssl s_server -accept "$hp" -cert "$PKI/$name.crt" -key "$PKI/$name.key" \
        <"$IT_TMP/fifo-${hp/:/-}" >"$log" 2>&1 &
    IT_PIDS+=($!)
    fed_wait_listen "$hp"
    : >"$log"
}

# fed_tcp_listener ADDR:PORT: accepts TCP, logs "accepted", answers non-TLS bytes.
fed_tcp_listener() {
    local hp=$1 log=$IT_TMP/tcp-${1/:/-}.log
    python3 - "${hp%:*}" "${hp##*:}" >"$log" 2>&1 <<'EOF' &
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
def serve(c):
    try:
        c.settimeout(10)
        c.recv(4096)
        c.sendall(b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        c.recv(4096)
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept()
    print("accepted", flush=True)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
    IT_PIDS+=($!)
    fed_wait_listen "$hp"
}

fed_wait_listen() {
    local i
    for ((i = 0; i < 100; i++)); do
        ss -Htln "src = $1" | grep -q . && return 0
        sleep 0.05
    done
    it_fail "nothing listens on $1"
}

# fed_dns ARGS...: dnsmasq on 127.0.0.1:$DNS_PORT, answering for *.test with ARGS
# (--srv-host=..., --host-record=...).
fed_dns() {
    local i
    "$DNSMASQ" --keep-in-foreground --no-daemon --conf-file=/dev/null --pid-file= \
        --port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces \
        --no-resolv --no-hosts --local=/test/ --local-ttl=60 \
        --user="$(id -un)" --log-queries --log-facility="$IT_TMP/dnsmasq.log" \
        "$@" 2>"$IT_TMP/dnsmasq.err" &
    IT_PIDS+=($!)
    for ((i = 0; i < 50; i++)); do
        ss -Hlun "sport = :$DNS_PORT" | grep -q . && return 0
        sleep 0.1
    done
    it_fail "dnsmasq did not start: $(cat "$IT_TMP/dnsmasq.err")"
}

# fed_send METHOD USER@DOMAIN [PORT]: one out-of-dialog request over UDP to the node
# (default $SIP_PORT); prints "STATUS DIAG" of the final response ("- -" when none
# within 20 s) and keeps the response in $IT_TMP/last_response.txt. From: $FED_FROM
# (default alice@example.test).
fed_send() {
    python3 - "${3:-$SIP_PORT}" "$1" "$2" "$IT_TMP/last_response.txt" "${FED_FROM:-alice@example.test}" <<'EOF'
import re, socket, sys, time, os
port, method, target, out, frm = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
lp = s.getsockname()[1]
cid = os.urandom(8).hex()
msg = (f"{method} sip:{target} SIP/2.0\r\n"
       f"Via: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK{cid}\r\n"
       f"Max-Forwards: 70\r\nFrom: <sip:{frm}>;tag=a{cid}\r\n"
       f"To: <sip:{target}>\r\nCall-ID: {cid}@it\r\nCSeq: 1 {method}\r\n"
       f"Contact: <sip:alice@127.0.0.1:{lp}>\r\n"
       f"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi")
s.sendto(msg.encode(), ("127.0.0.1", port))
deadline = time.time() + 20
status, diag, data = "-", "-", ""
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
open(out, "w").write(data)
print(status, diag)
EOF
}

# fed_history_has USER@DOMAIN STATUS CODE [JQ]: the newest GET /history record for
# USER@DOMAIN has that status and ms-diagnostics code (CODE "null": none), and the
# optional jq filter (applied to that record) is true.
fed_history_has() {
    local doc filter=${4:-true}
    doc=$(curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/history") || it_fail "GET /history failed"
    jq -e --arg to "$1" --argjson st "$2" --argjson code "$3" \
        "[.entries[] | select(.to | contains(\$to))][0]
         | (.status == \$st and (.diagnostics.code // null) == \$code) and ($filter)" \
        <<<"$doc" >/dev/null || {
        jq --arg to "$1" '[.entries[] | select(.to | contains($to))][0]' <<<"$doc" >&2
        it_fail "history: no entry for $1 with status $2, ms-diagnostics $3 and ($filter)"
    }
}

# fed_check METHOD USER@DOMAIN STATUS CODE: sends, asserts the answer and the history.
fed_check() {
    local got code=$4
    got=$(fed_send "$1" "$2")
    it_log "$1 $2 -> $got"
    [[ "$code" == null ]] && code=-
    [[ "$got" == "$3 $code" ]] || {
        cat "$IT_TMP/last_response.txt" >&2
        it_fail "$1 $2: expected '$3 $code', got '$got'"
    }
    fed_history_has "$2" "$3" "$4"
}

# fed_diag_has TEXT: the last response's ms-diagnostics header contains TEXT.
fed_diag_has() {
    grep -i '^ms-diagnostics:' "$IT_TMP/last_response.txt" | grep -qiF -- "$1" || {
        cat "$IT_TMP/last_response.txt" >&2
        it_fail "ms-diagnostics does not contain '$1'"
    }
}

# ---------------------------------------------------------------------------- namespaces
# Peers with their own address, each in its own network namespace (needs root and
# iproute2), on a 10.232.X.0/24 that a blackhole route keeps off the root namespace:
#   fed_ns_net                     reserves $FED_NET (10.232.X), makes the hub namespace
#                                  with bridge br0; the EXIT trap removes it all again
#   fed_ns_add NAME HOST [HOST...] namespace $FED_NS-NAME, eth0 on br0 with $FED_NET.HOST
#   fed_in NAME COMMAND...         COMMAND inside namespace NAME
#   fed_ns_spawn NAME LOG COMMAND...   COMMAND in the background inside NAME ($FED_PID)
#   fed_ns_wait_listen NAME ADDR:PORT [udp]
#   fed_ns_dns NAME ADDR ARGS...   dnsmasq on ADDR:53 inside NAME, authoritative for *.test
#   fed_ns_send NAME SRC DST METHOD USER@DOMAIN FROM [CERT SNI]
#                                  one request over UDP (TLS with CERT): "STATUS DIAG"
#   fed_ns_history_has NAME USER@DOMAIN STATUS CODE [JQ]   as fed_history_has, in NAME
#   fed_cert_days DAYS NAME CN [SAN] [CA]    as fed_cert, valid for DAYS days

FED_NET=
FED_NS=
FED_NS_MADE=() # namespaces, in the order they were made

# fed_ns_net: the subnet and the hub. Adding the blackhole route is the reservation: it
# fails when another test or cluster holds that X.
fed_ns_net() {
    local x attempt
    [[ $(id -u) == 0 ]] || it_fail "network namespaces need root"
    it_require ip
    trap fed_ns_exit EXIT
    for ((attempt = 0; attempt < 64; attempt++)); do
        x=$((RANDOM % 250 + 1))
        [[ -z "$(ip -4 route show "10.232.$x.0/24" 2>/dev/null)" ]] || continue
        ip -4 addr show 2>/dev/null | grep -q "inet 10\.232\.$x\." && continue
        ip netns list 2>/dev/null | grep -q "^cnfed$x-" && continue
        if ip route add blackhole "10.232.$x.0/24" 2>/dev/null; then
            FED_NET=10.232.$x
            FED_NS=cnfed$x
            break
        fi
    done
    [[ -n "$FED_NET" ]] || it_fail "no free 10.232.X.0/24 (or 'ip route add blackhole' refused)"
    FED_NS_MADE+=("$FED_NS-hub")
    ip netns add "$FED_NS-hub" || it_fail "ip netns add $FED_NS-hub failed"
    ip -n "$FED_NS-hub" link set lo up
    ip -n "$FED_NS-hub" link add br0 type bridge
    ip -n "$FED_NS-hub" link set br0 up
    it_log "namespaces $FED_NS-*, subnet $FED_NET.0/24"
}

# fed_ns_add NAME HOST [HOST...]: the first HOST's address is eth0's primary one.
fed_ns_add() {
    local name=$1 ns=$FED_NS-$1 port=v-$1 h
    shift
    FED_NS_MADE+=("$ns")
    ip netns add "$ns" || it_fail "ip netns add $ns failed"
    ip -n "$ns" link set lo up
    ip -n "$FED_NS-hub" link add "$port" type veth peer name eth0 netns "$ns" ||
        it_fail "veth for $name failed"
    ip -n "$FED_NS-hub" link set "$port" master br0 up
    for h in "$@"; do
        ip -n "$ns" addr add "$FED_NET.$h/24" dev eth0
    done
    ip -n "$ns" link set eth0 up
}

fed_in() {
    local ns=$FED_NS-$1
    shift
    ip netns exec "$ns" "$@"
}

# fed_ns_spawn NAME LOG COMMAND...: ip netns exec execs COMMAND, so $FED_PID is COMMAND.
fed_ns_spawn() {
    local ns=$FED_NS-$1 log=$2
    shift 2
    ip netns exec "$ns" "$@" </dev/null >>"$log" 2>&1 &
    FED_PID=$!
    IT_PIDS+=("$FED_PID")
}

fed_ns_wait_listen() {
    local i opt=-Htln
    [[ "${3:-tcp}" == udp ]] && opt=-Hlun
    for ((i = 0; i < 200; i++)); do
        fed_in "$1" ss "$opt" "src = $2" | grep -q . && return 0
        sleep 0.05
    done
    it_fail "nothing listens on $2 in $FED_NS-$1"
}

# fed_ns_dns NAME ADDR ARGS...: dnsmasq on ADDR:53 in NAME with ARGS (--srv-host=...,
# --host-record=...); queries logged to $IT_TMP/dnsmasq.log.
fed_ns_dns() {
    local name=$1 addr=$2
    shift 2
    fed_ns_spawn "$name" "$IT_TMP/dnsmasq.err" "$DNSMASQ" --keep-in-foreground --no-daemon \
        --conf-file=/dev/null --pid-file= --port=53 --listen-address="$addr" \
        --bind-interfaces --no-resolv --no-hosts --local=/test/ --local-ttl=60 \
        --user="$(id -un)" --log-queries --log-facility="$IT_TMP/dnsmasq.log" "$@"
    fed_ns_wait_listen "$name" "$addr:53" udp
}

# fed_ns_send NAME SRC DST METHOD USER@DOMAIN FROM [CERT SNI]: one out-of-dialog request
# from SRC (an address of NAME) to DST (ADDR:PORT), over UDP, or over TLS with the client
# certificate $PKI/CERT.{crt,key} when CERT is given (the server's certificate must
# chain to $PKI/ca.crt and name SNI). Prints "STATUS DIAG" of the final response ("- -"
# when none within 20 s) and keeps it in $IT_TMP/last_response.txt.
fed_ns_send() {
    local name=$1 src=$2 dst=$3 method=$4 target=$5 from=$6 cert=${7:-} sni=${8:-}
    fed_in "$name" python3 - "$src" "$dst" "$method" "$target" "$from" \
        "${cert:+$PKI/$cert.crt}" "${cert:+$PKI/$cert.key}" "$PKI/ca.crt" "$sni" \
        "$IT_TMP/last_response.txt" <<'PY'
import os, re, socket, ssl, sys, time
src, dst, method, target, frm, cert, key, ca, sni, out = sys.argv[1:11]
host, port = dst.rsplit(":", 1)
port = int(port)
cid = os.urandom(8).hex()
tls = bool(cert)
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.load_cert_chain(cert, key)
    raw = socket.create_connection((host, port), timeout=10, source_address=(src, 0))
    s = ctx.wrap_socket(raw, server_hostname=sni)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
lp = s.getsockname()[1]
tp = "TLS" if tls else "UDP"
body = "hi"
msg = (f"{method} sip:{target} SIP/2.0\r\n"
       f"Via: SIP/2.0/{tp} {src}:{lp};branch=z9hG4bK{cid};rport\r\n"
       f"Max-Forwards: 70\r\nFrom: <sip:{frm}>;tag=f{cid}\r\n"
       f"To: <sip:{target}>\r\nCall-ID: {cid}@fed-netns\r\nCSeq: 1 {method}\r\n"
       f"Contact: <sip:{frm.split('@')[0]}@{src}:{lp};transport={tp.lower()}>\r\n"
       f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n{body}")
if tls:
    s.sendall(msg.encode())
else:
    s.sendto(msg.encode(), (host, port))

def messages():
    """Yields each SIP message received, until the deadline."""
    buf = b""
    deadline = time.time() + 20
    while time.time() < deadline:
        s.settimeout(max(0.1, deadline - time.time()))
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ssl.SSLError, OSError):
            return
        if not chunk:
            return
        if not tls:
            yield chunk.decode(errors="replace")
            continue
        buf += chunk
        while True:
            buf = buf.lstrip(b"\r\n")
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            m = re.search(rb"^(?:content-length|l)\s*:\s*(\d+)", buf[:end], re.M | re.I)
            total = end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) < total:
                break
            yield buf[:total].decode(errors="replace")
            buf = buf[total:]

status, diag, data = "-", "-", ""
for data in messages():
    m = re.match(r"SIP/2.0 (\d+)", data)
    if not m or int(m.group(1)) < 200:
        continue
    status = m.group(1)
    d = re.search(r"^ms-diagnostics:\s*(\d+)", data, re.M | re.I)
    diag = d.group(1) if d else "-"
    break
open(out, "w").write(data)
print(status, diag)
PY
}

# fed_ns_history_has NAME USER@DOMAIN STATUS CODE [JQ]: fed_history_has against the admin
# API at 127.0.0.1:$ADMIN_PORT inside namespace NAME.
fed_ns_history_has() {
    local doc name=$1 filter=${5:-true}
    doc=$(fed_in "$name" curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/history") ||
        it_fail "GET /history in $FED_NS-$name failed"
    jq -e --arg to "$2" --argjson st "$3" --argjson code "$4" \
        "[.entries[] | select(.to | contains(\$to))][0]
         | (.status == \$st and (.diagnostics.code // null) == \$code) and ($filter)" \
        <<<"$doc" >/dev/null || {
        jq --arg to "$2" '[.entries[] | select(.to | contains($to))][0]' <<<"$doc" >&2
        it_fail "history of $name: no entry for $2 with status $3, ms-diagnostics $4 and ($filter)"
    }
}

# fed_cert_days DAYS NAME CN [SAN] [CA]: fed_cert with a validity of DAYS days.
fed_cert_days() {
    local days=$1 name=$2 cn=$3 san=${4:-} ca=${5:-ca}
    openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "/CN=$cn" \
        -out "$PKI/$name.csr" 2>/dev/null || it_fail "openssl req $name failed"
    {
        printf 'extendedKeyUsage=serverAuth,clientAuth\n'
        [[ -n "$san" ]] && printf 'subjectAltName=%s\n' "$san"
    } >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
        -CAcreateserial -days "$days" -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" \
        2>/dev/null || it_fail "openssl x509 $name failed"
}

# Stops what runs in our namespaces, deletes them (the veth pairs go with them) and the
# blackhole route; then it_cleanup. The EXIT trap of a test that called fed_ns_net.
fed_ns_exit() {
    local rc=$? pid ns i j
    set +e
    for pid in "${IT_PIDS[@]}"; do
        it_kill "$pid" 3
    done
    IT_PIDS=()
    for ((i = ${#FED_NS_MADE[@]} - 1; i >= 0; i--)); do
        ns=${FED_NS_MADE[i]}
        ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF "$ns" || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
        for ((j = 0; j < 5; j++)); do
            ip netns del "$ns" 2>/dev/null && break
            sleep 0.2
        done
    done
    [[ -z "$FED_NET" ]] || ip route del blackhole "$FED_NET.0/24" 2>/dev/null
    (exit "$rc")
    it_cleanup
}
