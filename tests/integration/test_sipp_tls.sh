#!/bin/bash
# SIP over TLS with certificate verification on both sides.
#
# Debian's sipp has no TLS, so sipp talks TCP to a local stunnel client that opens TLS
# to the node, verifies the node's chain against the test CA and its name
# (sip.example.test), and presents a client certificate. 200 calls must succeed.
# The same tunnel trusting a different CA must fail to carry any call, which shows
# that verification is really on. openssl s_client checks TLS 1.2 and 1.3
# handshakes, the chain, and session resumption.
#
#   tests/integration/test_sipp_tls.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
it_require sipp stunnel4

calls=200
pki=$IT_TMP/pki
other=$IT_TMP/other-pki
it_alloc_node_ports
it_write_config "$IT_TMP/node.conf"
it_make_certs "$other"
it_start_node "$IT_TMP/node.conf"

# start_stunnel NAME CAFILE: a TLS client tunnel 127.0.0.1:STUNNEL_PORT -> node TLS port
start_stunnel() {
    local name=$1 cafile=$2 i pid
    it_free_port
    STUNNEL_PORT=$IT_PORT
    cat >"$IT_TMP/$name.conf" <<EOF
foreground = yes
pid =
debug = notice
[sip]
client = yes
accept = 127.0.0.1:$STUNNEL_PORT
connect = 127.0.0.1:$TLS_PORT
sni = sip.example.test
verifyChain = yes
CAfile = $cafile
checkHost = sip.example.test
cert = $pki/client.crt
key = $pki/client.key
EOF
    stunnel4 "$IT_TMP/$name.conf" >"$IT_TMP/$name.log" 2>&1 &
    pid=$!
    IT_PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
        if ss -Htln "sport = :$STUNNEL_PORT" | grep -q .; then
            return 0
        fi
        it_pid_alive "$pid" || it_fail "stunnel $name exited: $(tail -n 5 "$IT_TMP/$name.log")"
        sleep 0.1
    done
    it_fail "stunnel $name did not listen on $STUNNEL_PORT within 10 s"
}

# s_client ARGS...: openssl s_client against the node's TLS port, bounded in time.
# Input: a second of silence, so session tickets (TLS 1.3) arrive before we leave.
s_client() {
    sleep 1 | timeout 15 openssl s_client -connect "127.0.0.1:$TLS_PORT" \
        -servername sip.example.test -verify_hostname sip.example.test \
        -verify_return_error -cert "$pki/client.crt" -key "$pki/client.key" "$@" 2>&1
}

# --- handshakes, chain and resumption with openssl
for version in tls1_2 tls1_3; do
    out=$(s_client "-$version" -CAfile "$pki/ca.crt" -sess_out "$IT_TMP/$version.sess") ||
        it_fail "openssl s_client -$version: handshake or verification failed:
$(tail -n 15 <<<"$out")"
    grep -q 'Verify return code: 0 (ok)' <<<"$out" ||
        it_fail "openssl s_client -$version: the node's chain did not verify"
    proto=${version/tls1_/TLSv1.}
    grep -qE "^New, $proto, Cipher" <<<"$out" ||
        it_fail "openssl s_client -$version: did not negotiate $proto" \
            "($(grep -m1 -E '^(New|Reused),' <<<"$out"))"
    [[ -s "$IT_TMP/$version.sess" ]] || it_fail "openssl s_client -$version: no session saved"

    out=$(s_client "-$version" -CAfile "$pki/ca.crt" -sess_in "$IT_TMP/$version.sess") ||
        it_fail "openssl s_client -$version -sess_in: handshake failed"
    grep -q '^Reused' <<<"$out" ||
        it_fail "openssl s_client -$version: session not resumed ($(grep -m1 -E '^(New|Reused)' <<<"$out"))"
    it_log "$version: handshake, chain and session resumption ok"
done

if s_client -tls1_3 -CAfile "$other/ca.crt" >"$IT_TMP/s_client-other.log"; then
    it_fail "openssl s_client trusting a different CA verified the node's certificate"
fi

# --- 200 calls through a verifying stunnel
start_stunnel tunnel "$pki/ca.crt"
it_sipp_start tls "127.0.0.1:$STUNNEL_PORT" t1 "$calls" 50
it_sipp_wait tls
it_sipp_expect_all tls "$calls"

handshakes=$(it_status_sum tls_handshakes)
((handshakes >= 1)) || it_fail "/status counts no TLS handshake after calls over TLS"

# --- a tunnel that trusts another CA must not carry a single call
start_stunnel wrongca "$other/ca.crt"
it_sipp_start wrongca "127.0.0.1:$STUNNEL_PORT" t1 5 5 -timeout 15s
it_sipp_wait wrongca
if [[ "$SIPP_OK" != 0 || "$SIPP_RC" == 0 ]]; then
    it_sipp_show wrongca
    it_fail "calls went through a tunnel that trusts another CA" \
        "(sipp exit $SIPP_RC, $SIPP_OK successful)"
fi
grep -qiE 'certificate verify failed|verification error|CERT: ' "$IT_TMP/wrongca.log" ||
    it_fail "stunnel (wrong CA) did not report a verification failure:
$(tail -n 10 "$IT_TMP/wrongca.log")"

it_assert_node_alive
it_stop_node 10
