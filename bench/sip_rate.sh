#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# sip_rate.sh: the highest call rate a SIP responder sustains with no failed call, and
# the responder's CPU-seconds per call, for confnode and for Kamailio configured as a
# comparable transaction-stateful responder, over UDP and TLS, in one run.
#
# sipp (built-in uac scenario: INVITE, 100, 200+SDP, ACK, BYE, 200) drives each
# responder at a rising rate. Debian's sipp has no TLS, so TLS legs go
# sipp --TCP--> stunnel (TLS client, verifies chain and host name) --TLS--> responder.
# Loopback only; every loop is bounded in steps and time. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

usage() {
    cat <<'EOF'
Usage: bench/sip_rate.sh [options]

  --node PATH          confnode binary (default: build/bin/confnode; env CONFNODE_BIN)
  --responders LIST    which responders to measure (default: "kamailio confnode")
  --transports LIST    from udp, tcp, tls, tls-per-call (default: "udp tls")
  --start N            first rate step, calls/s (default 200)
  --max N              highest rate step, calls/s (default 25600); steps double
  --step-seconds N     each step runs N x rate calls (default 5)
  --refine N           bisection steps between the last pass and the first failure (default 2)
  --settle N           seconds after each step before reading CPU counters (default 6)
  --quiet-wait N       before each step, wait up to N s (default 15) for the rest of the
                       machine to use less than --quiet-pct % of one core (default 25)
  --workers N          confnode workers and Kamailio children/tcp_children (default 2)
  --pin split|none     split: responder and load generator on separate CPUs (default)
  --nice N             run responder, sipp and stunnel at this nice value (default 0;
                       negative, as root, shields them from other jobs on a shared machine)
  --kam-port N         Kamailio UDP/TCP port (default 5070); TLS is --kam-tls-port (5071)
  --node-port N        confnode UDP/TCP port (default 5080); TLS is --node-tls-port (5081)
                       (stunnel listens for sipp on the TLS port + 2)
  --admin-port N       confnode admin HTTP port (default 8089)
  --media-ports LO-HI  confnode media port range (default 40000-49999)
  --rooms N            spread calls over N rooms meet1..meetN (default 64); 1 = sipp's
                       built-in uac with -s meet, every call to one room
  --tls-ciphersuites L the TLS 1.3 suites stunnel offers, the same for both responders
                       (default TLS_AES_128_GCM_SHA256; "default": OpenSSL's list)
  --cert F --key F --ca F --tls-name NAME
                       use this server certificate instead of a throw-away test PKI;
                       NAME is the host name stunnel verifies (default sip.example.test)
  --results-dir DIR    where the results file goes (default bench/results)
  --no-save            print the results, write no results file
  --keep-tmp           keep the temp dir (configs, logs, sipp statistics)
  -h, --help           this text

Exit status: 0 when every responder was measured on every transport; 2 when the confnode
binary is missing (Kamailio is measured alone); 1 on any other failure.
EOF
}

node_bin=${CONFNODE_BIN:-$repo/build/bin/confnode}
responders="kamailio confnode"
transports="udp tls"
rate_start=200
rate_max=25600
step_seconds=5
refine=2
settle=6
quiet_wait=15
quiet_pct=25
workers=2
pin="split"
nice_val=0
kam_port=5070
kam_tls_port=5071
node_port=5080
node_tls_port=5081
admin_port=8089
media_ports=40000-49999
rooms=64
cert=""
key=""
ca=""
tls_name=sip.example.test
tls_suites=TLS_AES_128_GCM_SHA256
results_dir=$here/results
save=1
kam_shm_mb=1024

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

while (($# > 0)); do
    opt=$1
    case $opt in
    -h | --help) usage; exit 0 ;;
    --no-save) save=0; shift; continue ;;
    --keep-tmp) BENCH_KEEP_TMP=1; shift; continue ;;
    esac
    (($# >= 2)) || bench_die "$opt needs a value (see --help)"
    val=$2
    shift 2
    case $opt in
    --node) node_bin=$val ;;
    --responders) responders=$val ;;
    --transports) transports=$val ;;
    --start) rate_start=$val ;;
    --max) rate_max=$val ;;
    --step-seconds) step_seconds=$val ;;
    --refine) refine=$val ;;
    --settle) settle=$val ;;
    --quiet-wait) quiet_wait=$val ;;
    --quiet-pct) quiet_pct=$val ;;
    --workers) workers=$val ;;
    --pin) pin=$val ;;
    --nice) nice_val=$val ;;
    --kam-port) kam_port=$val ;;
    --kam-tls-port) kam_tls_port=$val ;;
    --node-port) node_port=$val ;;
    --node-tls-port) node_tls_port=$val ;;
    --admin-port) admin_port=$val ;;
    --media-ports) media_ports=$val ;;
    --rooms) rooms=$val ;;
    --cert) cert=$val ;;
    --key) key=$val ;;
    --ca) ca=$val ;;
    --tls-name) tls_name=$val ;;
    --tls-ciphersuites) tls_suites=$val ;;
    --results-dir) results_dir=$val ;;
    *) bench_die "unknown option $opt (see --help)" ;;
    esac
done

for v in rate_start rate_max step_seconds refine settle quiet_wait quiet_pct workers rooms kam_port kam_tls_port \
    node_port node_tls_port admin_port; do
    is_uint "${!v}" || bench_die "$v must be a non-negative integer, got '${!v}'"
done
((rate_start >= 1 && rate_max >= rate_start)) || bench_die "need 1 <= --start <= --max"
((step_seconds >= 1 && step_seconds <= 60)) || bench_die "--step-seconds must be 1..60"
((refine <= 5)) || bench_die "--refine must be 0..5"
((settle <= 60)) || bench_die "--settle must be 0..60"
((quiet_wait <= 600)) || bench_die "--quiet-wait must be 0..600"
((workers >= 1 && workers <= 64)) || bench_die "--workers must be 1..64"
((rooms >= 1 && rooms <= 10000)) || bench_die "--rooms must be 1..10000"
[[ $pin == split || $pin == none ]] || bench_die "--pin must be split or none"
[[ $nice_val =~ ^-?[0-9]+$ ]] || bench_die "--nice must be -20..19"
((nice_val >= -20 && nice_val <= 19)) || bench_die "--nice must be -20..19"
((nice_val >= 0 || EUID == 0)) || bench_die "a negative --nice needs root"
[[ $media_ports =~ ^([0-9]+)-([0-9]+)$ ]] || bench_die "--media-ports must be LO-HI"
media_min=${BASH_REMATCH[1]}
media_max=${BASH_REMATCH[2]}
for t in $transports; do
    case $t in udp | tcp | tls | tls-per-call) ;; *) bench_die "unknown transport $t" ;; esac
done
for r in $responders; do
    case $r in kamailio | confnode) ;; *) bench_die "unknown responder $r" ;; esac
done
if [[ -n $cert || -n $key || -n $ca ]]; then
    [[ -r $cert && -r $key && -r $ca ]] || bench_die "--cert, --key and --ca go together"
fi

bench_need sipp:sip-tester kamailio:kamailio stunnel4:stunnel4 openssl:openssl \
    taskset:util-linux timeout:coreutils ss:iproute2 pgrep:procps awk:gawk
[[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ]] ||
    compgen -G '/usr/lib/*/kamailio/modules/tls.so' >/dev/null ||
    bench_die "Kamailio tls module missing (apt-get install kamailio-tls-modules)"

clk_tck=$(getconf CLK_TCK)
exit_status=0
node_missing=0
node_version="absent"

bench_make_tmp sip_rate
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
tmp=$BENCH_TMP

# --- CPU placement ---------------------------------------------------------------------
ncpu=$(nproc)
resp_cpus=""
load_cpus=""
if [[ $pin == split ]] && ((ncpu >= 2)); then
    # The responder gets min(workers, ncpu-1) CPUs from 0 up, the load side (sipp and
    # stunnel) the rest, so the two never share a core.
    nresp=$((workers < ncpu - 1 ? workers : ncpu - 1))
    resp_cpus="0-$((nresp - 1))"
    load_cpus="$nresp-$((ncpu - 1))"
    [[ $nresp == 1 ]] && resp_cpus=0
    ((nresp == ncpu - 1)) && load_cpus=$((ncpu - 1))
else
    pin=none
fi

# Command prefixes that pin and prioritise what follows (nice and taskset exec it, so
# the pid stays the same).
pin_resp=()
pin_load=()
if ((nice_val != 0)); then
    pin_resp=(nice -n "$nice_val")
    pin_load=(nice -n "$nice_val")
fi
if [[ $pin == split ]]; then
    pin_resp+=(taskset -c "$resp_cpus")
    pin_load+=(taskset -c "$load_cpus")
fi

# --- certificates ----------------------------------------------------------------------
if [[ -z $cert ]]; then
    bench_make_pki "$tmp/pki" "$tls_name"
    cert=$tmp/pki/node.crt
    key=$tmp/pki/node.key
    ca=$tmp/pki/ca.crt
fi
cert=$(realpath "$cert")
key=$(realpath "$key")
ca=$(realpath "$ca")
results_dir=$(realpath -m "$results_dir")
[[ $node_bin == /* ]] || node_bin=$PWD/$node_bin
# sipp writes stray files (default-named statistics) into its working directory
cd "$tmp"
# one socket per call (tls-per-call) needs file descriptors
ulimit -n 65536 2>/dev/null || true

# --- the call -----------------------------------------------------------------------------
# A conference holds a bounded number of participants, so with every call to one room
# the room's size, not SIP work, would cap the rate. With --rooms N > 1 the scenario is
# sipp's own built-in uac with the request user taken, call by call, from a list of N
# rooms (and the node gets those N rooms); Kamailio answers any user alike.
scenario=(-sn uac -s meet)
if ((rooms > 1)); then
    { sipp -sd uac 2>/dev/null || true; } | sed 's/\[service\]/[field0]/g' >"$tmp/uac-rooms.xml"
    grep -q '\[field0\]' "$tmp/uac-rooms.xml" ||
        bench_die "could not derive a scenario from 'sipp -sd uac'"
    {
        echo SEQUENTIAL
        for ((i = 1; i <= rooms; i++)); do echo "meet$i"; done
    } >"$tmp/rooms.csv"
    scenario=(-sf "$tmp/uac-rooms.xml" -inf "$tmp/rooms.csv")
fi

# --- results bookkeeping -----------------------------------------------------------------
steps_file=$tmp/steps.txt    # one line per rate step
summary_file=$tmp/summary.txt # one line per responder and transport
tlsinfo_file=$tmp/tls.txt
affinity_file=$tmp/affinity.txt
: >"$steps_file"
: >"$summary_file"
: >"$tlsinfo_file"
: >"$affinity_file"
printf '%-13s %-9s %7s %7s %7s %6s %6s %6s %8s %10s %10s %10s %5s %5s %6s  %s\n' \
    transport responder rate calls ok failed retr late "achieved" "resp_cpu_s" "stun_cpu_s" \
    "sipp_cpu_s" "resp%" "load%" "other%" verdict >>"$steps_file"

resp_pid=""
stunnel_pid=""
stunnel_args=()
step_no=0

# wait_quiet: waits (at most --quiet-wait seconds) until, over one second, the machine
# minus the responder and stunnel used less than --quiet-pct % of one core, so a step
# does not start in the middle of somebody else's build.
wait_quiet() {
    local i m0 m1 r0 r1 s0 s1 t0 t1 other=0
    for ((i = 0; i < quiet_wait; i++)); do
        r0=$(bench_tree_ticks "$resp_pid")
        s0=0 s1=0
        [[ -n $stunnel_pid ]] && s0=$(bench_tree_ticks "$stunnel_pid")
        m0=$(bench_busy_ticks)
        t0=$(date +%s%N)
        sleep 1
        m1=$(bench_busy_ticks)
        t1=$(date +%s%N)
        r1=$(bench_tree_ticks "$resp_pid")
        [[ -n $stunnel_pid ]] && s1=$(bench_tree_ticks "$stunnel_pid")
        # % of one core over the measured interval (the responder and stunnel are
        # idle between steps; reading them is kept outside the interval)
        other=$((100 * ((m1 - m0) - (r1 - r0) - (s1 - s0)) * 1000000000 / clk_tck / (t1 - t0)))
        ((other < 0)) && other=0
        ((other <= quiet_pct)) && return 0
    done
    ((quiet_wait == 0)) ||
        bench_log "other jobs still use ${other}% of a core after ${quiet_wait}s; measuring anyway"
}

# quiesce: after a failed step, waits (at most 30 s) until the responder used less than
# 5% of a core over one second, and starts a fresh stunnel, so the next step inherits
# neither the responder's backlog nor a tunnel full of stale data.
quiesce() {
    local i a b
    for ((i = 0; i < 30; i++)); do
        a=$(bench_tree_ticks "$resp_pid")
        sleep 1
        b=$(bench_tree_ticks "$resp_pid")
        (((b - a) * 20 <= clk_tck)) && break
    done
    if [[ -n $stunnel_pid ]]; then
        bench_stop "$stunnel_pid"
        stunnel_pid=""
        start_stunnel "${stunnel_args[@]}" || bench_log "stunnel did not restart"
    fi
}

# run_step RESPONDER TRANSPORT RATE HOST PORT SIPP_TRANSPORT: one bounded sipp run at RATE
# calls/s; sets step_ok (0/1), step_succ, step_cpu (responder CPU-s), step_stun_cpu,
# step_sipp_cpu.
run_step() {
    local responder=$1 transport=$2 rate=$3 host=$4 port=$5 tflag=$6
    local calls=$((rate * step_seconds)) limit=$((rate * 2 < 100 ? 100 : rate * 2))
    local stf err out tfile rc=0 r0 r1 s0=0 s1=0 m0 m1 t0 t1 t2 sipp_u sipp_s
    local last succ=0 failed=0 retr=0 late=0 elapsed=0 achieved=0 verdict wall load_pct resp_pct
    local other_pct why=""
    local budget=$((step_seconds * 3 + 15))
    local -a extra=()
    [[ $tflag == tn ]] && extra=(-max_socket "$(($(ulimit -n) / 2))")

    wait_quiet
    step_no=$((step_no + 1))
    stf=$tmp/step-$step_no.csv
    err=$tmp/step-$step_no.err
    out=$tmp/step-$step_no.out
    tfile=$tmp/step-$step_no.time

    m0=$(bench_busy_ticks)
    r0=$(bench_tree_ticks "$resp_pid")
    [[ -n $stunnel_pid ]] && s0=$(bench_tree_ticks "$stunnel_pid")
    t0=$(date +%s.%N)
    local TIMEFORMAT='%U %S'
    {
        time "${pin_load[@]}" timeout -k 5 "$((budget + 10))" \
            sipp "${scenario[@]}" "$host:$port" -t "$tflag" -r "$rate" -m "$calls" \
            -l "$limit" -d 0 -nostdin -timeout "${budget}s" -timeout_error \
            -recv_timeout 5000 -trace_stat -stf "$stf" -fd 60 \
            -trace_err -error_file "$err" "${extra[@]}" >"$out" 2>&1 || rc=$?
    } 2>"$tfile"
    t1=$(date +%s.%N)
    sleep "$settle"
    r1=$(bench_tree_ticks "$resp_pid")
    [[ -n $stunnel_pid ]] && s1=$(bench_tree_ticks "$stunnel_pid")
    m1=$(bench_busy_ticks)
    t2=$(date +%s.%N)
    read -r sipp_u sipp_s <"$tfile" || { sipp_u=0; sipp_s=0; }

    if [[ -s $stf ]] && (($(wc -l <"$stf") >= 2)); then
        last=$(tail -n 1 "$stf")
        # field 1 StartTime and 3 CurrentTime end in a tab and the epoch seconds;
        # 16 SuccessfulCall(C), 18 FailedCall(C), 58 Retransmissions(C)
        # 56 DeadCallMsgs(C): messages for calls already over, i.e. the responder's
        # retransmissions (a 2xx to INVITE is resent until its ACK arrives, on any
        # transport) or answers that came too late
        read -r succ failed retr late elapsed <<<"$(awk -F';' '{
            n = split($1, a, "\t"); start = a[n]
            n = split($3, b, "\t"); cur = b[n]
            printf "%d %d %d %d %.3f\n", $16, $18, $58, $56, cur - start }' <<<"$last")"
        # why calls failed, from sipp's cumulative failure counters
        why=$(awk -F';' '{
            split("cannot-send udp-retrans tcp-connect tcp-closed unexpected rejected", k, " ")
            split("20 22 24 26 28 30", f, " ")
            for (i = 1; i <= 6; i++) if ($f[i] > 0) { printf "%s%s=%d", sep, k[i], $f[i]; sep = "," }
            if ($42 > 0) { printf "%srecv-timeout=%d", sep, $42; sep = "," }
            if ($44 > 0) printf "%ssend-timeout=%d", sep, $44 }' <<<"$last")
    else
        failed=$calls
    fi
    achieved=$(awk -v s="$succ" -v e="$elapsed" 'BEGIN { printf "%.0f", (e > 0 ? s / e : 0) }')
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')

    step_succ=$succ
    step_cpu=$(awk -v d=$((r1 - r0)) -v h="$clk_tck" 'BEGIN { printf "%.2f", d / h }')
    step_stun_cpu=-
    [[ -n $stunnel_pid ]] &&
        step_stun_cpu=$(awk -v d=$((s1 - s0)) -v h="$clk_tck" 'BEGIN { printf "%.2f", d / h }')
    step_sipp_cpu=$(awk -v u="$sipp_u" -v s="$sipp_s" 'BEGIN { printf "%.2f", u + s }')
    # CPU use during the sipp run, in % of one core (the settle tail is mostly idle)
    resp_pct=$(awk -v c="$step_cpu" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? 100 * c / w : 0) }')
    load_pct=$(awk -v a="$step_stun_cpu" -v b="$step_sipp_cpu" -v w="$wall" \
        'BEGIN { printf "%.0f", (w > 0 ? 100 * (a + b) / w : 0) }')
    # everything else the machine ran meanwhile (other jobs, the kernel's share of
    # loopback not charged to a process), in % of one core over step and settle time
    other_pct=$(awk -v m=$((m1 - m0)) -v r=$((r1 - r0)) -v s=$((s1 - s0)) -v p="$step_sipp_cpu" \
        -v h="$clk_tck" -v a="$t0" -v b="$t2" \
        'BEGIN { o = (m - r - s) / h - p; if (o < 0) o = 0
                 printf "%.0f", (b > a ? 100 * o / (b - a) : 0) }')

    step_ok=0
    verdict=pass
    if ((rc != 0)); then
        verdict="fail(sipp exit $rc${why:+: $why})"
    elif ((failed != 0 || succ != calls)); then
        verdict="fail($failed failed${why:+: $why})"
    elif ((achieved * 10 < rate * 9)); then
        verdict="fail(rate < 90%)"
    else
        step_ok=1
    fi
    printf '%-13s %-9s %7d %7d %7d %6d %6d %6d %8d %10s %10s %10s %5s %5s %6s  %s\n' \
        "$transport" "$responder" "$rate" "$calls" "$succ" "$failed" "$retr" "$late" "$achieved" \
        "$step_cpu" "$step_stun_cpu" "$step_sipp_cpu" "$resp_pct" "$load_pct" "$other_pct" \
        "$verdict" >>"$steps_file"
    bench_log "$responder/$transport rate $rate: $succ/$calls ok, $failed failed, achieved" \
        "$achieved/s, responder $step_cpu CPU-s, $verdict"
    if ((step_ok == 0)) && [[ -s $err ]]; then
        head -n 5 "$err" | sed 's/^/    sipp: /' >&2
    fi
    ((step_ok == 1)) || quiesce
}

# ramp RESPONDER TRANSPORT HOST PORT SIPP_TRANSPORT: doubles the rate from --start to
# --max until a step fails, bisects --refine times between the last pass and the first
# failure, and appends the best passing step to the summary.
ramp() {
    local responder=$1 transport=$2 host=$3 port=$4 tflag=$5
    local rate best=0 best_cpu="" best_succ=0 best_stun="" best_sipp="" hit_max=0 lo hi mid i

    # A few calls first: a responder that cannot complete a call is reported as broken.
    run_step "$responder" "$transport" 10 "$host" "$port" "$tflag"
    if ((step_ok == 0)); then
        bench_log "$responder/$transport: smoke test failed, no measurement"
        printf '%s %s broken - - - - -\n' "$transport" "$responder" >>"$summary_file"
        exit_status=1
        return 0
    fi

    rate=$rate_start
    hi=0
    while ((rate <= rate_max)); do
        run_step "$responder" "$transport" "$rate" "$host" "$port" "$tflag"
        if ((step_ok == 0)); then
            hi=$rate
            break
        fi
        best=$rate best_cpu=$step_cpu best_succ=$step_succ
        best_stun=$step_stun_cpu best_sipp=$step_sipp_cpu
        ((rate == rate_max)) && hit_max=1
        if ((rate < rate_max && rate * 2 > rate_max)); then
            rate=$rate_max
        else
            rate=$((rate * 2))
        fi
    done
    if ((hi > 0 && best > 0)); then
        lo=$best
        for ((i = 0; i < refine; i++)); do
            mid=$(((lo + hi) / 2 / 10 * 10))
            ((mid > lo && (mid - lo) * 20 >= lo)) || break
            run_step "$responder" "$transport" "$mid" "$host" "$port" "$tflag"
            if ((step_ok == 1)); then
                lo=$mid best=$mid best_cpu=$step_cpu best_succ=$step_succ
                best_stun=$step_stun_cpu best_sipp=$step_sipp_cpu
            else
                hi=$mid
            fi
        done
    fi
    if ((best == 0)); then
        printf '%s %s 0 - - - -\n' "$transport" "$responder" >>"$summary_file"
        return 0
    fi
    # per call: responder, stunnel, sipp CPU-s; calls per responder CPU-s
    awk -v t="$transport" -v r="$responder" -v b="$best" -v m="$hit_max" -v c="$best_cpu" \
        -v n="$best_succ" -v st="$best_stun" -v sp="$best_sipp" 'BEGIN {
        printf "%s %s %s%d %.3g %s %s %.3g\n", t, r, (m ? ">=" : ""), b, c / n,
            (c > 0 ? sprintf("%.0f", n / c) : "inf"),
            (st == "-" ? "-" : sprintf("%.3g", st / n)), sp / n }' >>"$summary_file"
}

# measure_transports RESPONDER HOST UDP_TCP_PORT TLS_PORT
measure_transports() {
    local responder=$1 host=$2 port=$3 tls_port=$4 t st_port
    for t in $transports; do
        case $t in
        udp) ramp "$responder" udp "$host" "$port" u1 ;;
        tcp) ramp "$responder" tcp "$host" "$port" t1 ;;
        tls | tls-per-call)
            st_port=$((tls_port + 2))
            start_stunnel "$responder" "$host" "$tls_port" "$st_port" || {
                printf '%s %s broken - - - - -\n' "$t" "$responder" >>"$summary_file"
                exit_status=1
                continue
            }
            if [[ $t == tls ]]; then
                ramp "$responder" "$t" 127.0.0.1 "$st_port" t1
            else
                ramp "$responder" "$t" 127.0.0.1 "$st_port" tn
            fi
            bench_stop "$stunnel_pid"
            stunnel_pid=""
            ;;
        esac
    done
}

# start_stunnel RESPONDER HOST TLS_PORT ACCEPT_PORT: a TLS client in front of sipp that
# verifies the responder's chain against the CA and its host name.
start_stunnel() {
    local responder=$1 host=$2 tls_port=$3 accept_port=$4 conf
    stunnel_args=("$@")
    conf=$tmp/stunnel-$responder.conf
    bench_listening tcp "$accept_port" && { bench_log "port $accept_port busy"; return 1; }
    cat >"$conf" <<EOF
foreground = yes
pid =
debug = 4
output = $tmp/stunnel-$responder.log
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1

[sip]
client = yes
accept = 127.0.0.1:$accept_port
connect = $host:$tls_port
CAfile = $ca
verifyChain = yes
checkHost = $tls_name
sni = $tls_name
EOF
    [[ $tls_suites == default ]] || echo "ciphersuites = $tls_suites" >>"$conf"
    bench_spawn "$tmp/stunnel-$responder.out" "${pin_load[@]}" stunnel4 "$conf"
    stunnel_pid=$BENCH_LAST_PID
    if ! bench_wait_listen "$stunnel_pid" tcp "$accept_port" 10; then
        bench_log "stunnel did not start:"
        tail -n 5 "$tmp/stunnel-$responder.log" "$tmp/stunnel-$responder.out" >&2 || true
        return 1
    fi
}

# record_affinity RESPONDER: the CPUs each responder thread may run on, as it set them.
record_affinity() {
    local p list
    list=$(for p in $(bench_tree_pids "$resp_pid"); do
        cat /proc/"$p"/task/*/status 2>/dev/null | sed -n 's/^Cpus_allowed_list:[[:space:]]*//p'
    done | sort | uniq -c | awk '{ printf "%s%s thread(s) on CPUs %s", sep, $1, $2; sep = ", " }')
    echo "$1: $list" >>"$affinity_file"
}

ports_free() {
    local p
    for p in "$@"; do
        if bench_listening udp "${p#*:}" || bench_listening tcp "${p#*:}"; then
            bench_log "port ${p#*:} is in use (${p%%:*}); pick another with the options"
            return 1
        fi
    done
}

measure_kamailio() {
    local cfg=$here/kamailio/kamailio.cfg
    local -a args=(-f "$cfg" -Y "$tmp/kamailio-run" -m "$kam_shm_mb" -M 32
        -A "KAM_ADDR=\"127.0.0.1\"" -A "KAM_PORT=$kam_port" -A "KAM_TLS_PORT=$kam_tls_port"
        -A "KAM_CHILDREN=$workers" -A WITH_TLS -A "KAM_TLS_CERT=\"$cert\""
        -A "KAM_TLS_KEY=\"$key\"" -A "KAM_TLS_CA=\"$ca\"")
    mkdir -p "$tmp/kamailio-run"
    ports_free "kamailio:$kam_port" "kamailio:$kam_tls_port" || { exit_status=1; return 0; }
    if ! kamailio -c "${args[@]}" >"$tmp/kamailio-check.log" 2>&1; then
        tail -n 20 "$tmp/kamailio-check.log" >&2
        bench_log "kamailio rejected $cfg"
        exit_status=1
        return 0
    fi
    bench_spawn "$tmp/kamailio.log" "${pin_resp[@]}" kamailio -DD -E "${args[@]}"
    resp_pid=$BENCH_LAST_PID
    if ! bench_wait_listen "$resp_pid" udp "$kam_port" 15 ||
        ! bench_wait_listen "$resp_pid" tcp "$kam_tls_port" 15; then
        tail -n 20 "$tmp/kamailio.log" >&2
        bench_log "kamailio did not start"
        bench_stop "$resp_pid"
        exit_status=1
        return 0
    fi
    sleep 1 # let every child finish its start-up before the first counter read
    echo "kamailio: $(bench_tls_params 127.0.0.1 "$kam_tls_port" "$ca" "$tls_name" "$tls_suites")" \
        >>"$tlsinfo_file"
    record_affinity kamailio
    measure_transports kamailio 127.0.0.1 "$kam_port" "$kam_tls_port"
    bench_stop "$resp_pid" 10
    resp_pid=""
}

measure_confnode() {
    local conf=$tmp/confnode.conf node_pin="" i sep
    # with --pin split the node must stay inside its taskset mask, as Kamailio does
    [[ $pin == split ]] && node_pin=" pin_workers = false;"
    if [[ ! -x $node_bin ]]; then
        bench_log "confnode binary not found at $node_bin: measuring Kamailio only"
        node_missing=1
        return 0
    fi
    ports_free "confnode:$node_port" "confnode:$node_tls_port" "confnode:$admin_port" ||
        { exit_status=1; return 0; }
    # identify the binary as it is when it starts (it may be rebuilt during the run)
    node_version="$node_bin (built $(date -u -r "$node_bin" +%Y-%m-%dT%H:%M:%SZ),"
    node_version+=" sha256 $(sha256sum "$node_bin" | cut -c1-16)), work tree"
    node_version+=" $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    cat >"$conf" <<EOF
node: { name = "bench"; workers = $workers; log_level = "warn";$node_pin };
sip: { listen = "127.0.0.1"; udp_port = $node_port; tcp_port = $node_port;
       tls_port = $node_tls_port; domain = "example.test"; };
tls: { certificate = "$cert"; key = "$key"; ca = "$ca"; verify_client = "none"; };
media: { address = "127.0.0.1"; port_min = $media_min; port_max = $media_max; };
admin: { listen = "127.0.0.1"; port = $admin_port; };
EOF
    if ((rooms > 1)); then
        {
            echo "vmrs = ("
            for ((i = 1; i <= rooms; i++)); do
                sep=","
                ((i == rooms)) && sep=""
                echo "  { alias = \"meet$i@example.test\"; name = \"Bench room $i\"; }$sep"
            done
            echo ");"
        } >>"$conf"
    else
        echo 'vmrs = ( { alias = "meet@example.test"; name = "Bench room"; } );' >>"$conf"
    fi
    bench_spawn "$tmp/confnode.log" "${pin_resp[@]}" "$node_bin" run -c "$conf"
    resp_pid=$BENCH_LAST_PID
    if ! bench_wait_listen "$resp_pid" udp "$node_port" 15 ||
        ! bench_wait_listen "$resp_pid" tcp "$node_tls_port" 15; then
        tail -n 20 "$tmp/confnode.log" >&2
        bench_log "confnode did not start (config: $conf)"
        bench_stop "$resp_pid"
        exit_status=1
        return 0
    fi
    sleep 1
    echo "confnode: $(bench_tls_params 127.0.0.1 "$node_tls_port" "$ca" "$tls_name" "$tls_suites")" \
        >>"$tlsinfo_file"
    record_affinity confnode
    measure_transports confnode 127.0.0.1 "$node_port" "$node_tls_port"
    if ! bench_alive "$resp_pid"; then
        bench_log "confnode exited during the run:"
        tail -n 20 "$tmp/confnode.log" >&2
        exit_status=1
    fi
    bench_stop "$resp_pid" 10
    resp_pid=""
}

# --- run ---------------------------------------------------------------------------------
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
machine_before=$(bench_machine)
bench_log "responder CPUs: ${resp_cpus:-any}, load generator CPUs: ${load_cpus:-any}"
for r in $responders; do
    case $r in
    kamailio) measure_kamailio ;;
    confnode) measure_confnode ;;
    esac
done
loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------------------
kam_version=$({ kamailio -v 2>/dev/null || true; } | sed -n 's/^version: *//p' | head -n 1)
sipp_version=$({ sipp -v 2>/dev/null || true; } | tr -d '\r' | sed -n 's/^ *\(SIPp v[^ ]*\).*/\1/p' | head -n 1)
stunnel_version=$({ stunnel4 -version 2>&1 || true; } | sed -n 's/^\(stunnel [0-9.]*\).*/\1/p' | head -n 1)

report() {
    echo "# sip_rate: SIP calls per second with 0 failures, and responder CPU per call"
    echo "started: $started"
    echo "command: bench/sip_rate.sh ${cmdline}"
    echo "$machine_before"
    echo "loadavg after: $loadavg_after"
    echo "versions: kamailio $kam_version; $sipp_version; $(openssl version); $stunnel_version"
    echo "confnode: $node_version"
    echo "workers: $workers (confnode workers; Kamailio children and tcp_children)"
    echo "confnode media ports: $media_min-$media_max"
    echo "pinning: ${pin}: responder CPUs ${resp_cpus:-any}; sipp and stunnel CPUs ${load_cpus:-any};" \
        "nice $nice_val"
    sed 's/^/affinity: /' "$affinity_file"
    sed 's/^/tls: /' "$tlsinfo_file"
    echo "steps: rates $rate_start doubling to $rate_max, then $refine bisection step(s);" \
        "each step rate x $step_seconds calls, CPU read $settle s after the step ends;" \
        "each step waits up to $quiet_wait s for other jobs to use < $quiet_pct% of a core"
    echo "call: sipp built-in uac (INVITE, 100, 200+SDP, ACK, BYE, 200), -d 0;" \
        "tls = one persistent TLS connection via stunnel, tls-per-call = one per call"
    if ((rooms > 1)); then
        echo "rooms: calls spread in turn over $rooms rooms, meet1..meet$rooms"
    else
        echo "rooms: every call to meet (sipp -s meet)"
    fi
    echo
    printf '%-13s %-9s %10s %13s %13s %13s %13s\n' transport responder "max cps" \
        "CPU-s/call" "calls/CPU-s" "stunnel s/c" "sipp s/c"
    local t line
    while read -r line; do
        # shellcheck disable=SC2086 # fields are single words
        printf '%-13s %-9s %10s %13s %13s %13s %13s\n' $line
    done <"$summary_file"
    echo
    for t in $transports; do
        awk -v t="$t" '$1 == t && $2 == "confnode" && $5 ~ /^[0-9.]+$/ { cn = $5; cr = $3 }
            $1 == t && $2 == "kamailio" && $5 ~ /^[0-9.]+$/ { km = $5; kr = $3 }
            END {
                if (cn != "" && km != "") {
                    gsub(/>=/, "", cr); gsub(/>=/, "", kr)
                    printf "ratio %s: confnode/kamailio calls per CPU-second %.2f, max rate %.2f\n",
                        t, cn / km, (kr > 0 ? cr / kr : 0)
                } else {
                    printf "ratio %s: n/a (a responder was not measured)\n", t
                }
            }' "$summary_file"
    done
    echo
    echo "steps (CPU-s over the step and its settle time; resp%/load% = that CPU over the"
    echo "sipp run's duration, in % of one core, so deferred work can push resp% past 100;"
    echo "load = sipp + stunnel; other% = the rest of the machine"
    echo "over step and settle time, in % of one core; retr = sipp retransmissions;"
    echo "late = messages sipp got for calls already over, mostly the responder resending a"
    echo "2xx whose ACK was late):"
    cat "$steps_file"
}

cmdline=""
# the options as given are not kept after parsing; show the effective settings instead
cmdline="--responders '$responders' --transports '$transports' --start $rate_start --max $rate_max"
cmdline+=" --step-seconds $step_seconds --refine $refine --settle $settle --workers $workers --pin $pin"
cmdline+=" --nice $nice_val --quiet-wait $quiet_wait --quiet-pct $quiet_pct"

echo
report | tee "$tmp/report.txt"
if ((save)); then
    mkdir -p "$results_dir"
    out=$results_dir/sip_rate-$(date -u +%Y%m%d-%H%M%S).txt
    cp "$tmp/report.txt" "$out"
    bench_log "saved $out"
fi

if ((node_missing)) && [[ " $responders " == *" confnode "* ]]; then
    bench_log "confnode was not measured (binary missing)"
    exit 2
fi
exit "$exit_status"
