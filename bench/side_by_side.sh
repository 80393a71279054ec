#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# side_by_side.sh: in one invocation on one machine, the same confbench workload against
# confnode and against Kamailio (bench/kamailio/kamailio.cfg, a transaction-stateful
# responder), confbench next to sipp as a generator, TLS handshakes next to
# openssl s_server (tls_handshake.sh), memory per idle TLS connection (idle_conns.sh)
# and the SRTP relay next to rtpengine (media_relay.sh); prints one table of figures
# and ratios against the project's goals. Loopback only, every loop bounded, every
# process it starts stopped on exit. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

usage() {
    cat <<'EOF'
Usage: bench/side_by_side.sh [options]

  --node PATH          confnode binary (default build/bin/confnode; env CONFNODE_BIN)
  --confbench PATH     confbench binary (default: next to --node; env CONFBENCH_BIN)
  --parts LIST         what to run, from: sip generator handshake idle media
                       (default: all five)
  --transports LIST    SIP transports, from udp tls (default "udp tls")
  --start N            first rate step, calls/s (default 500)
  --max N              highest rate step (default 32000); steps double, then bisect
  --step-seconds N     each step makes N x rate calls (default 5)
  --refine N           bisection steps after the first failure (default 3)
  --settle N           seconds after a step before the responder's CPU is read (default 6)
  --workers N          confnode workers, Kamailio children/tcp_children (default 2)
  --rooms N            rooms the calls are spread over, one generator process each
                       (default 16; a room's conference holds 32 participants)
  --conns N            TLS connections each generator process keeps open (default 1)
  --gen-rate N         rate of the sipp-vs-confbench comparison (default: 80% of
                       confnode's UDP maximum, at most 4000)
  --port-base N        Kamailio on N (UDP/TCP) and N+1 (TLS), confnode on N+10 and
                       N+11, its admin HTTP on N+19; the other scripts pick their own
                       ports (default 5170)
  --nice N             nice value of responders and generators (default -20: the figures
                       are about this code, not about other jobs on the machine; 0 = as is)
  --no-profile         skip the perf profile of confnode over TLS
  --quick              shorter runs of every part (for trying the script)
  --results-dir DIR    where results go (default bench/results)
  --no-save            write no results files
  --keep-tmp           keep the temp dir (configs, logs, JSON of every step)
  -h, --help           this text

Exit status: 0 when everything asked for was measured, 1 when something failed or
could not be measured (the table says what), 2 on a usage error.
EOF
}

node_bin=${CONFNODE_BIN:-$repo/build/bin/confnode}
cb_bin=${CONFBENCH_BIN:-}
parts="sip generator handshake idle media"
transports="udp tls"
rate_start=500
rate_max=32000
step_seconds=5
refine=3
settle=6
workers=2
conns=1
rooms=16
gen_rate=""
profile=1
nice_n=-20
quick=0
results_dir=$here/results
save=1
port_base=5170
tls_name=sip.example.test

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

while (($# > 0)); do
    opt=$1
    case $opt in
    -h | --help) usage; exit 0 ;;
    --no-save) save=0; shift; continue ;;
    --keep-tmp) BENCH_KEEP_TMP=1; shift; continue ;;
    --no-profile) profile=0; shift; continue ;;
    --quick) quick=1; shift; continue ;;
    esac
    (($# >= 2)) || { usage >&2; exit 2; }
    val=$2
    shift 2
    case $opt in
    --node) node_bin=$val ;;
    --confbench) cb_bin=$val ;;
    --parts) parts=$val ;;
    --transports) transports=$val ;;
    --start) rate_start=$val ;;
    --max) rate_max=$val ;;
    --step-seconds) step_seconds=$val ;;
    --refine) refine=$val ;;
    --settle) settle=$val ;;
    --workers) workers=$val ;;
    --conns) conns=$val ;;
    --rooms) rooms=$val ;;
    --gen-rate) gen_rate=$val ;;
    --nice) nice_n=$val ;;
    --port-base) port_base=$val ;;
    --results-dir) results_dir=$val ;;
    *) echo "unknown option $opt (see --help)" >&2; exit 2 ;;
    esac
done
for v in rate_start rate_max step_seconds refine settle workers conns rooms port_base; do
    is_uint "${!v}" || { echo "--${v//_/-} must be a non-negative integer" >&2; exit 2; }
done
[[ $nice_n =~ ^-?[0-9]+$ ]] || { echo "--nice must be an integer" >&2; exit 2; }
[[ -z $gen_rate ]] || is_uint "$gen_rate" || { echo "--gen-rate must be an integer" >&2; exit 2; }
((rate_start >= 1 && rate_max >= rate_start && step_seconds >= 1 && step_seconds <= 60)) ||
    { echo "need 1 <= --start <= --max and --step-seconds 1..60" >&2; exit 2; }
((refine <= 6 && settle <= 60 && workers >= 1 && workers <= 64 && conns >= 1 && conns <= 64 &&
    rooms >= 1 && rooms <= 60)) ||
    { echo "--refine 0..6, --settle 0..60, --workers 1..64, --conns 1..64" >&2; exit 2; }
for p in $parts; do
    case $p in sip | generator | handshake | idle | media) ;; *) echo "unknown part $p" >&2; exit 2 ;; esac
done
for t in $transports; do
    case $t in udp | tls) ;; *) echo "unknown transport $t" >&2; exit 2 ;; esac
done
((quick)) && { step_seconds=2; refine=1; settle=3; }
((port_base >= 1024 && port_base <= 65000)) || { echo "--port-base must be 1024..65000" >&2; exit 2; }
kam_port=$port_base
kam_tls_port=$((port_base + 1))
node_port=$((port_base + 10))
node_tls_port=$((port_base + 11))
admin_port=$((port_base + 19))

[[ $node_bin == /* ]] || node_bin=$PWD/$node_bin
[[ -n $cb_bin ]] || cb_bin=$(dirname "$node_bin")/confbench
[[ $cb_bin == /* ]] || cb_bin=$PWD/$cb_bin
bin_dir=$(dirname "$node_bin")
has_part() { [[ " $parts " == *" $1 "* ]]; }

bench_need kamailio:kamailio sipp:sip-tester openssl:openssl taskset:util-linux \
    timeout:coreutils ss:iproute2 pgrep:procps awk:gawk jq:jq
[[ -x $node_bin ]] || bench_die "confnode binary not found: $node_bin (build it, or --node)"
[[ -x $cb_bin ]] || bench_die "confbench binary not found: $cb_bin (or --confbench)"
compgen -G '/usr/lib/*/kamailio/modules/tls.so' >/dev/null ||
    bench_die "Kamailio tls module missing (apt-get install kamailio-tls-modules)"

clk_tck=$(getconf CLK_TCK)
exit_status=0
bench_make_tmp side_by_side
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
tmp=$BENCH_TMP
results_dir=$(realpath -m "$results_dir")
cd "$tmp"
ulimit -n 65536 2>/dev/null || true
ulimit -c 0 # a crashing server with a 1 GB shared-memory segment would write a 1 GB core

# --- CPU placement: responder on CPU 0 (or the first nproc-1), generators on the rest ----
ncpu=$(nproc)
pin_resp=()
pin_load=()
resp_cpus=any
load_cpus=any
if ((ncpu >= 2)); then
    nresp=$((workers < ncpu - 1 ? workers : ncpu - 1))
    resp_cpus=0
    ((nresp > 1)) && resp_cpus="0-$((nresp - 1))"
    load_cpus=$nresp
    ((nresp < ncpu - 1)) && load_cpus="$nresp-$((ncpu - 1))"
    pin_resp=(taskset -c "$resp_cpus")
    pin_load=(taskset -c "$load_cpus")
fi
if ((nice_n != 0)); then
    pin_resp=(nice -n "$nice_n" "${pin_resp[@]}")
    pin_load=(nice -n "$nice_n" "${pin_load[@]}")
fi

bench_make_pki "$tmp/pki" "$tls_name"
cert=$tmp/pki/node.crt
key=$tmp/pki/node.key
ca=$tmp/pki/ca.crt

summary=$tmp/summary.txt # key=value lines every part adds to
steps=$tmp/steps.txt
: >"$summary"
printf '%-9s %-9s %-9s %6s %7s %7s %6s %5s %8s %10s %8s %5s %5s %6s  %s\n' \
    transport responder generator rate calls ok failed retr achieved resp_cpu_s gen_cpu_s \
    resp% gen% other% verdict >"$steps"
put() { printf '%s=%s\n' "$1" "$2" >>"$summary"; }
get() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$summary"; }

resp_pid=""

# --- responders ------------------------------------------------------------------------
ports_free() {
    local p
    for p in "$@"; do
        if bench_listening udp "$p" || bench_listening tcp "$p"; then
            bench_log "port $p is in use; pick others with --port-base"
            return 1
        fi
    done
}

start_kamailio() {
    local -a args=(-f "$here/kamailio/kamailio.cfg" -Y "$tmp/kamailio-run" -m 1024 -M 32
        -A "KAM_ADDR=\"127.0.0.1\"" -A "KAM_PORT=$kam_port" -A "KAM_TLS_PORT=$kam_tls_port"
        -A "KAM_CHILDREN=$workers" -A WITH_TLS -A "KAM_TLS_CERT=\"$cert\""
        -A "KAM_TLS_KEY=\"$key\"" -A "KAM_TLS_CA=\"$ca\"")
    mkdir -p "$tmp/kamailio-run"
    ports_free "$kam_port" "$kam_tls_port" || return 1
    kamailio -c "${args[@]}" >"$tmp/kamailio-check.log" 2>&1 ||
        { tail -n 5 "$tmp/kamailio-check.log" >&2; return 1; }
    bench_spawn "$tmp/kamailio.log" "${pin_resp[@]}" kamailio -DD -E "${args[@]}"
    resp_pid=$BENCH_LAST_PID
    bench_wait_listen "$resp_pid" udp "$kam_port" 15 &&
        bench_wait_listen "$resp_pid" tcp "$kam_tls_port" 15 ||
        { tail -n 5 "$tmp/kamailio.log" >&2; bench_stop "$resp_pid"; resp_pid=""; return 1; }
    sleep 1
    warm_up "$kam_port"
}

start_confnode() {
    local conf=$tmp/confnode.conf
    ports_free "$node_port" "$node_tls_port" "$admin_port" || return 1
    cat >"$conf" <<EOF
node: { name = "bench"; workers = $workers; log_level = "warn"; pin_workers = false; };
sip: { listen = "127.0.0.1"; udp_port = $node_port; tcp_port = $node_port;
       tls_port = $node_tls_port; domain = "example.test"; };
tls: { certificate = "$cert"; key = "$key"; ca = "$ca"; verify_client = "none"; };
media: { address = "127.0.0.1"; port_min = 20000; port_max = 31999; media_timeout = 0; };
limits: { max_transactions = 4000000; max_dialogs = 1000000; };
admin: { listen = "127.0.0.1"; port = $admin_port; };
vmrs = ( $(for ((k = 1; k <= rooms; k++)); do
        printf '{ alias = "room%d@example.test"; name = "Bench room %d"; }%s' "$k" "$k" \
            "$( ((k < rooms)) && echo ", ")"; done) );
EOF
    bench_spawn "$tmp/confnode.log" "${pin_resp[@]}" "$node_bin" run -c "$conf"
    resp_pid=$BENCH_LAST_PID
    bench_wait_listen "$resp_pid" udp "$node_port" 15 &&
        bench_wait_listen "$resp_pid" tcp "$node_tls_port" 15 ||
        { tail -n 5 "$tmp/confnode.log" >&2; bench_stop "$resp_pid"; resp_pid=""; return 1; }
    sleep 1
    warm_up "$node_port"
}

# warm_up PORT: up to 10 short UDP runs until one passes, so that the first measured step
# does not see a responder still finishing its start-up.
warm_up() {
    local i
    for ((i = 0; i < 10; i++)); do
        "$cb_bin" "127.0.0.1:$1" -u room1 -r 20 -n 10 --timeout 2s --drain 3s -q \
            >"$tmp/warmup.out" 2>&1 && return 0
        sleep 1
    done
    bench_log "warm-up calls to port $1 kept failing: $(tail -n 1 "$tmp/warmup.out")"
}

stop_responder() {
    [[ -n $resp_pid ]] && bench_stop "$resp_pid" 10
    resp_pid=""
}

# --- one step --------------------------------------------------------------------------
# run_step RESPONDER TRANSPORT GENERATOR RATE PORT: one bounded run of the generator at
# RATE calls/s for --step-seconds; sets step_ok, step_succ, step_cpu (responder CPU-s),
# step_gen_cpu, step_gen_pct.
run_step() {
    local responder=$1 transport=$2 gen=$3 rate=$4 port=$5
    local calls=$((rate * step_seconds)) limit=$((rate * 2 < 200 ? 200 : rate * 2))
    local json=$tmp/step-$responder-$transport-$gen-$rate.json out rc=0 tfile r0 r1 m0 m1 t0 t1 t2
    local gu gs succ=0 failed=0 retr=0 elapsed=0 achieved=0 other verdict why="" unfinished=0 dropped=0
    local budget=$((step_seconds * 3 + 20))
    out=${json%.json}.out
    tfile=${json%.json}.time
    # one generator process per room, the rate split over them, all on the generator CPUs
    local k n_rooms=$rooms kr kc
    ((rate < n_rooms * 2)) && n_rooms=1
    local -a pids=() cmd=()
    m0=$(bench_busy_ticks)
    r0=$(bench_tree_ticks "$resp_pid")
    t0=$(date +%s.%N)
    local TIMEFORMAT='%U %S'
    {
        time {
            for ((k = 1; k <= n_rooms; k++)); do
                kr=$((rate / n_rooms + (k <= rate % n_rooms ? 1 : 0)))
                kc=$((kr * step_seconds))
                if [[ $gen == confbench ]]; then
                    cmd=("$cb_bin" "127.0.0.1:$port" -t "$transport" -u "room$k" -r "$kr"
                        -d "$step_seconds" -m $((limit / n_rooms + 100)) --timeout 5s --drain 10s
                        -q --json "${json%.json}-$k.json")
                    if [[ $transport == tls ]]; then
                        cmd+=(--ca "$ca" --tls-name "$tls_name" -c "$conns")
                    else
                        cmd+=(-b "127.0.0.$((2 * k)),127.0.0.$((2 * k + 1))")
                    fi
                else
                    # sipp's built-in uac (INVITE, 100, 200+SDP, ACK, BYE, 200), UDP only
                    cmd=(sipp -sn uac -s "room$k" "127.0.0.1:$port" -i "127.0.0.$((2 * k))" -t u1
                        -r "$kr" -m "$kc" -l $((limit / n_rooms + 100)) -d 0 -nostdin
                        -timeout "${budget}s" -timeout_error -recv_timeout 5000
                        -trace_stat -stf "${json%.json}-$k.csv" -fd 60)
                fi
                "${pin_load[@]}" timeout -k 5 "$budget" "${cmd[@]}" >"${out%.out}-$k.out" 2>&1 &
                pids+=($!)
            done
            : >"${out%.out}.rcs"
            for k in "${pids[@]}"; do
                wait "$k" || echo $? >>"${out%.out}.rcs"
            done
        }
    } 2>"$tfile"
    t1=$(date +%s.%N)
    rc=$(sort -n "${out%.out}.rcs" 2>/dev/null | tail -n 1)
    rc=${rc:-0}
    sleep "$settle"
    r1=$(bench_tree_ticks "$resp_pid")
    m1=$(bench_busy_ticks)
    t2=$(date +%s.%N)
    read -r gu gs < <(grep -E '^[0-9.]+ [0-9.]+$' "$tfile" | tail -n 1) || { gu=0; gs=0; }
    local -a jsons=()
    if [[ $gen == confbench ]]; then
        for ((k = 1; k <= n_rooms; k++)); do
            [[ -s ${json%.json}-$k.json ]] && jsons+=("${json%.json}-$k.json")
        done
    fi
    if [[ $gen == confbench ]] && ((${#jsons[@]} == n_rooms)); then
        read -r succ failed retr elapsed unfinished dropped < <(jq -rs 'map(.totals) |
            [(map(.succeeded) | add), (map(.failed) | add), (map(.retransmissions) | add),
             (map(.elapsed_s) | max), (map(.unfinished) | add),
             (map(.launches_dropped_max_calls + .launches_dropped_late) | add)] |
            map(tostring) | join(" ")' "${jsons[@]}")
        why=$(jq -rs '[map(.failures.by_reason // {} | to_entries[]) | group_by(.key)[] |
            {key: .[0].key, value: (map(.value) | add)} | select(.value > 0) |
            "\(.key)=\(.value)"] + [map(.failures.by_code // {} | to_entries[]) |
            group_by(.key)[] | {key: .[0].key, value: (map(.value) | add)} |
            select(.value > 0) | "code\(.key)=\(.value)"] | join(",")' "${jsons[@]}" 2>/dev/null || true)
    elif [[ $gen == sipp ]]; then
        local a b c e
        for ((k = 1; k <= n_rooms; k++)); do
            if [[ ! -s ${json%.json}-$k.csv ]]; then
                failed=$((failed + rate / n_rooms * step_seconds))
                continue
            fi
            read -r a b c e < <(tail -n 1 "${json%.json}-$k.csv" | awk -F';' '{
                n = split($1, x, "\t"); s = x[n]; n = split($3, y, "\t")
                printf "%d %d %d %.3f\n", $16, $18, $58, y[n] - s }')
            succ=$((succ + a)) failed=$((failed + b)) retr=$((retr + c))
            elapsed=$(awk -v x="$elapsed" -v y="$e" 'BEGIN { print (y > x ? y : x) }')
        done
    else
        failed=$calls
    fi
    achieved=$(awk -v s="$succ" -v e="$elapsed" 'BEGIN { printf "%.0f", (e > 0 ? s / e : 0) }')
    step_succ=$succ
    step_cpu=$(awk -v d=$((r1 - r0)) -v h="$clk_tck" 'BEGIN { printf "%.2f", d / h }')
    step_gen_cpu=$(awk -v u="$gu" -v s="$gs" 'BEGIN { printf "%.2f", u + s }')
    local wall resp_pct
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    resp_pct=$(awk -v c="$step_cpu" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? 100 * c / w : 0) }')
    step_gen_pct=$(awk -v c="$step_gen_cpu" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? 100 * c / w : 0) }')
    other=$(awk -v m=$((m1 - m0)) -v r=$((r1 - r0)) -v g="$step_gen_cpu" -v h="$clk_tck" \
        -v a="$t0" -v b="$t2" 'BEGIN { o = (m - r) / h - g; if (o < 0) o = 0
            printf "%.0f", (b > a ? 100 * o / (b - a) : 0) }')
    step_ok=0
    verdict=pass
    if ((rc != 0)); then
        verdict="fail(exit $rc${why:+: $why})"
    elif ((failed != 0 || succ != calls || unfinished != 0 || dropped != 0)); then
        verdict="fail($failed failed, $unfinished unfinished, $dropped not launched${why:+: $why})"
    elif awk -v e="$elapsed" -v d="$step_seconds" 'BEGIN { exit !(e > d * 1.1 + 0.5) }'; then
        # every call was made on time, but answering them took longer than the step
        # (+10% + 0.5 s): the responder did not keep up (retransmissions, queues)
        verdict="fail(calls took ${elapsed}s > ${step_seconds}s + 10% + 0.5s)"
    else
        step_ok=1
    fi
    printf '%-9s %-9s %-9s %6d %7d %7d %6d %5d %8d %10s %8s %5s %5s %6s  %s\n' \
        "$transport" "$responder" "$gen" "$rate" "$calls" "$succ" "$failed" "$retr" "$achieved" \
        "$step_cpu" "$step_gen_cpu" "$resp_pct" "$step_gen_pct" "$other" "$verdict" >>"$steps"
    bench_log "$responder/$transport/$gen $rate/s: $succ/$calls ok, responder $step_cpu CPU-s," \
        "generator $step_gen_pct% of a core, $verdict"
    ((step_ok)) || quiesce
}

# quiesce: after a failed step, waits (at most 30 s) until the responder is idle.
quiesce() {
    local i a b
    for ((i = 0; i < 30; i++)); do
        a=$(bench_tree_ticks "$resp_pid")
        sleep 1
        b=$(bench_tree_ticks "$resp_pid")
        (((b - a) * 20 <= clk_tck)) && break
    done
}

# try_step RESPONDER TRANSPORT RATE PORT: a confbench step; a failed step is run once
# more (after run_step's quiesce) so that one disturbed step on a shared machine does not
# end a ramp. Both runs appear in the step table; step_ok is the second's.
try_step() {
    run_step "$1" "$2" confbench "$3" "$4"
    ((step_ok)) && return 0
    bench_log "$1/$2 $3/s failed: running it once more"
    run_step "$1" "$2" confbench "$3" "$4"
}

# ramp RESPONDER TRANSPORT PORT: doubles from --start until a step fails, bisects
# --refine times, and records the best passing step as sip.<responder>.<transport>.*.
ramp() {
    local responder=$1 transport=$2 port=$3 rate lo hi=0 mid i
    local best=0 best_cpu=0 best_succ=0 best_gen=0 best_gen_pct=0 hit_max=0 k=sip.$1.$2
    try_step "$responder" "$transport" 20 "$port"
    if ((step_ok == 0)); then
        bench_log "$responder/$transport: smoke test failed"
        put "$k.max_cps" broken
        exit_status=1
        return 0
    fi
    rate=$rate_start
    while ((rate <= rate_max)); do
        try_step "$responder" "$transport" "$rate" "$port"
        ((step_ok)) || { hi=$rate; break; }
        best=$rate best_cpu=$step_cpu best_succ=$step_succ best_gen=$step_gen_cpu
        best_gen_pct=$step_gen_pct
        ((rate == rate_max)) && { hit_max=1; break; }
        rate=$((rate * 2 > rate_max ? rate_max : rate * 2))
    done
    if ((hi > 0 && best > 0)); then
        lo=$best
        for ((i = 0; i < refine; i++)); do
            mid=$(((lo + hi) / 2 / 10 * 10))
            ((mid > lo && (mid - lo) * 20 >= lo)) || break
            try_step "$responder" "$transport" "$mid" "$port"
            if ((step_ok)); then
                lo=$mid best=$mid best_cpu=$step_cpu best_succ=$step_succ best_gen=$step_gen_cpu
                best_gen_pct=$step_gen_pct
            else
                hi=$mid
            fi
        done
    fi
    put "$k.max_cps" "$( ((hit_max)) && echo ">=")$best"
    put "$k.first_fail" "$hi"
    if ((best > 0)); then
        put "$k.cpu_per_call" "$(awk -v c="$best_cpu" -v n="$best_succ" 'BEGIN { printf "%.3g", c / n }')"
        put "$k.calls_per_cpu_s" "$(awk -v c="$best_cpu" -v n="$best_succ" 'BEGIN { printf "%.0f", (c > 0 ? n / c : 0) }')"
        put "$k.gen_cpu_per_call" "$(awk -v c="$best_gen" -v n="$best_succ" 'BEGIN { printf "%.3g", c / n }')"
        put "$k.gen_pct_at_max" "$best_gen_pct"
    fi
}

# profile_tls RATE: perf samples of confnode while confbench runs RATE calls/s over TLS.
profile_tls() {
    local rate=$1 pdata=$tmp/perf.data
    if ! command -v perf >/dev/null; then
        put profile "not run: perf missing (apt-get install linux-perf)"
        return 0
    fi
    local ev=cpu-clock
    # no PMU (a VM): perf would fall back to cpu-clock anyway; say so in the report
    [[ $(perf stat -e instructions true 2>&1 || true) == *"not supported"* ]] || ev=cycles
    bench_spawn "$tmp/perf.log" perf record -e "$ev" -g -F 999 -p "$resp_pid" -o "$pdata" -- \
        sleep "$((step_seconds + 1))"
    local ppid=$BENCH_LAST_PID i
    sleep 0.5
    run_step confnode tls confbench "$rate" "$node_tls_port"
    for ((i = 0; i < 100; i++)); do bench_alive "$ppid" || break; sleep 0.1; done
    bench_stop "$ppid"
    if [[ ! -s $pdata ]]; then
        put profile "not run: perf record failed ($(tail -n 1 "$tmp/perf.log"))"
        return 0
    fi
    {
        echo "perf record -e $ev -g of confnode during one more TLS step at $rate calls/s (the"
        echo "last 'tls confnode' line of the step table), $step_seconds s:"
        echo "by shared object:"
        perf report -i "$pdata" --no-children --sort dso --stdio 2>/dev/null |
            grep -E '^ +[0-9.]+%' | head -n 12 || true
        echo "top functions (self):"
        perf report -i "$pdata" --no-children --sort dso,symbol --stdio 2>/dev/null |
            grep -E '^ +[0-9.]+%' | head -n 30 || true
    } >"$tmp/profile.txt"
    put profile "see below"
}

measure_sip() {
    local r t port best
    for r in kamailio confnode; do
        # a fresh responder per transport: nothing one ramp left behind (queues, state)
        # is charged to the next
        for t in $transports; do
            if [[ $r == kamailio ]]; then
                start_kamailio || { bench_log "kamailio did not start"; exit_status=1; continue; }
                [[ $t == tls ]] && put tls.kamailio "$(bench_tls_params 127.0.0.1 "$kam_tls_port" "$ca" "$tls_name")"
                port=$kam_port
            else
                start_confnode || { bench_log "confnode did not start"; exit_status=1; continue; }
                [[ $t == tls ]] && put tls.confnode "$(bench_tls_params 127.0.0.1 "$node_tls_port" "$ca" "$tls_name")"
                port=$node_port
            fi
            [[ $t == tls ]] && port=$((port + 1))
            ramp "$r" "$t" "$port"
            if [[ $r == confnode ]]; then
                node_state "after the $t ramp"
                if [[ $t == tls ]] && ((profile)); then
                    best=$(get sip.confnode.tls.max_cps)
                    best=${best#>=}
                    is_uint "$best" && ((best > 0)) && profile_tls "$best"
                fi
                if ! bench_alive "$resp_pid"; then
                    bench_log "confnode exited during the run"
                    exit_status=1
                fi
            fi
            stop_responder
        done
    done
}

# node_state WHEN: confnode's live calls, dialogs, transactions, media legs and
# conferences (admin /metrics), for the report.
node_state() {
    local m
    m=$(timeout 5 python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$admin_port/metrics', timeout=3).read().decode())" 2>/dev/null |
        awk '/^confnode_(calls_active|dialogs|transactions|media_legs|media_conferences|ring_drops_total)\{/ {
            sub(/^confnode_/, ""); printf "%s%s", sep, $0; sep = ", " }' || true)
    echo "confnode $1: ${m:-metrics unavailable}" >>"$tmp/state.txt"
}

# measure_generator: sipp and confbench, one after the other, the same UDP call
# workload against confnode; what each costs per call and whether both pass.
measure_generator() {
    local rate=$gen_rate best g
    if [[ -z $rate ]]; then
        best=$(get sip.confnode.udp.max_cps)
        best=${best#>=}
        is_uint "${best:-x}" && ((best > 0)) || best=2500
        rate=$((best * 8 / 10 / 100 * 100))
        ((rate > 4000)) && rate=4000
        ((rate < 100)) && rate=100
    fi
    start_confnode || { bench_log "confnode did not start"; exit_status=1; return 0; }
    local i=0
    for g in confbench sipp confbench sipp; do
        i=$((i + 1))
        run_step confnode udp "$g" "$rate" "$node_port"
        put "gen.$i.$g.ok" "$( ((step_ok)) && echo pass || echo fail)"
        put "gen.$i.$g.gen_cpu_per_call" "$(awk -v c="$step_gen_cpu" -v n="$step_succ" 'BEGIN { printf "%.3g", (n > 0 ? c / n : 0) }')"
        put "gen.$i.$g.gen_pct" "$step_gen_pct"
        put "gen.$i.$g.resp_cpu_per_call" "$(awk -v c="$step_cpu" -v n="$step_succ" 'BEGIN { printf "%.3g", (n > 0 ? c / n : 0) }')"
    done
    put gen.rate "$rate"
    stop_responder
}

# run_part NAME SCRIPT ARGS...: runs a sibling script with --summary, merging its lines.
run_part() {
    local name=$1 script=$2 rc=0
    shift 2
    local -a save_args=(--no-save)
    ((save)) && save_args=(--results-dir "$results_dir")
    bench_log "running $script"
    "$here/$script" --summary "$tmp/$name.summary" "${save_args[@]}" "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
    [[ -s $tmp/$name.summary ]] && cat "$tmp/$name.summary" >>"$summary"
    put "$name.exit" "$rc"
    ((rc == 0)) || { exit_status=1; tail -n 3 "$tmp/$name.err" >&2 || true; }
}

# --- run -------------------------------------------------------------------------------
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
machine=$(bench_machine)
bench_log "responder CPUs $resp_cpus, generator CPUs $load_cpus"
has_part sip && measure_sip
has_part generator && measure_generator
quick_args=()
((quick)) && quick_args=(--quick)
has_part handshake && run_part handshake tls_handshake.sh --node "$node_bin" \
    --confbench "$cb_bin" --nice "$nice_n" "${quick_args[@]}"
has_part idle && run_part idle idle_conns.sh --node "$node_bin" \
    --helper "$bin_dir/idle_conns_bench" "${quick_args[@]}"
has_part media && run_part media media_relay.sh --node "$node_bin" \
    --helper "$bin_dir/srtp_relay_bench" --nice "$nice_n" "${quick_args[@]}"
loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------------------
num() { local v=${1#>=}; [[ $v =~ ^[0-9.]+(e[-+]?[0-9]+)?$ ]] && echo "$v"; }
ratio() { # ratio A B: A/B to 2 decimals, or n/a
    local a b
    a=$(num "${1:-}") b=$(num "${2:-}")
    [[ -n $a && -n $b ]] && awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }' ||
        echo n/a
}
verdict() { # verdict VALUE OP GOAL
    local v
    v=$(num "${1:-}") || true
    [[ -n $v ]] || { echo "not measured"; return; }
    awk -v v="$v" -v op="$2" -v g="$3" 'BEGIN {
        ok = (op == ">=") ? v >= g : v <= g
        if (ok) printf "met (%s %s %s)", v, op, g
        else if (op == ">=") printf "MISSED by %.0f%% (%s < %s)", 100 * (g - v) / g, v, g
        else printf "MISSED by %.0f%% (%s > %s)", 100 * (v - g) / g, v, g }'
}
row() { printf '%-44s %14s %14s %8s  %s\n' "$@"; }

report() {
    local t cn km r
    echo "# side_by_side: confnode next to Kamailio, openssl s_server, rtpengine, libsrtp2"
    echo "started: $started"
    echo "command: bench/side_by_side.sh --parts '$parts' --transports '$transports'" \
        "--start $rate_start --max $rate_max --step-seconds $step_seconds --refine $refine" \
        "--settle $settle --workers $workers --rooms $rooms --conns $conns --nice $nice_n$( ((quick)) && echo " --quick")"
    echo "$machine"
    echo "loadavg after: $loadavg_after"
    echo "versions: $( (kamailio -v 2>/dev/null || true) | sed -n 's/^version: *//p' | head -n 1);" \
        "$( (sipp -v 2>/dev/null || true) | tr -d '\r' | sed -n 's/^ *\(SIPp v[^ ]*\).*/\1/p' | head -n 1);" \
        "$(openssl version); rtpengine $( (rtpengine --version 2>&1 || true) | sed -n 's/^Version: *//p')"
    echo "confnode: $node_bin (built $(date -u -r "$node_bin" +%Y-%m-%dT%H:%M:%SZ))," \
        "tree $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "confbench: $cb_bin; workers: $workers; rooms (generator processes): $rooms;" \
        "TLS connections per process: $conns;" \
        "pinning: responder CPUs $resp_cpus, generators CPUs $load_cpus; nice $nice_n"
    grep -E '^tls\.' "$summary" | sed 's/^tls\./tls: /' || true
    echo
    row "figure" "confnode" "other" "ratio" "goal"
    for t in $transports; do
        cn=$(get "sip.confnode.$t.max_cps") km=$(get "sip.kamailio.$t.max_cps")
        row "$t calls/s at 0 failures (vs Kamailio)" "${cn:--}" "${km:--}" "$(ratio "$cn" "$km")" "-"
        cn=$(get "sip.confnode.$t.cpu_per_call") km=$(get "sip.kamailio.$t.cpu_per_call")
        row "$t CPU-s per call (vs Kamailio)" "${cn:--}" "${km:--}" "$(ratio "$km" "$cn")" "(inverse)"
        cn=$(get "sip.confnode.$t.calls_per_cpu_s") km=$(get "sip.kamailio.$t.calls_per_cpu_s")
        r=$(ratio "$cn" "$km")
        local goal=2
        [[ $t == tls ]] && goal=3
        row "$t calls per CPU-second (vs Kamailio)" "${cn:--}" "${km:--}" "$r" "$(verdict "$r" ">=" $goal)"
    done
    km=$(get hs.s_time.per_s)
    cn=$(get hs.confnode.per_s)
    r=$(ratio "$cn" "$km")
    row "TLS handshakes/s: confbench->confnode" "${cn:--}" "${km:--}" "$r" "$(verdict "$r" ">=" 0.8)"
    cn=$(get hs.confnode_stime.per_s)
    r=$(ratio "$cn" "$km")
    row "TLS handshakes/s: s_time->confnode" "${cn:--}" "${km:--}" "$r" "$(verdict "$r" ">=" 0.8)"
    cn=$(get hs.confnode_stime.per_cpu_s) km=$(get hs.s_time.per_cpu_s)
    row "TLS handshakes per server CPU-second" "${cn:--}" "${km:--}" "$(ratio "$cn" "$km")" "(s_time client)"
    cn=$(get idle.confnode.kb_per_conn) km=$(get idle.kamailio.kb_per_conn)
    row "kB per idle TLS connection (vs Kamailio)" "${cn:--}" "${km:--}" "$(ratio "$km" "$cn")" \
        "$(verdict "$cn" "<=" 16) at $(get idle.confnode.conns) conns"
    cn=$(get media.confnode.pps_per_core) km=$(get media.rtpengine.pps_per_core)
    r=$(ratio "$cn" "$km")
    row "SRTP relay packets/s per core (vs rtpengine)" "${cn:--}" "${km:--}" "$r" "$(verdict "$r" ">=" 3)"
    km=$(get media.raw.pairs_per_s)
    r=$(ratio "$cn" "$km")
    row "SRTP relay per core (vs raw libsrtp2 loop)" "${cn:--}" "${km:--}" "$r" "$(verdict "$r" ">=" 0.7)"
    echo
    echo "(ratios are confnode / other, except the CPU-per-X and kB rows, other / confnode: > 1"
    echo " is better for confnode everywhere. 'other' is Kamailio; s_time -> openssl s_server"
    echo " (same certificate, TLS 1.3 suite, 2 s_time clients); Kamailio; rtpengine userspace"
    echo " re-encrypting; the raw libsrtp2 unprotect+protect loop on one core.)"
    local pt
    pt=$(get media.rtpengine-passthrough.pps_per_core)
    [[ -n $pt ]] && echo "rtpengine passing A's SRTP through untouched (no SRTP work): $pt packets/CPU-s"
    [[ -n $(get media.confnode.note) ]] && echo "confnode media: $(get media.confnode.note)"
    [[ -n $(get media.rtpengine.note) ]] && echo "rtpengine media: $(get media.rtpengine.note)"
    if has_part generator; then
        echo
        echo "generators, the same UDP call workload against confnode at $(get gen.rate) calls/s:"
        local i g
        for i in 1 2 3 4; do
            g=confbench
            ((i % 2 == 0)) && g=sipp
            printf '  %-9s %s, generator %s CPU-s/call (%s%% of its core), confnode %s CPU-s/call\n' \
                "$g" "$(get "gen.$i.$g.ok")" "$(get "gen.$i.$g.gen_cpu_per_call")" \
                "$(get "gen.$i.$g.gen_pct")" "$(get "gen.$i.$g.resp_cpu_per_call")"
        done
        for t in $transports; do
            printf '  confbench at the best %s step: %s%% of its core against confnode, %s%% against Kamailio\n' \
                "$t" "$(get "sip.confnode.$t.gen_pct_at_max")" "$(get "sip.kamailio.$t.gen_pct_at_max")"
        done
    fi
    echo
    echo "all figures (key=value):"
    sed 's/^/  /' "$summary"
    if [[ -s $tmp/state.txt ]]; then
        echo
        echo "confnode's own gauges and drop counters after each ramp (settled; a call that"
        echo "ended leaves nothing):"
        sed 's/^/  /' "$tmp/state.txt"
    fi
    if [[ -s $tmp/profile.txt ]]; then
        echo
        cat "$tmp/profile.txt"
    fi
    if has_part sip || has_part generator; then
        echo
        echo "SIP steps (CPU-s over the step and its $settle s settle; resp%/gen% = CPU during the"
        echo "run in % of one core; other% = rest of the machine over step and settle):"
        cat "$steps"
    fi
    local p
    for p in handshake idle media; do
        [[ -s $tmp/$p.out ]] || continue
        echo
        echo "---- $p ----"
        cat "$tmp/$p.out"
    done
}

echo
report | tee "$tmp/report.txt"
if ((save)); then
    mkdir -p "$results_dir"
    out=$results_dir/side_by_side-$(date -u +%Y%m%d-%H%M%S).txt
    cp "$tmp/report.txt" "$out"
    bench_log "saved $out"
fi
exit "$exit_status"
