#!/bin/bash
# Interop with a real SIP client doing SRTP: two baresip instances (Debian package
# baresip, headless) call the VMR over TLS with SDES-SRTP (the room requires it),
# each sending a WAV tone of its own through the aufile module (400 Hz and 1100 Hz,
# 8 kHz, PCMU). baresip's sndfile module dumps what each one decodes: A must hear
# 1100 Hz and not 400 Hz, B the reverse. The node counts RTP both ways and no SRTP
# failure; when the clients hang up, every media session is closed.
#
#   tests/integration/test_media_baresip.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
it_require baresip python3
[[ -e /usr/lib/baresip/modules/srtp.so && -e /usr/lib/baresip/modules/aufile.so ]] ||
    it_fail "baresip's srtp or aufile module is missing (/usr/lib/baresip/modules)"

it_alloc_node_ports
it_make_certs "$IT_TMP/pki"
pki=$IT_TMP/pki
cat >"$IT_TMP/node.conf" <<EOF
node: { name = "it-$IT_NAME"; workers = 2; log_level = "info"; };
sip: { listen = "127.0.0.1"; udp_port = $SIP_PORT; tcp_port = $SIP_PORT; tls_port = $TLS_PORT; };
tls: { certificate = "$pki/node.crt"; key = "$pki/node.key"; ca = "$pki/ca.crt";
       verify_client = "none"; };
media: { address = "127.0.0.1"; port_min = $MEDIA_MIN; port_max = $MEDIA_MAX;
         srtp = "required"; media_timeout = 20; };
admin: { listen = "127.0.0.1"; port = $ADMIN_PORT; };
vmrs = ( { alias = "meet@example.test"; name = "Interop"; } );
EOF
it_start_node "$IT_TMP/node.conf"

# 30 s tones, 16-bit mono at 8 kHz (aufile wants the codec's rate)
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

# start_baresip NAME: a config dir from tests/integration/baresip/*.in, then dials
# the room over TLS and hangs up by itself after CALL_SECONDS.
CALL_SECONDS=8
start_baresip() {
    local name=$1 dir=$IT_TMP/$1 sip rtp pid
    mkdir -p "$dir"
    it_free_port
    sip=$IT_PORT
    it_free_ports 22000 29000 20 20
    rtp=$IT_PORT
    sed -e "s|@SIP_PORT@|$sip|" -e "s|@CA@|$pki/ca.crt|" -e "s|@RTP_MIN@|$rtp|" \
        -e "s|@RTP_MAX@|$((rtp + 19))|" -e "s|@WAV@|$IT_TMP/$name.wav|" -e "s|@DIR@|$dir|" \
        "$IT_DIR/baresip/config.in" >"$dir/config"
    sed -e "s|@USER@|$name|" "$IT_DIR/baresip/accounts.in" >"$dir/accounts"
    (
        cd "$dir"
        exec timeout -k 5 $((CALL_SECONDS + 20)) baresip -f "$dir" \
            -e "/dial sip:meet@127.0.0.1:$TLS_PORT;transport=tls" -t "$CALL_SECONDS" \
            >"$dir/out.log" 2>&1
    ) &
    pid=$!
    IT_PIDS+=("$pid")
    printf '%s\n' "$pid" >"$dir/pid"
}

start_baresip a
start_baresip b

# both calls up, media both ways through SRTP
ok=0
for ((i = 0; i < 50; i++)); do
    legs=$(it_status_sum media_legs)
    rx=$(it_status_sum media_rtp_in)
    tx=$(it_status_sum media_rtp_out)
    if [[ "$legs" == 2 ]] && ((rx >= 300 && tx >= 300)); then
        ok=1
        break
    fi
    sleep 0.2
done
[[ $ok == 1 ]] || it_fail "media did not flow both ways: legs=$legs rtp_in=$rx rtp_out=$tx" \
    "$(tail -n 5 "$IT_TMP/a/out.log")"
it_log "two baresip calls: legs=$legs rtp_in=$rx rtp_out=$tx"
for name in a b; do
    grep -q 'Call established' "$IT_TMP/$name/out.log" ||
        it_fail "baresip $name: no 'Call established': $(tail -n 5 "$IT_TMP/$name/out.log")"
done

# they hang up after CALL_SECONDS
for name in a b; do
    it_wait_exit "$(cat "$IT_TMP/$name/pid")" $((CALL_SECONDS + 20)) ||
        it_fail "baresip $name did not finish"
done
it_wait_status_sum media_legs 0 10
it_wait_status_sum calls 0 10
fail=$(it_status_sum media_srtp_auth_failures)
[[ "$fail" == 0 ]] || it_fail "$fail SRTP authentication failures with baresip"
rx=$(it_status_sum media_rtp_in)
tx=$(it_status_sum media_rtp_out)
((rx >= 2 * (CALL_SECONDS - 2) * 50 && tx >= 2 * (CALL_SECONDS - 2) * 50)) ||
    it_fail "too few packets for two ${CALL_SECONDS}-second calls: rtp_in=$rx rtp_out=$tx"

# what each one decoded holds the other's tone and not its own
hear() { # hear NAME FREQ: the share of FREQ in what NAME decoded
    local dec
    dec=$(ls "$IT_TMP/$1"/dump-*-dec.wav 2>/dev/null | head -n 1)
    [[ -n "$dec" ]] || it_fail "baresip $1 dumped no decoded audio (sndfile)"
    python3 "$IT_DIR/baresip/goertzel.py" "$dec" 1.5 "$2" | awk '{print $2}'
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

it_assert_node_alive
it_stop_node 10
