#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# media_relay.sh: SRTP relay throughput per core, confnode next to rtpengine's userspace
# relay and the raw libsrtp2 loop.
#
# Both relays get the same stream: SRTP (AES_CM_128_HMAC_SHA1_80, SDES keys on both
# sides) from a sender A, unprotected with A's key and protected again with the relay's
# own key towards a receiver B, which checks every packet it gets. The generator
# (build/bin/srtp_relay_bench gen) sends at a fixed packet rate in steps, and reads the
# relay's CPU time from /proc/PID/stat over each step; packets per relay CPU-second is
# the figure. The raw loop (srtp_relay_bench raw) is the same unprotect + protect in
# memory on one core.
#
#   confnode:  two SIP calls (UDP) to a room with audio and VP8 video, RTP/SAVP with
#              a=crypto; A's loud audio makes A the active speaker, so A's video is
#              switched to B (SSRC/sequence/timestamp rewritten, SRTP re-protected).
#   rtpengine: Debian's rtpengine-daemon, userspace only (--table=-1), one offer and
#              one answer over its ng control protocol (bencode over UDP), RTP/SAVP with
#              a=crypto on both sides.
# Loopback only, bounded, everything stopped on exit. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

usage() {
    cat <<'EOF'
Usage: bench/media_relay.sh [options]

  --node PATH          confnode binary (default build/bin/confnode; env CONFNODE_BIN)
  --helper PATH        srtp_relay_bench (default: next to --node)
  --relays LIST        from confnode rtpengine rtpengine-passthrough (default
                       "confnode rtpengine rtpengine-passthrough"; the last is rtpengine
                       forwarding A's SRTP unchanged, B taking A's own key: no SRTP work)
  --rates LIST         packet rates of the steps (default "5000 10000 20000 40000 80000 160000");
                       a relay's ramp stops at its first failing step
  --seconds N          length of each step (default 5)
  --payload N          RTP payload bytes (default 160: 172-byte RTP, as srtp_bench)
  --max-loss PCT       a step fails above this loss (default 1)
  --nice N             nice value of relays and generator (default -20; 0 = unchanged)
  --suite-b NAME       suite of the relay's leg towards B (default AES_CM_128_HMAC_SHA1_32;
                       A's is AES_CM_128_HMAC_SHA1_80): a suite A did not offer, so that
                       rtpengine cannot pass A's packets through untouched
  --port-base N        confnode SIP N (admin N+9), media N+100..N+199; rtpengine ng N+10,
                       media N+200..N+299; generator ports N+300..N+309 (default 6200)
  --summary FILE       append key=value results to FILE (for side_by_side.sh)
  --no-profile         no perf profile of confnode at its best step
  --quick              2 s steps, rates "5000 20000"
  --results-dir DIR    where the results file goes (default bench/results)
  --no-save            write no results file
  --keep-tmp           keep the temp dir
  -h, --help           this text

Exit status: 0 when every relay asked for was measured, 1 otherwise (the report says
why), 2 on a usage error.
EOF
}

node_bin=${CONFNODE_BIN:-$repo/build/bin/confnode}
helper=""
relays="confnode rtpengine rtpengine-passthrough"
rates="5000 10000 20000 40000 80000 160000"
seconds=5
payload=160
max_loss=1
nice_n=-20
suite_b=AES_CM_128_HMAC_SHA1_32
port_base=6200
summary_out=""
profile=1
quick=0
results_dir=$here/results
save=1

while (($# > 0)); do
    opt=$1
    case $opt in
    -h | --help) usage; exit 0 ;;
    --no-save) save=0; shift; continue ;;
    --keep-tmp) BENCH_KEEP_TMP=1; shift; continue ;;
    --quick) quick=1; shift; continue ;;
    --no-profile) profile=0; shift; continue ;;
    esac
    (($# >= 2)) || { usage >&2; exit 2; }
    val=$2
    shift 2
    case $opt in
    --node) node_bin=$val ;;
    --helper) helper=$val ;;
    --relays) relays=$val ;;
    --rates) rates=$val ;;
    --seconds) seconds=$val ;;
    --payload) payload=$val ;;
    --max-loss) max_loss=$val ;;
    --nice) nice_n=$val ;;
    --suite-b) suite_b=$val ;;
    --port-base) port_base=$val ;;
    --summary) summary_out=$val ;;
    --results-dir) results_dir=$val ;;
    *) echo "unknown option $opt (see --help)" >&2; exit 2 ;;
    esac
done
for v in seconds payload max_loss port_base; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "${v}: not a non-negative integer" >&2; exit 2; }
done
[[ $nice_n =~ ^-?[0-9]+$ ]] || { echo "--nice: not an integer" >&2; exit 2; }
for r in $rates; do
    [[ $r =~ ^[0-9]+$ ]] && ((r >= 1 && r <= 2000000)) || { echo "bad rate $r" >&2; exit 2; }
done
for r in $relays; do
    case $r in confnode | rtpengine | rtpengine-passthrough) ;; *) echo "unknown relay $r" >&2; exit 2 ;; esac
done
((seconds >= 1 && seconds <= 60 && payload >= 2 && payload <= 1400 && port_base >= 1024 &&
    port_base <= 65000)) || { echo "option out of range (see --help)" >&2; exit 2; }
((quick)) && { seconds=2; rates="5000 20000"; }

[[ $node_bin == /* ]] || node_bin=$PWD/$node_bin
[[ -n $helper ]] || helper=$(dirname "$node_bin")/srtp_relay_bench
[[ $helper == /* ]] || helper=$PWD/$helper
[[ -z $summary_out || $summary_out == /* ]] || summary_out=$PWD/$summary_out
bench_need python3:python3 taskset:util-linux timeout:coreutils ss:iproute2 awk:gawk
[[ -x $helper ]] || bench_die "srtp_relay_bench not found at $helper (build the project, or --helper)"

sip_port=$port_base
admin_port=$((port_base + 9))
ng_port=$((port_base + 10))
node_media_lo=$((port_base + 100))
node_media_hi=$((port_base + 199))
rtpe_media_lo=$((port_base + 200))
rtpe_media_hi=$((port_base + 299))
gen_port=$((port_base + 300)) # A audio, A video, B audio, B video: +0, +2, +4, +6
exit_status=0

bench_make_tmp media_relay
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
tmp=$BENCH_TMP
results_dir=$(realpath -m "$results_dir")
cd "$tmp"

ncpu=$(nproc)
pin_relay=()
pin_gen=()
relay_cpus=any
gen_cpus=any
if ((ncpu >= 2)); then
    relay_cpus=0
    gen_cpus=1
    pin_relay=(taskset -c 0)
    pin_gen=(taskset -c 1)
fi
if ((nice_n != 0)); then
    pin_relay=(nice -n "$nice_n" "${pin_relay[@]}")
    pin_gen=(nice -n "$nice_n" "${pin_gen[@]}")
fi

summary=$tmp/summary.txt
: >"$summary"
put() { printf '%s=%s\n' "$1" "$2" >>"$summary"; }
steps=$tmp/steps.txt
printf '%-9s %8s %9s %9s %7s %6s %9s %9s %12s %6s  %s\n' relay rate sent received "loss%" \
    authf relay_cpu gen_cpu "pkts/CPU-s" "relay%" verdict >"$steps"
notes=$tmp/notes.txt
: >"$notes"

# --- control-plane helpers (python3, standard library only) ------------------------------
cat >"$tmp/ctl.py" <<'PYEOF'
"""SIP UAC over UDP (confnode) and an rtpengine ng client, for media_relay.sh.

  ctl.py sip HOST PORT GEN_BASE   two calls to meet@example.test, each with audio (PCMU)
                                  and video (VP8) RTP/SAVP + a=crypto; prints key=value
  ctl.py ng HOST PORT GEN_BASE    offer/answer through rtpengine for one video stream
Every wait is bounded (5 s per answer). Exit 0 on success, 1 with a reason on stderr."""
import base64, os, random, re, socket, sys

SUITE = "AES_CM_128_HMAC_SHA1_80"


SUITE_B = os.environ.get("RELAY_SUITE_B", "AES_CM_128_HMAC_SHA1_32")


def key(suite=SUITE, tag=1):
    return "%d %s inline:%s" % (tag, suite, base64.b64encode(os.urandom(30)).decode())


def sdp(audio_port, video_port, akey, vkey):
    s = ["v=0", "o=- %d 1 IN IP4 127.0.0.1" % random.randint(1, 1 << 30), "s=-",
         "c=IN IP4 127.0.0.1", "t=0 0"]
    if audio_port:
        s += ["m=audio %d RTP/SAVP 0" % audio_port, "a=rtpmap:0 PCMU/8000",
              "a=crypto:" + akey, "a=sendrecv", "a=rtcp-mux"]
    s += ["m=video %d RTP/SAVP 96" % video_port, "a=rtpmap:96 VP8/90000",
          "a=crypto:" + vkey, "a=sendrecv", "a=rtcp-mux"]
    return "\r\n".join(s) + "\r\n"


def parse_sdp(text):
    """[(media, port, [crypto values])] in m= order."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            f = line[2:].split()
            out.append((f[0], int(f[1]), []))
        elif line.startswith("a=crypto:") and out:
            out[-1][2].append(line[len("a=crypto:"):].strip())
    return out


def pick(cryptos, suite=SUITE, avoid=None):
    for c in cryptos:
        if c.split()[1] == suite and (avoid is None or c.split()[2] != avoid.split()[2]):
            return c
    raise SystemExit("no %s in %r" % (suite, cryptos))


def sip_call(host, port, n, audio_port, video_port, vsuite):
    akey, vkey = key(), key(vsuite)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    lport = s.getsockname()[1]
    callid = "relay%d.%d@127.0.0.1" % (n, random.randint(1, 1 << 30))
    tag = "t%d" % random.randint(1, 1 << 30)
    body = sdp(audio_port, video_port, akey, vkey)

    def req(method, ruri, cseq, to_tag, body=""):
        branch = "z9hG4bK%d" % random.randint(1, 1 << 40)
        h = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (lport, branch),
             "Max-Forwards: 70",
             "From: <sip:relay@127.0.0.1>;tag=%s" % tag,
             "To: <sip:meet@example.test>" + (";tag=" + to_tag if to_tag else ""),
             "Call-ID: " + callid, "CSeq: %d %s" % (cseq, method),
             "Contact: <sip:relay@127.0.0.1:%d>" % lport]
        if body:
            h.append("Content-Type: application/sdp")
        h.append("Content-Length: %d" % len(body.encode()))
        return ("\r\n".join(h) + "\r\n\r\n" + body).encode()

    s.sendto(req("INVITE", "sip:meet@example.test", 1, None, body), (host, port))
    while True:
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            raise SystemExit("no final answer to INVITE %d from %s:%d" % (n, host, port))
        text = data.decode(errors="replace")
        code = int(text.split(" ", 2)[1])
        if code >= 200:
            break
    if code != 200:
        raise SystemExit("INVITE %d answered %s" % (n, text.split("\r\n", 1)[0]))
    head, _, ans = text.partition("\r\n\r\n")
    to_tag = re.search(r"(?im)^(?:To|t):.*;tag=([^;\s]+)", head).group(1)
    m = re.search(r"(?im)^(?:Contact|m):\s*<([^>]+)>", head)
    ruri = m.group(1) if m else "sip:meet@example.test"
    s.sendto(req("ACK", ruri, 1, to_tag), (host, port))
    media = parse_sdp(ans)
    a = [x for x in media if x[0] == "audio"]
    v = [x for x in media if x[0] == "video"]
    if not a or not v or a[0][1] == 0 or v[0][1] == 0:
        raise SystemExit("answer %d lacks audio or video: %r" % (n, media))
    return {"audio_port": a[0][1], "video_port": v[0][1], "audio_key_out": akey,
            "video_key_out": vkey, "audio_key_in": pick(a[0][2]),
            "video_key_in": pick(v[0][2], vsuite)}


def bencode(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, list):
        return b"l" + b"".join(bencode(i) for i in x) + b"e"
    if isinstance(x, dict):
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in sorted(x.items())) + b"e"
    raise TypeError(type(x))


def bdecode(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c == b"l":
        i, out = i + 1, []
        while b[i:i + 1] != b"e":
            v, i = bdecode(b, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i, out = i + 1, {}
        while b[i:i + 1] != b"e":
            k, i = bdecode(b, i)
            v, i = bdecode(b, i)
            out[k.decode()] = v
        return out, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


def ng(host, port, msg):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    cookie = b"c%d" % random.randint(1, 1 << 30)
    s.sendto(cookie + b" " + bencode(msg), (host, port))
    try:
        data, _ = s.recvfrom(65535)
    except socket.timeout:
        raise SystemExit("rtpengine: no answer to %s" % msg["command"])
    r, _ = bdecode(data.split(b" ", 1)[1])
    if r.get("result") not in (b"ok", b"pong"):
        raise SystemExit("rtpengine %s: %r" % (msg["command"], r))
    return r


def main():
    mode, host, port, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mode == "sip":
        # A sends with SUITE; B receives what the relay protects with SUITE_B
        a = sip_call(host, port, 1, base, base + 2, SUITE)
        b = sip_call(host, port, 2, base + 4, base + 6, SUITE_B)
        for leg, d in (("a", a), ("b", b)):
            for k, v in d.items():
                print("%s_%s=%s" % (leg, k, v))
    elif mode == "ng":
        callid = "relay%d" % random.randint(1, 1 << 30)
        ka, kb = key(), key()
        ng(host, port, {"command": "ping"})
        off = ng(host, port, {"command": "offer", "call-id": callid, "from-tag": "ta",
                              "sdp": sdp(0, base + 2, None, ka),
                              "replace": ["origin", "session-connection"]})
        to_b = parse_sdp(off["sdp"].decode())[0]
        # B takes a line with rtpengine's own key (SUITE_B), so that rtpengine has to
        # unprotect and protect every packet; "passthrough" takes A's own line, which
        # rtpengine offers to B unchanged and then forwards without any SRTP work
        if os.environ.get("RELAY_PASSTHROUGH") == "1":
            rb = pick(to_b[2], SUITE)
            if rb.split()[2] != ka.split()[2]:
                raise SystemExit("rtpengine did not offer A's key to B")
        else:
            rb = pick(to_b[2], SUITE_B, avoid=ka)
        kb = key(rb.split()[1], int(rb.split()[0]))
        ans = ng(host, port, {"command": "answer", "call-id": callid, "from-tag": "ta",
                              "to-tag": "tb", "sdp": sdp(0, base + 6, None, kb),
                              "replace": ["origin", "session-connection"]})
        to_a = parse_sdp(ans["sdp"].decode())[0]
        print("a_video_port=%d" % to_a[1])
        print("a_video_key_out=%s" % ka)
        print("b_video_key_in=%s" % rb)
        print("b_video_port_rtpengine=%d" % to_b[1])
        print("call_id=%s" % callid)
        print("offer_crypto_lines=%d" % len(to_b[2]))
        print("b_suite=%s" % rb.split()[1])
    else:
        raise SystemExit("mode?")


if __name__ == "__main__":
    main()
PYEOF

val() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$2"; }

# ramp RELAY PID TO_PORT KEY_OUT RECV_KEY [AUDIO_PORT AUDIO_KEY]: the rate steps.
ramp() {
    local relay=$1 pid=$2 to_port=$3 key_out=$4 recv_key=$5 audio_port=${6:-} audio_key=${7:-}
    local r out line sent recv authf rcpu gcpu el loss per pct verdict best=0 best_per=""
    local first_per="" first_rate="" first_loss=""
    local -a extra=()
    if [[ -n $audio_port ]]; then
        extra=(--audio-to "127.0.0.1:$audio_port" --audio-from-port "$gen_port"
            --audio-key "$audio_key" --sink-port $((gen_port + 4)) --warmup 2)
    else
        extra=(--warmup 1)
    fi
    # one generator process for every step: one stream and one SRTP context per side
    # for the whole ramp, as in a call (a new receiver could not follow the relay's
    # rollover counter once the stream has passed 65,536 packets)
    local nr=0 total_s
    for r in $rates; do nr=$((nr + 1)); done
    total_s=$((nr * (seconds + 3) + 30))
    out=$tmp/gen-$relay.out
    if ! "${pin_gen[@]}" timeout -k 5 "$total_s" "$helper" gen \
        --to "127.0.0.1:$to_port" --from-port $((gen_port + 2)) --key "$key_out" \
        --recv-port $((gen_port + 6)) --recv-key "$recv_key" --rates "${rates// /,}" \
        --max-loss "$max_loss" --seconds "$seconds" --payload "$payload" --relay-pid "$pid" \
        "${extra[@]}" >"$out" 2>&1; then
        bench_log "$relay: generator failed: $(tail -n 2 "$out")"
        echo "  $relay: generator failed: $(tail -n 1 "$out")" >>"$notes"
        exit_status=1
    fi
    while read -r line; do
        r=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$line")
        sent=$(sed -n 's/.* sent=\([0-9]*\).*/\1/p' <<<"$line")
        recv=$(sed -n 's/.* received=\([0-9]*\).*/\1/p' <<<"$line")
        authf=$(sed -n 's/.* auth_fail=\([0-9]*\).*/\1/p' <<<"$line")
        el=$(sed -n 's/.* elapsed_s=\([0-9.]*\).*/\1/p' <<<"$line")
        rcpu=$(sed -n 's/.* relay_cpu_s=\([-0-9.]*\).*/\1/p' <<<"$line")
        gcpu=$(sed -n 's/.* gen_cpu_s=\([0-9.]*\).*/\1/p' <<<"$line")
        loss=$(awk -v s="$sent" -v r="$recv" 'BEGIN { printf "%.2f", (s > 0 ? 100 * (s - r) / s : 100) }')
        per=$(awk -v r="$recv" -v c="$rcpu" 'BEGIN { printf "%.0f", (c > 0 ? r / c : 0) }')
        pct=$(awk -v c="$rcpu" -v e="$el" 'BEGIN { printf "%.0f", (e > 0 ? 100 * c / e : 0) }')
        verdict=pass
        if awk -v l="$loss" -v m="$max_loss" 'BEGIN { exit !(l > m) }'; then
            verdict="fail(loss > $max_loss%)"
        elif ((sent * 10 < r * seconds * 9)); then
            verdict="fail(generator sent < 90%: it was not scheduled on time)"
        fi
        printf '%-9s %8s %9s %9s %7s %6s %9s %9s %12s %6s  %s\n' "$relay" "$r" "$sent" "$recv" \
            "$loss" "$authf" "$rcpu" "$gcpu" "$per" "$pct" "$verdict" >>"$steps"
        bench_log "$relay $r/s: sent $sent, received $recv ($loss% lost), relay $rcpu CPU-s, $per packets/CPU-s, $verdict"
        put "media.$relay.pps_per_core_at_$r" "$per"
        if [[ -z $first_per ]]; then
            first_per=$per first_rate=$r first_loss=$loss
        fi
        [[ $verdict == pass ]] || break
        best=$r best_per=$per
    done < <(grep '^gen ' "$out")
    if ((best > 0)); then
        put "media.$relay.pps_per_core" "$best_per"
        put "media.$relay.best_rate" "$best"
    elif [[ -n $first_per ]]; then
        # no step under --max-loss: the lowest step's figure, flagged
        put "media.$relay.pps_per_core" "$first_per"
        put "media.$relay.note" "no step under $max_loss% loss; figure at $first_rate/s with $first_loss% lost"
        echo "  $relay: no step under $max_loss% loss; the figure is the $first_rate/s step's ($first_loss% lost)" >>"$notes"
        exit_status=1
    else
        put "media.$relay.pps_per_core" "not measured: no step ran"
        exit_status=1
    fi
}

measure_confnode() {
    if [[ ! -x $node_bin ]]; then
        put media.confnode.pps_per_core "not measured: no confnode binary"
        exit_status=1
        return 0
    fi
    cat >"$tmp/confnode.conf" <<EOF
node: { name = "bench"; workers = 1; log_level = "warn"; pin_workers = false; };
sip: { listen = "127.0.0.1"; udp_port = $sip_port; tcp_port = $sip_port; tls_port = 0;
       domain = "example.test"; };
media: { address = "127.0.0.1"; port_min = $node_media_lo; port_max = $node_media_hi;
         srtp = "required"; media_timeout = 0; };
admin: { listen = "127.0.0.1"; port = $admin_port; };
vmrs = ( { alias = "meet@example.test"; name = "Bench room"; } );
EOF
    if ! "$node_bin" check-config -c "$tmp/confnode.conf" >"$tmp/check.log" 2>&1; then
        put media.confnode.pps_per_core "not measured: config rejected: $(head -n 1 "$tmp/check.log")"
        exit_status=1
        return 0
    fi
    bench_spawn "$tmp/confnode.log" "${pin_relay[@]}" "$node_bin" run -c "$tmp/confnode.conf"
    local pid=$BENCH_LAST_PID
    if ! bench_wait_listen "$pid" udp "$sip_port" 15; then
        put media.confnode.pps_per_core "not measured: confnode did not start ($(tail -n 1 "$tmp/confnode.log"))"
        exit_status=1
        bench_stop "$pid"
        return 0
    fi
    sleep 1
    if ! RELAY_SUITE_B=$suite_b timeout 30 python3 "$tmp/ctl.py" sip 127.0.0.1 "$sip_port" "$gen_port" >"$tmp/legs.txt" 2>"$tmp/legs.err"; then
        put media.confnode.pps_per_core "not measured: call set-up failed: $(tail -n 1 "$tmp/legs.err")"
        exit_status=1
        bench_stop "$pid"
        return 0
    fi
    ramp confnode "$pid" "$(val a_video_port "$tmp/legs.txt")" "$(val a_video_key_out "$tmp/legs.txt")" \
        "$(val b_video_key_in "$tmp/legs.txt")" "$(val a_audio_port "$tmp/legs.txt")" \
        "$(val a_audio_key_out "$tmp/legs.txt")"
    # where the relay's time goes: one more step at the best rate under perf
    local best_r
    best_r=$(val media.confnode.best_rate "$summary")
    if ((profile)) && [[ -n $best_r ]] && command -v perf >/dev/null; then
        local ev=cpu-clock ppid
        # no PMU (a VM): perf would fall back to cpu-clock anyway; say so in the report
        [[ $(perf stat -e instructions true 2>&1 || true) == *"not supported"* ]] || ev=cycles
        bench_spawn "$tmp/perf.log" perf record -e "$ev" -g -F 999 -p "$pid" -o "$tmp/perf.data" \
            -- sleep "$((seconds + 3))"
        ppid=$BENCH_LAST_PID
        sleep 0.5
        "${pin_gen[@]}" timeout -k 5 $((seconds + 30)) "$helper" gen \
            --to "127.0.0.1:$(val a_video_port "$tmp/legs.txt")" --from-port $((gen_port + 2)) \
            --key "$(val a_video_key_out "$tmp/legs.txt")" --recv-port $((gen_port + 6)) \
            --recv-key "$(val b_video_key_in "$tmp/legs.txt")" --rate "$best_r" --seconds "$seconds" \
            --payload "$payload" --audio-to "127.0.0.1:$(val a_audio_port "$tmp/legs.txt")" \
            --audio-from-port "$gen_port" --audio-key "$(val a_audio_key_out "$tmp/legs.txt")" \
            --sink-port $((gen_port + 4)) --warmup 1 >"$tmp/gen-profile.out" 2>&1 || true
        local i
        for ((i = 0; i < 100; i++)); do bench_alive "$ppid" || break; sleep 0.1; done
        bench_stop "$ppid"
        if [[ -s $tmp/perf.data ]]; then
            {
                echo "perf record -e $ev -g of confnode relaying $best_r packets/s ($(grep '^gen ' "$tmp/gen-profile.out" | cut -d' ' -f2-3)):"
                echo "by shared object:"
                perf report -i "$tmp/perf.data" --no-children --sort dso --stdio 2>/dev/null |
                    grep -E '^ +[0-9.]+%' | head -n 10 || true
                echo "top functions (self):"
                perf report -i "$tmp/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
                    grep -E '^ +[0-9.]+%' | head -n 25 || true
            } >"$tmp/profile.txt"
        fi
    fi
    local st
    st=$(timeout 5 python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$admin_port/metrics', timeout=3).read().decode())" 2>/dev/null |
        grep -E '^confnode_media_(video_forwarded|srtp|rtp_in|rtp_out|drop)[a-z_]*(\{[^}]*\})? ' | head -n 16 || true)
    [[ -n $st ]] && sed 's/^/  confnode metrics: /' <<<"$st" >>"$notes"
    bench_alive "$pid" || { echo "  confnode exited during the run" >>"$notes"; exit_status=1; }
    bench_stop "$pid" 10
}

# measure_rtpengine NAME PASSTHROUGH(0/1)
measure_rtpengine() {
    local name=$1 pass=$2
    if ! command -v rtpengine >/dev/null; then
        put "media.$name.pps_per_core" "not measured: rtpengine missing (apt-get install rtpengine-daemon)"
        exit_status=1
        return 0
    fi
    # userspace only: no kernel table (--table=-1); one media thread, like confnode's
    # one worker; our own options only (--config-file=none)
    bench_spawn "$tmp/$name.log" "${pin_relay[@]}" rtpengine --config-file=none --foreground \
        --log-stderr --log-level=4 --table=-1 --interface=127.0.0.1 \
        --listen-ng="127.0.0.1:$ng_port" --port-min="$rtpe_media_lo" --port-max="$rtpe_media_hi" \
        --num-threads=1
    local pid=$BENCH_LAST_PID
    if ! bench_wait_listen "$pid" udp "$ng_port" 15; then
        put "media.$name.pps_per_core" "not measured: rtpengine did not start: $(tail -n 1 "$tmp/$name.log")"
        exit_status=1
        bench_stop "$pid"
        return 0
    fi
    sleep 1
    if ! RELAY_SUITE_B=$suite_b RELAY_PASSTHROUGH=$pass timeout 30 python3 "$tmp/ctl.py" ng \
        127.0.0.1 "$ng_port" "$gen_port" >"$tmp/$name.ng" 2>"$tmp/$name.err"; then
        put "media.$name.pps_per_core" "not measured: ng offer/answer failed: $(tail -n 1 "$tmp/$name.err")"
        exit_status=1
        bench_stop "$pid"
        return 0
    fi
    echo "  $name: rtpengine offered $(val offer_crypto_lines "$tmp/$name.ng") a=crypto line(s) to B;" \
        "B took $(val b_suite "$tmp/$name.ng")$( ((pass)) && echo " with A's own key")" >>"$notes"
    ramp "$name" "$pid" "$(val a_video_port "$tmp/$name.ng")" "$(val a_video_key_out "$tmp/$name.ng")" \
        "$(val b_video_key_in "$tmp/$name.ng")"
    bench_alive "$pid" || { echo "  $name: rtpengine exited during the run" >>"$notes"; exit_status=1; }
    local n
    n=$(grep -c 'receive queue' "$tmp/$name.log" || true)
    ((n == 0)) || echo "  $name: rtpengine logged $n 'UDP receive queue' overload messages" \
        "(it drops packets by design when a socket backs up), e.g.:" \
        "$(grep -m 1 'receive queue' "$tmp/$name.log" | sed 's/^\[[0-9.]*\] //')" >>"$notes"
    bench_stop "$pid" 10
}

# --- run ---------------------------------------------------------------------------------
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
machine=$(bench_machine)
for p in "$sip_port" "$admin_port" "$ng_port" $((gen_port)) $((gen_port + 2)) $((gen_port + 4)) \
    $((gen_port + 6)); do
    if bench_listening udp "$p" || bench_listening tcp "$p"; then
        bench_die "port $p is in use (choose --port-base)"
    fi
done
bench_log "raw libsrtp2 loop on CPU $relay_cpus"
if "${pin_relay[@]}" "$helper" raw --seconds "$seconds" --payload "$payload" \
    --out-suite "$suite_b" >"$tmp/raw.out" 2>&1; then
    put media.raw.pairs_per_s "$(sed -n 's/.*pairs_per_cpu_s=\([0-9]*\).*/\1/p' "$tmp/raw.out")"
else
    put media.raw.pairs_per_s "not measured: $(tail -n 1 "$tmp/raw.out")"
    exit_status=1
fi
for r in $relays; do
    case $r in
    confnode) measure_confnode ;;
    rtpengine | rtpengine-passthrough)
        # rtpengine's userspace loop sometimes stops reading a stream after a burst
        # (see the notes): when no step passed, it gets a second, fresh try
        pass=0
        [[ $r == rtpengine-passthrough ]] && pass=1
        measure_rtpengine "$r" "$pass"
        if [[ -z $(val "media.$r.best_rate" "$summary") ]]; then
            echo "  $r: no step passed on the first try; a fresh rtpengine was measured again" >>"$notes"
            measure_rtpengine "$r" "$pass"
        fi
        ;;
    esac
done

report() {
    local c k w
    c=$(val media.confnode.pps_per_core "$summary")
    k=$(val media.rtpengine.pps_per_core "$summary")
    w=$(val media.raw.pairs_per_s "$summary")
    echo "# media_relay: SRTP relay packets per CPU-second, confnode next to rtpengine and libsrtp2"
    echo "started: $started"
    echo "command: bench/media_relay.sh --relays '$relays' --rates '$rates' --seconds $seconds" \
        "--payload $payload --max-loss $max_loss --nice $nice_n$( ((quick)) && echo " --quick")"
    echo "$machine"
    echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "versions: $(openssl version); rtpengine $( (rtpengine --version 2>&1 || true) | sed -n 's/^Version: *//p');" \
        "libsrtp2 $(cat /usr/local/lib/libsrtp2-openssl.version 2>/dev/null || echo "(system package)")"
    echo "confnode: $node_bin (built $(date -u -r "$node_bin" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo '?'))," \
        "tree $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown), 1 worker"
    echo "pinning: relays and the raw loop on CPU $relay_cpus, generator on CPU $gen_cpus, nice $nice_n"
    echo "stream: A -> relay AES_CM_128_HMAC_SHA1_80, relay -> B $suite_b (relay's own key), RTP"
    echo "        $((payload + 12)) bytes + tag, VP8 keyframe payload (PT 96); confnode also gets 50"
    echo "        packets/s of loud SRTP PCMU from A (decoded and mixed)"
    echo "figure: packets B received and authenticated / relay CPU-seconds (utime+stime of the"
    echo "        relay process, all threads) over the step; the raw loop is unprotect+protect"
    echo "        pairs per CPU-second of one thread"
    echo
    echo "raw libsrtp2 loop (relay CPU): $(cat "$tmp/raw.out")"
    echo
    cat "$steps"
    echo
    echo "confnode:  ${c:-not measured} packets per relay CPU-second"
    echo "rtpengine: ${k:-not measured} packets per relay CPU-second"
    echo "rtpengine, SRTP passed through untouched: $(val media.rtpengine-passthrough.pps_per_core "$summary") packets per relay CPU-second"
    echo "raw loop:  ${w:-not measured} pairs per CPU-second"
    awk -v c="$c" -v k="$k" -v w="$w" 'BEGIN {
        if (c + 0 > 0 && k + 0 > 0) printf "ratio confnode / rtpengine: %.2f (goal >= 3)\n", c / k
        if (c + 0 > 0 && w + 0 > 0) printf "ratio confnode / raw loop:  %.2f (goal >= 0.7)\n", c / w
        if (k + 0 > 0 && w + 0 > 0) printf "ratio rtpengine / raw loop: %.2f\n", k / w }'
    if [[ -s $notes ]]; then
        echo
        echo "notes:"
        cat "$notes"
    fi
    if [[ -s $tmp/profile.txt ]]; then
        echo
        cat "$tmp/profile.txt"
    fi
}
report | tee "$tmp/report.txt"
[[ -n $summary_out ]] && cat "$summary" >>"$summary_out"
if ((save)); then
    mkdir -p "$results_dir"
    out=$results_dir/media_relay-$(date -u +%Y%m%d-%H%M%S).txt
    cp "$tmp/report.txt" "$out"
    bench_log "saved $out"
fi
exit "$exit_status"
