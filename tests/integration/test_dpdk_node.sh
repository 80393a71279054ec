#!/bin/bash
# The node on the DPDK backend, in network namespaces, with real peers.
#
#   [peer ns] vp 198.18.77.2  <-- veth -->  vn [node ns]: net_af_packet on vn (data port),
#                                            net_tap "cn0" 198.18.77.1 (exception path)
#
# No hugepages (--no-huge), no NIC. Checks: ARP for the node's address is answered
# (by the kernel, through the exception path) with the data port's MAC; SIP calls over
# UDP (fast path, steered by source hash) and over TLS (TCP through the kernel, stunnel
# in front of sipp) to a VMR complete; RTP flows both ways on the calls (sipp echoes
# what the node's mixer sends) through the media fast path; /metrics counts packets on
# the DPDK data port and on the exception port separately; SIGTERM stops the node cleanly.
#
# The media fast path (dpk_pktio.h, dp_media's own hooks): two baresip clients in the
# peer namespace call a room that requires SDES-SRTP (SIP over UDP, PCMU, a WAV tone
# each: 400 Hz and 1100 Hz). Their SRTP goes in and out through the DPDK data port:
# the port's own counters and the workers' media_fast/media_tx rise by at least the
# calls' packets, the node counts RTP both ways with no SRTP failure, and each client
# hears the other's tone and not its own (the peer's kernel verifies our UDP checksums).
# Test traffic stays in the two namespaces; the root namespace gets a blackhole route
# for 198.18.77.0/24 (RFC 2544 benchmarking range) while the test runs.
#
#   tests/integration/test_dpdk_node.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
it_require ip sipp stunnel4 baresip python3
[[ -e /usr/lib/baresip/modules/srtp.so && -e /usr/lib/baresip/modules/aufile.so ]] ||
    it_fail "baresip's srtp or aufile module is missing (/usr/lib/baresip/modules)"

NS_NODE=cnd-n-$$
NS_PEER=cnd-p-$$
VETH_NODE=cnd$$n
VETH_PEER=cnd$$p
NODE_IP=198.18.77.1
PEER_IP=198.18.77.2
SUBNET=198.18.77.0/24
ADDED_BLACKHOLE=0

dpdk_cleanup() {
    ip netns del "$NS_NODE" 2>/dev/null || true
    ip netns del "$NS_PEER" 2>/dev/null || true
    ip link del "$VETH_NODE" 2>/dev/null || true
    if [[ $ADDED_BLACKHOLE == 1 ]]; then
        ip route del blackhole "$SUBNET" 2>/dev/null || true
    fi
}
# run our cleanup, then the library's (processes, temp dir, verdict)
trap 'rc=$?; for p in "${IT_PIDS[@]}"; do it_kill "$p" 3; done; IT_PIDS=(); dpdk_cleanup; \
      (exit $rc); it_cleanup' EXIT

"$CONFNODE" version >/dev/null || it_fail "confnode does not run"
if ! grep -q 'CONFNODE_DPDK:BOOL=ON' "$IT_BUILD/CMakeCache.txt" 2>/dev/null ||
    ! grep -q '^DPDK_FOUND:INTERNAL=1' "$IT_BUILD/CMakeCache.txt"; then
    it_fail "this build has no DPDK backend (install libdpdk-dev: deploy/bootstrap.sh, then" \
        "reconfigure with -DCONFNODE_DPDK=ON)"
fi

# --- namespaces: a refusal here is the one reason this test cannot run
if ! ip netns add "$NS_NODE" 2>"$IT_TMP/netns.err"; then
    it_fail "the kernel refuses network namespaces here ($(cat "$IT_TMP/netns.err"));" \
        "this test needs root and CONFIG_NET_NS"
fi
ip netns add "$NS_PEER"
ip link add "$VETH_NODE" type veth peer name "$VETH_PEER"
ip link set "$VETH_NODE" netns "$NS_NODE"
ip link set "$VETH_PEER" netns "$NS_PEER"
ip -n "$NS_NODE" link set lo up
ip -n "$NS_NODE" link set "$VETH_NODE" up
ip -n "$NS_PEER" link set lo up
ip -n "$NS_PEER" addr add "$PEER_IP/24" dev "$VETH_PEER"
ip -n "$NS_PEER" link set "$VETH_PEER" up
if ! ip route show table all type blackhole | grep -q "^blackhole $SUBNET"; then
    ip route add blackhole "$SUBNET" && ADDED_BLACKHOLE=1
fi

in_node() { ip netns exec "$NS_NODE" "$@"; }
in_peer() { ip netns exec "$NS_PEER" "$@"; }

# --- the node
pki=$IT_TMP/pki
it_make_certs "$pki"
ADMIN_PORT=8088
cat >"$IT_TMP/node.conf" <<EOF
node: { name = "it-dpdk"; workers = 2; log_level = "info"; };
dataplane = "dpdk";
dpdk: {
    device = "net_af_packet0,iface=$VETH_NODE";
    hugepages = "off";
    memory_mb = 256;
    mbufs = 4095;
    kernel_iface = "cnk$$";
    file_prefix = "it-dpdk-$$";
};
sip: { listen = "$NODE_IP"; udp_port = 5060; tcp_port = 5060; tls_port = 5061;
       domain = "example.test"; };
tls: { certificate = "$pki/node.crt"; key = "$pki/node.key"; ca = "$pki/ca.crt";
       verify_client = "request"; };
media: { address = "$NODE_IP"; port_min = 40000; port_max = 41999; };
admin: { listen = "127.0.0.1"; port = $ADMIN_PORT; };
vmrs = ( { alias = "meet@example.test"; name = "Demo"; },
         { alias = "secure@example.test"; name = "Secure"; srtp = "required"; } );
EOF
"$CONFNODE" check-config -c "$IT_TMP/node.conf" >/dev/null || it_fail "config refused"

IT_NODE_LOG=$IT_TMP/node.log
ip netns exec "$NS_NODE" "$CONFNODE" run -c "$IT_TMP/node.conf" >"$IT_NODE_LOG" 2>&1 &
IT_NODE_PID=$!
IT_PIDS+=("$IT_NODE_PID")
up=0
for ((i = 0; i < 150; i++)); do
    it_pid_alive "$IT_NODE_PID" || it_fail "confnode exited during start-up"
    if in_node curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$ADMIN_PORT/status" 2>/dev/null; then
        up=1
        break
    fi
    sleep 0.2
done
[[ $up == 1 ]] || it_fail "the node did not answer /status within 30 s"
grep -q 'event=dpdk_ports' "$IT_NODE_LOG" || it_fail "no dpdk_ports line in the log"
(($(grep -c 'media=fast-path' "$IT_NODE_LOG") == 2)) ||
    it_fail "the workers did not take the media fast path: $(grep 'dpdk_worker' "$IT_NODE_LOG")"
it_log "node up on DPDK: $(grep -o 'data=[^ ]* rxq=[0-9]* txq=[0-9]* exception=[^ ]*' \
    "$IT_NODE_LOG" | head -1)"

metric() { # metric NAME [LABEL-FILTER]: the sum of the series in /metrics
    in_node curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" |
        awk -v n="$1" -v f="${2:-}" '$1 ~ "^"n"({|$)" && index($1, f) { s += $2 } END { print s + 0 }'
}
status_sum() {
    in_node curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/status" |
        jq -e --arg k "$1" '[.workers[] | .[$k]] | add'
}

# --- ARP: the kernel answers through the exception path, with the data port's MAC
node_mac=$(in_node cat "/sys/class/net/$VETH_NODE/address")
kmac=$(in_node cat "/sys/class/net/cnk$$/address")
[[ "$kmac" == "$node_mac" ]] ||
    it_fail "the kernel interface has MAC $kmac, the data port $node_mac: ARP answers would be wrong"
in_peer ip neigh flush dev "$VETH_PEER" 2>/dev/null || true
# a datagram to a closed port makes the peer's kernel resolve the node's address
in_peer bash -c "echo probe > /dev/udp/$NODE_IP/9" 2>/dev/null || true
got=
for ((i = 0; i < 30; i++)); do
    got=$(in_peer ip neigh show "$NODE_IP" dev "$VETH_PEER" | awk '/lladdr/ { print $3 }')
    [[ -n "$got" ]] && break
    sleep 0.1
done
[[ "$got" == "$node_mac" ]] ||
    it_fail "ARP for $NODE_IP: got '${got:-nothing}', expected the data port's MAC $node_mac"
it_log "ARP: $NODE_IP is at $got (answered by the kernel through the exception path)"

# --- SIP over UDP, RTP echoed by sipp
sipp_run() { # sipp_run NAME TARGET TRANSPORT CALLS
    local name=$1 target=$2 tr=$3 calls=$4
    in_peer timeout -k 5 60 sipp -sn uac -s meet "$target" -t "$tr" -i "$PEER_IP" \
        -p $((21000 + RANDOM % 1000)) -mi "$PEER_IP" -mp $((23000 + RANDOM % 1000 * 2)) \
        -rtp_echo -m "$calls" -r 5 -l 5 -d 1500 -nostdin -timeout 30s -timeout_error \
        -trace_stat -stf "$IT_TMP/$name.csv" -trace_err -error_file "$IT_TMP/$name.errors" \
        >"$IT_TMP/$name.out" 2>&1
}
sipp_ok() { # sipp_ok NAME CALLS
    local ok
    ok=$(awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
                    { ok = $(c["SuccessfulCall(C)"]); bad = $(c["FailedCall(C)"]) }
                    END { print ok + 0 "/" bad + 0 }' "$IT_TMP/$1.csv" 2>/dev/null)
    [[ "$ok" == "$2/0" ]] || {
        tail -n 20 "$IT_TMP/$1.out" >&2
        head -n 20 "$IT_TMP/$1.errors" >&2 2>/dev/null
        it_fail "sipp $1: expected $2 successful and 0 failed calls, got $ok"
    }
}
sip_before=$(metric confnode_dpdk_sip_udp_total)
fast_before=$(metric confnode_dpdk_media_fast_total)
sipp_run udp "$NODE_IP:5060" u1 4 || true
sipp_ok udp 4
sip_after=$(metric confnode_dpdk_sip_udp_total)
((sip_after - sip_before >= 12)) ||
    it_fail "SIP over UDP did not come through the fast path ($sip_before -> $sip_after datagrams)"
it_log "SIP over UDP: 4 calls, $((sip_after - sip_before)) datagrams on the fast path"

rtp_in=$(status_sum media_rtp_in)
rtp_out=$(status_sum media_rtp_out)
((rtp_in > 0 && rtp_out > 0)) ||
    it_fail "media did not flow both ways (rtp in $rtp_in, out $rtp_out)"
fast_after=$(metric confnode_dpdk_media_fast_total)
((fast_after - fast_before >= rtp_in)) ||
    it_fail "RTP of the sipp calls did not come through the fast path" \
        "(media_fast $fast_before -> $fast_after, rtp in $rtp_in)"
it_log "RTP both ways on the calls: in $rtp_in, out $rtp_out (fast path)"

# --- SRTP through the media fast path: two baresip clients call a room requiring SRTP
# (SIP over UDP, SDES a=crypto, PCMU), each sending a tone of its own
python3 - "$IT_TMP" <<'EOF'
import math, struct, sys, wave
for name, freq in (("a.wav", 400), ("b.wav", 1100)):
    w = wave.open(sys.argv[1] + "/" + name, "wb")
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(8000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / 8000)))
                           for i in range(8000 * 30)))
    w.close()
EOF
CALL_SECONDS=6
start_baresip() { # start_baresip NAME SIP_PORT RTP_MIN: dials the room, hangs up by itself
    local name=$1 dir=$IT_TMP/$1 pid
    mkdir -p "$dir"
    sed -e "s|127.0.0.1:@SIP_PORT@|$PEER_IP:$2|" -e "s|@CA@|$pki/ca.crt|" \
        -e "s|@RTP_MIN@|$3|" -e "s|@RTP_MAX@|$(($3 + 19))|" -e "s|@WAV@|$IT_TMP/$name.wav|" \
        -e "s|@DIR@|$dir|" "$IT_DIR/baresip/config.in" >"$dir/config"
    printf '<sip:%s@%s;transport=udp>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU\n' \
        "$name" "$PEER_IP" >"$dir/accounts"
    (
        cd "$dir"
        exec ip netns exec "$NS_PEER" timeout -k 5 $((CALL_SECONDS + 20)) baresip -f "$dir" \
            -e "/dial sip:secure@$NODE_IP:5060;transport=udp" -t "$CALL_SECONDS" \
            >"$dir/out.log" 2>&1
    ) &
    pid=$!
    IT_PIDS+=("$pid")
    printf '%s\n' "$pid" >"$dir/pid"
}
b_rtp_in=$(status_sum media_rtp_in)
b_rtp_out=$(status_sum media_rtp_out)
b_auth=$(status_sum media_srtp_auth_failures)
b_replays=$(status_sum media_srtp_replays)
b_other=$(status_sum media_srtp_other_failures)
b_fast=$(metric confnode_dpdk_media_fast_total)
b_tx=$(metric confnode_dpdk_media_tx_total)
b_prx=$(metric confnode_dpdk_port_packets_total 'port="data",direction="rx"')
b_ptx=$(metric confnode_dpdk_port_packets_total 'port="data",direction="tx"')
start_baresip a 5080 24000
start_baresip b 5082 24100
for name in a b; do
    it_wait_exit "$(cat "$IT_TMP/$name/pid")" $((CALL_SECONDS + 25)) ||
        it_fail "baresip $name did not finish"
    grep -q 'Call established' "$IT_TMP/$name/out.log" ||
        it_fail "baresip $name: no 'Call established': $(tail -n 5 "$IT_TMP/$name/out.log")"
done
legs=
for ((i = 0; i < 50; i++)); do
    legs=$(status_sum media_legs)
    [[ "$legs" == 0 ]] && break
    sleep 0.2
done
[[ "$legs" == 0 ]] || it_fail "media sessions left open after the SRTP calls: $legs"
rx=$(($(status_sum media_rtp_in) - b_rtp_in))
tx=$(($(status_sum media_rtp_out) - b_rtp_out))
min=$((2 * (CALL_SECONDS - 2) * 50)) # 50 packets a second each way, less set-up time
((rx >= min && tx >= min)) ||
    it_fail "SRTP calls: too few packets (rtp in $rx, out $tx, expected >= $min each way)"
auth=$(($(status_sum media_srtp_auth_failures) - b_auth))
replays=$(($(status_sum media_srtp_replays) - b_replays))
((auth == 0 && replays == 0)) ||
    it_fail "SRTP calls: $auth authentication failures and $replays replays"
# (media_srtp_other_failures is not checked: baresip makes it rise by one per call on the
# sockets backend too)
other=$(($(status_sum media_srtp_other_failures) - b_other))
fast=$(($(metric confnode_dpdk_media_fast_total) - b_fast))
mtx=$(($(metric confnode_dpdk_media_tx_total) - b_tx))
prx=$(($(metric confnode_dpdk_port_packets_total 'port="data",direction="rx"') - b_prx))
ptx=$(($(metric confnode_dpdk_port_packets_total 'port="data",direction="tx"') - b_ptx))
((fast >= rx && mtx >= tx)) ||
    it_fail "SRTP did not go through the media fast path (media_fast +$fast for $rx in," \
        "media_tx +$mtx for $tx out)"
((prx >= rx && ptx >= tx)) ||
    it_fail "the data port did not carry the SRTP (rx +$prx for $rx in, tx +$ptx for $tx out)"
it_log "SRTP calls through the fast path: rtp in $rx, out $tx, 0 SRTP authentication" \
    "failures or replays ($other other);" \
    "media_fast +$fast, media_tx +$mtx; data port rx +$prx, tx +$ptx"
hear() { # hear NAME FREQ: the share of FREQ in what NAME decoded
    local dec=("$IT_TMP/$1"/dump-*-dec.wav)
    [[ -e "${dec[0]}" ]] || it_fail "baresip $1 dumped no decoded audio (sndfile)"
    python3 "$IT_DIR/baresip/goertzel.py" "${dec[0]}" 1.5 "$2" | awk '{print $2}'
}
check() { # check NAME FREQ present|absent
    local s
    s=$(hear "$1" "$2")
    if [[ $3 == present ]]; then
        awk -v s="$s" 'BEGIN { exit !(s > 0.1) }' || it_fail "baresip $1 does not hear $2 Hz ($s)"
    else
        awk -v s="$s" 'BEGIN { exit !(s < 0.02) }' || it_fail "baresip $1 hears $2 Hz ($s)"
    fi
    it_log "baresip $1 hears $2 Hz: $s ($3)"
}
check a 1100 present
check a 400 absent
check b 400 present
check b 1100 absent

# --- SIP over TLS: TCP reaches the kernel through the exception path
cat >"$IT_TMP/stunnel.conf" <<EOF
foreground = yes
pid =
debug = notice
[sip]
client = yes
accept = 127.0.0.1:15061
connect = $NODE_IP:5061
sni = sip.example.test
verifyChain = yes
CAfile = $pki/ca.crt
checkHost = sip.example.test
cert = $pki/client.crt
key = $pki/client.key
EOF
ip netns exec "$NS_PEER" stunnel4 "$IT_TMP/stunnel.conf" >"$IT_TMP/stunnel.log" 2>&1 &
IT_PIDS+=($!)
for ((i = 0; i < 50; i++)); do
    in_peer ss -Htln "sport = :15061" | grep -q . && break
    sleep 0.1
done
exc_before=$(metric confnode_dpdk_tx_exception_total)
in_peer timeout -k 5 60 sipp -sn uac -s meet 127.0.0.1:15061 -t t1 -i 127.0.0.1 \
    -p 21999 -m 2 -r 2 -l 2 -d 500 -nostdin -timeout 30s -timeout_error -trace_stat \
    -stf "$IT_TMP/tls.csv" -trace_err -error_file "$IT_TMP/tls.errors" \
    >"$IT_TMP/tls.out" 2>&1 || true
sipp_ok tls 2
(($(status_sum tls_handshakes) >= 1)) || it_fail "no TLS handshake counted"
exc_after=$(metric confnode_dpdk_tx_exception_total)
((exc_after > exc_before)) || it_fail "TLS calls did not go through the exception path"
it_log "SIP over TLS: 2 calls through the exception path ($((exc_after - exc_before)) frames" \
    "to the kernel)"

# --- /metrics: the data port and the exception port are counted apart
for series in 'port="data",direction="rx"' 'port="data",direction="tx"' \
    'port="exception",direction="rx"' 'port="exception",direction="tx"'; do
    v=$(metric confnode_dpdk_port_packets_total "$series")
    ((v > 0)) || it_fail "/metrics: confnode_dpdk_port_packets_total{$series} is $v"
    it_log "confnode_dpdk_port_packets_total{$series} $v"
done

# --- stop
kill -TERM "$IT_NODE_PID"
it_wait_exit "$IT_NODE_PID" 15 || it_fail "the node did not stop within 15 s of SIGTERM"
[[ "$IT_WAIT_RC" == 0 ]] || it_fail "the node exited with status $IT_WAIT_RC"
it_check_node_log
in_node ip link show "cnk$$" >/dev/null 2>&1 && it_fail "the kernel interface outlived the node"
it_log "stopped cleanly; the kernel interface is gone"
