#!/bin/bash
# The node on the DPDK backend, in network namespaces, with real peers.
#
#   [peer ns] vp 198.18.77.2  <-- veth -->  vn [node ns]: net_af_packet on vn (data port),
#                                            net_tap "cn0" 198.18.77.1 (exception path)
#
# No hugepages (--no-huge), no NIC. Checks: ARP for the node's address is answered
# (by the kernel, through the exception path) with the data port's MAC; SIP calls over
# UDP (fast path, steered by source hash) and over TLS (TCP through the kernel, stunnel
# in front of sipp) to a VMR complete; RTP flows both ways on the call (sipp echoes
# what the node's mixer sends); /metrics counts packets on the DPDK data port and on the
# exception port separately; SIGTERM stops the node cleanly.
#
# The media fast path (dpk_pktio.h) is driven by a test double of dp_media's two hooks,
# preloaded into the node: it opens echo ports through the DPDK packet I/O and sends
# every datagram back where it came from. A UDP peer checks the echoes (payload, port,
# and the UDP checksum its kernel verifies), which covers steering to the owner worker,
# the port table, header building and TX on the data port. Test traffic stays in the
# two namespaces; the root namespace gets a blackhole route for 198.18.77.0/24 (RFC 2544
# benchmarking range) while the test runs.
#
#   tests/integration/test_dpdk_node.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
it_require ip sipp stunnel4

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
vmrs = ( { alias = "meet@example.test"; name = "Demo"; } );
EOF
"$CONFNODE" check-config -c "$IT_TMP/node.conf" >/dev/null || it_fail "config refused"

# --- the dp_media test double (echo ports 41000..41099, in each worker's partition)
cat >"$IT_TMP/media_echo.c" <<'EOF'
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include "dpk_pktio.h"
static __thread const struct dpk_pktio *io;
int dp_media_set_pktio(struct dp_media *m, const struct dpk_pktio *p)
{
    (void)m;
    io = p;
    for (uint16_t port = 41000; port < 41100; port++)
        p->open(p->io, "", port, port, 0xb8); /* -EXDEV outside this worker's partition */
    return 0;
}
void dp_media_input(struct dp_media *m, uint32_t value, uint8_t *buf, size_t len,
                    const struct sockaddr_storage *from, socklen_t fromlen, uint64_t now_ms)
{
    (void)m;
    (void)now_ms;
    size_t cap;
    uint8_t *o = io->tx_slot(io->io, &cap);
    if (!o || cap < len)
        return;
    memcpy(o, buf, len);
    io->tx_commit(io->io, (uint16_t)value, from, fromlen, len);
    io->tx_flush(io->io);
}
EOF
cc -shared -fPIC -O2 -Wall -Werror -I"$IT_ROOT/dataplane/dpdk" -o "$IT_TMP/media_echo.so" \
    "$IT_TMP/media_echo.c" || it_fail "could not build the dp_media test double"

IT_NODE_LOG=$IT_TMP/node.log
ip netns exec "$NS_NODE" env LD_PRELOAD="$IT_TMP/media_echo.so" \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    "$CONFNODE" run -c "$IT_TMP/node.conf" >"$IT_NODE_LOG" 2>&1 &
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
it_log "RTP both ways on the calls: in $rtp_in, out $rtp_out"

# --- the media fast path: datagrams to echo ports, each worker's, and back
grep -q 'media=fast-path' "$IT_NODE_LOG" || it_fail "the workers did not take the media fast path"
fast_before=$(metric confnode_dpdk_media_fast_total)
tx_before=$(metric confnode_dpdk_media_tx_total)
in_peer timeout 20 python3 - "$NODE_IP" <<'EOF' || it_fail "media echo through the fast path failed"
import socket, sys
node = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
s.settimeout(2.0)
ok = 0
for port in (41000, 41002, 41004, 41006, 41001, 41003):  # both workers' port pairs
    for i in range(50):
        data = bytes([0x80, 0, i, port & 0xff]) + bytes((i * 7 + k) & 0xff for k in range(160))
        s.sendto(data, (node, port))
        got, frm = s.recvfrom(2048)
        if got != data or frm != (node, port):
            sys.exit(f"port {port}: echo differs: {len(got)} bytes from {frm}")
        ok += 1
print(f"{ok} datagrams echoed")
EOF
fast_after=$(metric confnode_dpdk_media_fast_total)
tx_after=$(metric confnode_dpdk_media_tx_total)
((fast_after - fast_before >= 300 && tx_after - tx_before >= 300)) ||
    it_fail "echoes did not use the fast path (in $fast_before -> $fast_after," \
        "out $tx_before -> $tx_after)"
for w in 0 1; do
    v=$(metric confnode_dpdk_media_fast_total "worker=\"$w\"")
    ((v > 0)) || it_fail "worker $w handled no media: steering by port partition is off"
done
it_log "media fast path: 300 datagrams echoed by their owner workers" \
    "(in $((fast_after - fast_before)), out $((tx_after - tx_before)))"

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
