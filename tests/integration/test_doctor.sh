#!/bin/bash
# confnode doctor against real peers: dnsmasq serves test zones on a loopback port and
# `openssl s_server` instances listen on 127.X.Y.n:5061 with certificates made here by
# the openssl CLI. Each case asserts the exit status and the status text of the check
# that matters:
#   good.test       everything right                         exit 0, no FAIL, no WARN
#   cnonly.test     CN-only certificate naming the target    exit 0, san PASS (CN)
#   soon.test       certificate expiring in 10 days          exit 0, expiry WARN
#   sub.test        SRV target in a subdomain                exit 1, strict_naming FAIL
#   other.test      SRV target in another domain             exit 1, strict_naming FAIL
#   port.test       SRV port 5601                            exit 1, srv_port FAIL, tcp FAIL
#   nosan.test      target missing from the SAN              exit 1, san FAIL + fix
#   untrusted.test  certificate from an untrusted CA         exit 1, chain FAIL
#   expired.test    expired certificate                      exit 1, expiry FAIL
#   nosrv.test      no SRV record                            exit 1, srv FAIL
#   multi.test      two SRV records                          exit 0, srv_selection INFO
#   --json          parses, and carries the failing check
#
#   tests/integration/test_doctor.sh BUILD_DIR
# Needs dnsmasq (Debian: dnsmasq-base) and openssl. Everything stays on 127.0.0.0/8.
# CONFNODE_VERBOSE=1 prints every doctor report.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"

DNSMASQ=${DNSMASQ:-$(command -v dnsmasq || echo /usr/sbin/dnsmasq)}
[[ -x "$DNSMASQ" ]] || it_fail "dnsmasq is not installed (Debian package dnsmasq-base)"
it_require python3

PKI=$IT_TMP/pki
mkdir -p "$PKI"

# ---------------------------------------------------------------------------- addresses

# A /24 of loopback addresses no one else uses: 127.X.Y.0 with port 5061 free on all of
# the ones this test takes (.10 to .30).
pick_net() {
    local attempt x y
    for ((attempt = 0; attempt < 50; attempt++)); do
        x=$((RANDOM % 200 + 20))
        y=$((RANDOM % 250 + 1))
        if ! ss -Htan 2>/dev/null | awk '{print $4}' | grep -q "^127\.$x\.$y\."; then
            NET=127.$x.$y
            return 0
        fi
    done
    it_fail "no free 127.X.Y.0/24 for the test servers"
}
pick_net
it_free_port
DNS_PORT=$IT_PORT
it_log "servers on $NET.0/24, DNS on 127.0.0.1:$DNS_PORT"

# ---------------------------------------------------------------------------- certificates

quiet() {
    "$@" >>"$IT_TMP/openssl.log" 2>&1 || it_fail "$* failed: $(tail -n 5 "$IT_TMP/openssl.log")"
}

# make_ca NAME CN
make_ca() {
    quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$PKI/$1.key" -out "$PKI/$1.crt" -days 3650 -subj "/O=confnode test/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

# make_cert NAME CA CN SAN(or "") DAYS
make_cert() {
    local name=$1 ca=$2 cn=$3 san=$4 days=$5 ext=$PKI/$1.ext
    {
        echo "[v3]"
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=serverAuth,clientAuth"
        [[ -n "$san" ]] && echo "subjectAltName=$san"
    } >"$ext"
    quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "/O=confnode test/CN=$cn"
    quiet openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
        -set_serial "$((RANDOM * 32768 + RANDOM))" -days "$days" \
        -extfile "$ext" -extensions v3 -out "$PKI/$name.crt"
}

make_ca ca "confnode doctor test CA"
make_ca rogue "some other CA"
make_cert good ca sip.good.test "DNS:sip.good.test,DNS:node1.good.test" 365
make_cert cnonly ca sip.cnonly.test "" 365
make_cert soon ca sip.soon.test "DNS:sip.soon.test" 10
make_cert sub ca sip.x.sub.test "DNS:sip.x.sub.test" 365
make_cert other ca sip.elsewhere.test "DNS:sip.elsewhere.test" 365
make_cert nosan ca sip.nosan.test "DNS:node1.nosan.test,DNS:node2.nosan.test" 365
make_cert untrusted rogue sip.untrusted.test "DNS:sip.untrusted.test" 365
make_cert expired ca sip.expired.test "DNS:sip.expired.test" -1
make_cert multi ca sip.multi.test "DNS:sip.multi.test,DNS:node2.multi.test" 365

# ---------------------------------------------------------------------------- TLS servers

# tls_server HOSTNUM CERT: openssl s_server on $NET.HOSTNUM:5061, waits until it listens.
tls_server() {
    local addr=$NET.$1 cert=$2 i
    openssl s_server -accept "$addr:5061" -cert "$PKI/$cert.crt" -key "$PKI/$cert.key" \
        -www -quiet >"$IT_TMP/s_server.$cert.log" 2>&1 &
    IT_PIDS+=("$!")
    for ((i = 0; i < 100; i++)); do
        ss -Htln 2>/dev/null | awk '{print $4}' | grep -qx "$addr:5061" && return 0
        it_pid_alive "${IT_PIDS[-1]}" ||
            it_fail "s_server $cert exited: $(cat "$IT_TMP/s_server.$cert.log")"
        sleep 0.1
    done
    it_fail "s_server $cert does not listen on $addr:5061 after 10 s"
}

tls_server 10 good
tls_server 11 cnonly
tls_server 12 soon
tls_server 13 sub
tls_server 14 other
tls_server 15 nosan
tls_server 16 untrusted
tls_server 17 expired
tls_server 20 multi
# port.test points at $NET.18:5601 where nothing listens

# ---------------------------------------------------------------------------- DNS

dns_args=(
    --keep-in-foreground --no-daemon --conf-file=/dev/null --pid-file=
    --port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces
    --no-resolv --no-hosts --local=/test/ --local-ttl=60
    --user="$(id -un)" --log-queries --log-facility="$IT_TMP/dnsmasq.log"
)
# zone DOMAIN TARGET PORT HOSTNUM: the SRV record and the target's A record
zone() {
    dns_args+=("--srv-host=_sipfederationtls._tcp.$1,$2,$3,1,100")
    dns_args+=("--host-record=$2,$NET.$4")
}
zone good.test sip.good.test 5061 10
zone cnonly.test sip.cnonly.test 5061 11
zone soon.test sip.soon.test 5061 12
zone sub.test sip.x.sub.test 5061 13
zone other.test sip.elsewhere.test 5061 14
zone nosan.test sip.nosan.test 5061 15
zone untrusted.test sip.untrusted.test 5061 16
zone expired.test sip.expired.test 5061 17
zone port.test sip.port.test 5601 18
dns_args+=("--host-record=sip.nosrv.test,$NET.19")
# multi.test: two records of one priority; a Microsoft edge uses the heavier one only
zone multi.test sip.multi.test 5061 20
dns_args+=("--srv-host=_sipfederationtls._tcp.multi.test,node2.multi.test,5061,1,50")
dns_args+=("--host-record=node2.multi.test,$NET.20")

"$DNSMASQ" "${dns_args[@]}" >"$IT_TMP/dnsmasq.out" 2>&1 &
IT_PIDS+=("$!")
DNS_PID=$!
for ((i = 0; i < 100; i++)); do
    ss -Hlun 2>/dev/null | awk '{print $4}' | grep -qx "127.0.0.1:$DNS_PORT" && break
    it_pid_alive "$DNS_PID" || it_fail "dnsmasq exited: $(cat "$IT_TMP/dnsmasq.out")"
    sleep 0.1
done
((i < 100)) || it_fail "dnsmasq does not listen on 127.0.0.1:$DNS_PORT after 10 s"

# ---------------------------------------------------------------------------- cases

show() {
    printf '%s\n' "$DOC_OUT" >&2
    [[ -z "$DOC_ERR" ]] || printf '%s\n' "$DOC_ERR" >&2
}

# doctor DOMAIN [ARGS...]: sets DOC_RC and DOC_OUT (stdout), DOC_ERR (stderr)
doctor() {
    DOC_RC=0
    DOC_OUT=$(timeout -k 2 120 "$CONFNODE" doctor "$@" --dns "127.0.0.1:$DNS_PORT" \
        --ca "$PKI/ca.crt" --timeout 3 2>"$IT_TMP/doctor.err") || DOC_RC=$?
    DOC_ERR=$(cat "$IT_TMP/doctor.err")
    [[ "${CONFNODE_VERBOSE:-0}" != 1 ]] || show
    ((DOC_RC != 124)) || it_fail "doctor $1: still running after 120 s"
    ((DOC_RC < 128)) || it_fail "doctor $1: killed by signal $((DOC_RC - 128)): $DOC_ERR"
    if grep -qE 'Sanitizer|runtime error:' <<<"$DOC_OUT$DOC_ERR"; then
        it_fail "doctor $1: sanitizer report:
$DOC_OUT
$DOC_ERR"
    fi
}

expect_rc() {
    [[ "$DOC_RC" == "$2" ]] || {
        show
        it_fail "doctor $1: exit $DOC_RC, expected $2"
    }
}

# expect_line CASE STATUS CHECK REGEX: a line "STATUS  CHECK ...REGEX..." exists
expect_line() {
    local re
    re="^$2  $3 +.*$4"
    grep -qE -- "$re" <<<"$DOC_OUT" || {
        show
        it_fail "doctor $1: no line matching /$re/"
    }
}

# no_status CASE STATUS: no check has STATUS
no_status() {
    if grep -qE "^$2  " <<<"$DOC_OUT"; then
        show
        it_fail "doctor $1: unexpected $2 line"
    fi
}

# expect_fix CASE TEXT: a fix line carries TEXT
expect_fix() {
    grep -qF -- "fix: $2" <<<"$DOC_OUT" || {
        show
        it_fail "doctor $1: no fix line \"$2\""
    }
}

doctor good.test
expect_rc good.test 0
no_status good.test FAIL
no_status good.test WARN
expect_line good.test PASS srv "_sipfederationtls._tcp.good.test SRV 1 100 5061 sip.good.test"
expect_line good.test PASS srv_port "port 5061"
expect_line good.test PASS strict_naming "sip.good.test is a host directly in good.test"
expect_line good.test INFO fallback_host "sip.good.test resolves"
expect_line good.test PASS address "sip.good.test: $NET.10"
expect_line good.test PASS tcp "connected to $NET.10:5061"
expect_line good.test PASS tls "TLSv1.3 .* with SNI sip.good.test"
expect_line good.test PASS chain "chains to a trusted CA"
expect_line good.test PASS san "sip.good.test is in the certificate's SAN"
expect_line good.test PASS expiry "valid until"
expect_line good.test PASS eku "serverAuth and clientAuth"
grep -q "good.test is ready for federation" <<<"$DOC_OUT" || it_fail "good.test: no summary"
it_log "good.test: exit 0, every check passes"

doctor cnonly.test
expect_rc cnonly.test 0
expect_line cnonly.test PASS san "sip.cnonly.test is the certificate's CN; the certificate has no SAN"
it_log "cnonly.test: CN-only certificate accepted"

doctor soon.test
expect_rc soon.test 0
expect_line soon.test WARN expiry "in (9|10) days"
expect_fix soon.test "renew the certificate"
it_log "soon.test: expiry within 30 days is a warning"

doctor sub.test
expect_rc sub.test 1
expect_line sub.test FAIL strict_naming "sip.x.sub.test is a subdomain of the domain sub.test"
expect_line sub.test FAIL strict_naming 'ms-diagnostics: 1009;reason="No match for domain in DNS SRV results";domain="sub.test";fqdn1="sip.x.sub.test:5061"'
expect_fix sub.test "point the SRV at a host directly in sub.test"
expect_line sub.test PASS san "sip.x.sub.test is in the certificate's SAN"
it_log "sub.test: subdomain target refused"

doctor other.test
expect_rc other.test 1
expect_line other.test FAIL strict_naming "sip.elsewhere.test is outside the domain other.test"
expect_fix other.test "point the SRV at a host directly in other.test"
it_log "other.test: target in another domain refused"

doctor port.test
expect_rc port.test 1
expect_line port.test FAIL srv_port "port 5601 in SRV; federation uses 5061"
expect_line port.test FAIL srv_port "looks like a firewall problem"
expect_line port.test FAIL tcp "$NET.18:5601"
expect_fix port.test "change the SRV record's port to 5061"
it_log "port.test: the 5601 typo is named"

doctor nosan.test
expect_rc nosan.test 1
expect_line nosan.test FAIL san "sip.nosan.test is not in the certificate's SAN \\(node1.nosan.test, node2.nosan.test\\)"
expect_fix nosan.test "add sip.nosan.test to the certificate's SAN"
expect_line nosan.test PASS chain "chains to a trusted CA"
it_log "nosan.test: SAN without the target refused"

doctor untrusted.test
expect_rc untrusted.test 1
expect_line untrusted.test FAIL chain "not trusted"
expect_line untrusted.test PASS san "sip.untrusted.test is in the certificate's SAN"
it_log "untrusted.test: untrusted CA refused"

doctor expired.test
expect_rc expired.test 1
expect_line expired.test FAIL expiry "expired on"
expect_line expired.test PASS chain "chains to a trusted CA"
expect_fix expired.test "renew the certificate"
it_log "expired.test: expired certificate refused"

doctor nosrv.test
expect_rc nosrv.test 1
expect_line nosrv.test FAIL srv "no SRV record _sipfederationtls._tcp.nosrv.test"
expect_line nosrv.test INFO fallback_host "sip.nosrv.test resolves"
expect_fix nosrv.test 'publish "_sipfederationtls._tcp.nosrv.test. 300 IN SRV 1 100 5061 sip.nosrv.test."'
it_log "nosrv.test: missing SRV record reported"

doctor multi.test
expect_rc multi.test 0
expect_line multi.test INFO srv_selection "2 records; Microsoft edges use only .*\(1 100 5061 sip.multi.test\)"
expect_line multi.test PASS san "node2.multi.test is in the certificate's SAN"
expect_fix multi.test "publish one SRV record whose target is a round-robin A/AAAA name"
it_log "multi.test: several SRV records explained"

doctor untrusted.test --json
expect_rc "untrusted.test --json" 1
python3 -c '
import json, sys
doc = json.load(sys.stdin)
assert doc["domain"] == "untrusted.test", doc["domain"]
assert doc["ok"] is False
fails = [c for c in doc["checks"] if c["status"] == "FAIL"]
assert any(c["check"] == "chain" and "not trusted" in c["found"] for c in fails), fails
assert doc["summary"]["fail"] == len(fails)
assert all(set(c) == {"check", "status", "target", "found", "fix"} for c in doc["checks"])
' <<<"$DOC_OUT" || {
    show
    it_fail "doctor --json: the document does not parse or lacks the failing chain check"
}
doctor good.test --json
expect_rc "good.test --json" 0
python3 -c '
import json, sys
doc = json.load(sys.stdin)
assert doc["ok"] is True and doc["summary"]["fail"] == 0
assert {c["check"] for c in doc["checks"]} >= {"srv", "srv_port", "strict_naming", "address",
                                                 "tcp", "tls", "chain", "san", "expiry", "eku"}
' <<<"$DOC_OUT" || {
    show
    it_fail "doctor good.test --json: unexpected document"
}
it_log "--json: parses and carries the failing check"

# usage errors
DOC_RC=0
timeout -k 2 20 "$CONFNODE" doctor >/dev/null 2>&1 || DOC_RC=$?
[[ "$DOC_RC" == 2 ]] || it_fail "doctor without DOMAIN: exit $DOC_RC, expected 2"
DOC_RC=0
timeout -k 2 20 "$CONFNODE" doctor good.test --timeout nope >/dev/null 2>&1 || DOC_RC=$?
[[ "$DOC_RC" == 2 ]] || it_fail "doctor --timeout nope: exit $DOC_RC, expected 2"
DOC_RC=0
timeout -k 2 20 "$CONFNODE" doctor good.test --ca "$IT_TMP/missing.pem" >/dev/null 2>&1 ||
    DOC_RC=$?
[[ "$DOC_RC" == 2 ]] || it_fail "doctor --ca missing.pem: exit $DOC_RC, expected 2"
it_log "usage errors exit 2"
