#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# tls_handshake.sh: full TLS handshakes per second and server CPU per handshake, with
# the same certificate, protocol and suite:
#   (1) openssl s_time -> openssl s_server        (the reference)
#   (2) openssl s_time -> confnode's TLS listener (the same client against the node)
#   (3) confbench -s handshake -> confnode        (TCP + TLS + SIP OPTIONS + close per
#       request, ramped to the highest rate with no failure)
# Servers on the first CPU, clients on the others. Loopback only, bounded, everything
# stopped on exit. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

usage() {
    cat <<'EOF'
Usage: bench/tls_handshake.sh [options]

  --node PATH          confnode binary (default build/bin/confnode; env CONFNODE_BIN)
  --confbench PATH     confbench binary (default: next to --node; env CONFBENCH_BIN)
  --seconds N          length of each s_time run and confbench step (default 10)
  --clients N          parallel s_time processes (default 2)
  --workers N          confnode workers (default 1: one core, like s_server)
  --start N --max N    confbench handshake ramp: first rate and cap (default 100, 6400);
                       rates double, then --refine bisection steps (default 2)
  --ciphersuites S     the one TLS 1.3 suite everyone uses (default TLS_AES_128_GCM_SHA256)
  --nice N             nice value of servers and clients (default -20; 0 = as is)
  --port-base N        s_server on N, confnode TLS on N+1, SIP N+2, admin N+9 (default 5290)
  --summary FILE       append key=value results to FILE (for side_by_side.sh)
  --quick              3 s runs, short ramp
  --results-dir DIR    where the results file goes (default bench/results)
  --no-save            write no results file
  --keep-tmp           keep the temp dir
  -h, --help           this text

Exit status: 0 when all three were measured, 1 otherwise, 2 on a usage error.
EOF
}

node_bin=${CONFNODE_BIN:-$repo/build/bin/confnode}
cb_bin=${CONFBENCH_BIN:-}
seconds=10
clients=2
workers=1
rate_start=100
rate_max=6400
refine=2
suite=TLS_AES_128_GCM_SHA256
nice_n=-20
port_base=5290
summary_out=""
quick=0
results_dir=$here/results
save=1
tls_name=sip.example.test

while (($# > 0)); do
    opt=$1
    case $opt in
    -h | --help) usage; exit 0 ;;
    --no-save) save=0; shift; continue ;;
    --keep-tmp) BENCH_KEEP_TMP=1; shift; continue ;;
    --quick) quick=1; shift; continue ;;
    esac
    (($# >= 2)) || { usage >&2; exit 2; }
    val=$2
    shift 2
    case $opt in
    --node) node_bin=$val ;;
    --confbench) cb_bin=$val ;;
    --seconds) seconds=$val ;;
    --clients) clients=$val ;;
    --workers) workers=$val ;;
    --start) rate_start=$val ;;
    --max) rate_max=$val ;;
    --refine) refine=$val ;;
    --ciphersuites) suite=$val ;;
    --port-base) port_base=$val ;;
    --nice) nice_n=$val ;;
    --summary) summary_out=$val ;;
    --results-dir) results_dir=$val ;;
    *) echo "unknown option $opt (see --help)" >&2; exit 2 ;;
    esac
done
for v in seconds clients workers rate_start rate_max refine port_base; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "${v}: not a non-negative integer" >&2; exit 2; }
done
((seconds >= 1 && seconds <= 120 && clients >= 1 && clients <= 16 && workers >= 1 &&
    workers <= 64 && rate_start >= 1 && rate_max >= rate_start && refine <= 5 &&
    port_base >= 1024 && port_base <= 65000)) || { echo "option out of range (see --help)" >&2; exit 2; }
[[ $nice_n =~ ^-?[0-9]+$ ]] || { echo "--nice must be an integer" >&2; exit 2; }
((quick)) && { seconds=3; rate_max=$((rate_start * 8)); refine=1; }

[[ $node_bin == /* ]] || node_bin=$PWD/$node_bin
[[ -n $cb_bin ]] || cb_bin=$(dirname "$node_bin")/confbench
[[ $cb_bin == /* ]] || cb_bin=$PWD/$cb_bin
[[ -z $summary_out || $summary_out == /* ]] || summary_out=$PWD/$summary_out
bench_need openssl:openssl taskset:util-linux timeout:coreutils ss:iproute2 jq:jq awk:gawk

ss_port=$port_base
node_tls_port=$((port_base + 1))
node_port=$((port_base + 2))
admin_port=$((port_base + 9))
clk_tck=$(getconf CLK_TCK)
exit_status=0

bench_make_tmp tls_handshake
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
tmp=$BENCH_TMP
results_dir=$(realpath -m "$results_dir")
cd "$tmp"
ulimit -n 65536 2>/dev/null || true

ncpu=$(nproc)
pin_srv=()
pin_cli=()
srv_cpus=any
cli_cpus=any
if ((ncpu >= 2)); then
    srv_cpus=0
    cli_cpus=1
    ((ncpu > 2)) && cli_cpus="1-$((ncpu - 1))"
    pin_srv=(taskset -c "$srv_cpus")
    pin_cli=(taskset -c "$cli_cpus")
fi
if ((nice_n != 0)); then
    pin_srv=(nice -n "$nice_n" "${pin_srv[@]}")
    pin_cli=(nice -n "$nice_n" "${pin_cli[@]}")
fi

bench_make_pki "$tmp/pki" "$tls_name"
cert=$tmp/pki/node.crt
key=$tmp/pki/node.key
ca=$tmp/pki/ca.crt

summary=$tmp/summary.txt
: >"$summary"
put() { printf '%s=%s\n' "$1" "$2" >>"$summary"; }
lines=$tmp/lines.txt
: >"$lines"

for p in "$ss_port" "$node_tls_port" "$node_port" "$admin_port"; do
    if bench_listening tcp "$p" || bench_listening udp "$p"; then
        bench_die "port $p is in use (choose --port-base)"
    fi
done

# s_time_run NAME PORT SERVER_PID: --clients s_time processes for --seconds against
# PORT; records NAME.per_s (handshakes per wall second) and NAME.cpu_per_hs_us (server
# CPU) plus the clients' CPU per handshake.
s_time_run() {
    local name=$1 port=$2 spid=$3 i t0 t1 r0 r1 total=0 n ucpu=0 u
    local -a pids=()
    r0=$(bench_tree_ticks "$spid")
    t0=$(date +%s.%N)
    for ((i = 0; i < clients; i++)); do
        "${pin_cli[@]}" timeout -k 5 $((seconds + 30)) openssl s_time -connect "127.0.0.1:$port" \
            -new -time "$seconds" -tls1_3 -ciphersuites "$suite" -CAfile "$ca" -verify 2 \
            >"$tmp/$name-$i.out" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    t1=$(date +%s.%N)
    r1=$(bench_tree_ticks "$spid")
    for ((i = 0; i < clients; i++)); do
        # "866 connections in 1.26s; 687.30 connections/user sec, ..." (first such line)
        read -r n u < <(awk '/connections in [0-9.]+s;/ { sub(/s;$/, "", $4); print $1, $4; exit }' \
            "$tmp/$name-$i.out")
        total=$((total + ${n:-0}))
        ucpu=$(awk -v a="$ucpu" -v b="${u:-0}" 'BEGIN { print a + b }')
    done
    local per_s cpu_us cli_us
    per_s=$(awk -v n="$total" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b > a ? n / (b - a) : 0) }')
    cpu_us=$(awk -v d=$((r1 - r0)) -v h="$clk_tck" -v n="$total" \
        'BEGIN { printf "%.0f", (n > 0 ? 1e6 * d / h / n : 0) }')
    cli_us=$(awk -v u="$ucpu" -v n="$total" 'BEGIN { printf "%.0f", (n > 0 ? 1e6 * u / n : 0) }')
    put "$name.per_s" "$per_s"
    put "$name.handshakes" "$total"
    put "$name.cpu_per_hs_us" "$cpu_us"
    put "$name.per_cpu_s" "$(awk -v c="$cpu_us" 'BEGIN { printf "%.0f", (c > 0 ? 1e6 / c : 0) }')"
    put "$name.client_user_us_per_hs" "$cli_us"
    printf '%-36s %8s handshakes %8s/s  server %6s CPU-us/hs  client %6s user-us/hs\n' \
        "$name ($clients x s_time, ${seconds}s)" "$total" "$per_s" "$cpu_us" "$cli_us" >>"$lines"
    bench_log "$name: $total handshakes, $per_s/s, server $cpu_us CPU-us each"
    ((total > 0)) || exit_status=1
}

# confbench_step RATE: one -s handshake run; sets ok, succ, cpu_us, gen_pct.
confbench_step() {
    local rate=$1 json=$tmp/cb-$1.json rc=0 r0 r1 t0 t1 gu gs failed=0 unf=0 drop=0 el=0 why=""
    local TIMEFORMAT='%U %S'
    r0=$(bench_tree_ticks "$node_pid")
    t0=$(date +%s.%N)
    { time "${pin_cli[@]}" timeout -k 5 $((seconds * 3 + 30)) "$cb_bin" "127.0.0.1:$node_tls_port" \
        -t tls -s handshake -r "$rate" -d "$seconds" -m $((rate < 100 ? 200 : rate * 2)) \
        --ca "$ca" --tls-name "$tls_name" --timeout 5s --drain 10s -q --json "$json" \
        >"$tmp/cb-$rate.out" 2>&1 || rc=$?; } 2>"$tmp/cb-$rate.time"
    t1=$(date +%s.%N)
    sleep 2
    r1=$(bench_tree_ticks "$node_pid")
    read -r gu gs <"$tmp/cb-$rate.time" || { gu=0; gs=0; }
    succ=0
    if [[ -s $json ]]; then
        read -r succ failed unf drop el < <(jq -r '.totals | [.succeeded, .failed, .unfinished,
            .launches_dropped_max_calls + .launches_dropped_late, .elapsed_s] |
            map(tostring) | join(" ")' "$json")
        why=$(jq -r '[.failures.by_reason // {} | to_entries[] | select(.value > 0) |
            "\(.key)=\(.value)"] | join(",")' "$json" 2>/dev/null || true)
    fi
    local achieved
    achieved=$(awk -v s="$succ" -v e="$el" 'BEGIN { printf "%.0f", (e > 0 ? s / e : 0) }')
    cpu_us=$(awk -v d=$((r1 - r0)) -v h="$clk_tck" -v n="$succ" \
        'BEGIN { printf "%.0f", (n > 0 ? 1e6 * d / h / n : 0) }')
    gen_pct=$(awk -v u="$gu" -v s="$gs" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "%.0f", (b > a ? 100 * (u + s) / (b - a) : 0) }')
    ok=0
    local verdict=pass
    if ((rc != 0 || failed != 0 || unf != 0 || drop != 0 || succ != rate * seconds)); then
        verdict="fail(exit $rc, $failed failed, $unf unfinished, $drop not launched${why:+: $why})"
    elif ((achieved * 10 < rate * 9)); then
        verdict="fail(rate < 90%)"
    else
        ok=1
    fi
    printf '  confbench -s handshake %6d/s: %7d ok, achieved %6s/s, node %5s CPU-us/hs, confbench %3s%% of a core, %s\n' \
        "$rate" "$succ" "$achieved" "$cpu_us" "$gen_pct" "$verdict" >>"$tmp/steps.txt"
    bench_log "confbench handshake $rate/s: $succ ok, node $cpu_us CPU-us each, $verdict"
    if ((ok == 0)); then
        sleep 3
    fi
}

# --- (1) s_time -> s_server ------------------------------------------------------------
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
machine=$(bench_machine)
bench_spawn "$tmp/s_server.log" "${pin_srv[@]}" openssl s_server -accept "127.0.0.1:$ss_port" \
    -cert "$cert" -key "$key" -tls1_3 -ciphersuites "$suite" -quiet -naccept 100000000
ss_pid=$BENCH_LAST_PID
if bench_wait_listen "$ss_pid" tcp "$ss_port" 10; then
    put tls.s_server "$(bench_tls_params 127.0.0.1 "$ss_port" "$ca" "$tls_name" "$suite")"
    s_time_run hs.s_time "$ss_port" "$ss_pid"
else
    bench_log "openssl s_server did not start"
    exit_status=1
fi
bench_stop "$ss_pid"

# --- (2) and (3) against confnode --------------------------------------------------------
node_pid=""
if [[ ! -x $node_bin ]]; then
    bench_log "confnode binary not found at $node_bin"
    put hs.confnode.per_s "not measured: no confnode binary"
    exit_status=1
else
    cat >"$tmp/confnode.conf" <<EOF
node: { name = "bench"; workers = $workers; log_level = "warn"; pin_workers = false; };
sip: { listen = "127.0.0.1"; udp_port = $node_port; tcp_port = $node_port;
       tls_port = $node_tls_port; domain = "example.test"; };
tls: { certificate = "$cert"; key = "$key"; ca = "$ca"; verify_client = "none";
       min_version = "1.3"; ciphersuites = "$suite"; };
admin: { listen = "127.0.0.1"; port = $admin_port; };
vmrs = ( { alias = "meet@example.test"; name = "Bench room"; } );
EOF
    if ! "$node_bin" check-config -c "$tmp/confnode.conf" >"$tmp/check.log" 2>&1; then
        cat "$tmp/check.log" >&2
        bench_die "confnode rejected the generated config"
    fi
    bench_spawn "$tmp/confnode.log" "${pin_srv[@]}" "$node_bin" run -c "$tmp/confnode.conf"
    node_pid=$BENCH_LAST_PID
    if bench_wait_listen "$node_pid" tcp "$node_tls_port" 15; then
        sleep 1
        put tls.confnode "$(bench_tls_params 127.0.0.1 "$node_tls_port" "$ca" "$tls_name" "$suite")"
        s_time_run hs.confnode_stime "$node_tls_port" "$node_pid"
        sleep 2
        # (3) ramp
        : >"$tmp/steps.txt"
        best=0 best_cpu=0 best_gen=0 hi=0
        rate=$rate_start
        while ((rate <= rate_max)); do
            confbench_step "$rate"
            ((ok)) || { hi=$rate; break; }
            best=$rate best_cpu=$cpu_us best_gen=$gen_pct
            ((rate == rate_max)) && break
            rate=$((rate * 2 > rate_max ? rate_max : rate * 2))
        done
        if ((hi > 0 && best > 0)); then
            lo=$best
            for ((i = 0; i < refine; i++)); do
                mid=$(((lo + hi) / 2 / 10 * 10))
                ((mid > lo)) || break
                confbench_step "$mid"
                if ((ok)); then lo=$mid best=$mid best_cpu=$cpu_us best_gen=$gen_pct; else hi=$mid; fi
            done
        fi
        put hs.confnode.per_s "$( ((hi == 0 && best > 0)) && echo ">=")$best"
        put hs.confnode.cpu_per_hs_us "$best_cpu"
        put hs.confnode.per_cpu_s "$(awk -v c="$best_cpu" 'BEGIN { printf "%.0f", (c > 0 ? 1e6 / c : 0) }')"
        put hs.confnode.gen_pct "$best_gen"
        printf '%-36s %8s %19s/s  server %6s CPU-us/hs  confbench %s%% of a core\n' \
            "confbench -s handshake -> confnode" "" "$( ((hi == 0 && best > 0)) && echo ">=")$best" \
            "$best_cpu" "$best_gen" >>"$lines"
        ((best > 0)) || exit_status=1
        bench_alive "$node_pid" || { bench_log "confnode exited during the run"; exit_status=1; }
    else
        tail -n 5 "$tmp/confnode.log" >&2
        bench_log "confnode did not start"
        exit_status=1
    fi
    [[ -n $node_pid ]] && bench_stop "$node_pid" 10
fi
# s_time's own figure for s_server is the reference for both confnode figures
ref=$(awk -F= '$1 == "hs.s_time.per_s" { print $2 }' "$summary")
ref_cpu=$(awk -F= '$1 == "hs.s_time.cpu_per_hs_us" { print $2 }' "$summary")
put hs.s_server.cpu_per_hs_us "${ref_cpu:-}"

# --- report ------------------------------------------------------------------------------
ratio() {
    local a=${1#>=} b=${2:-}
    [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] || { echo n/a; return; }
    awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}
report() {
    local cn st
    echo "# tls_handshake: full TLS handshakes per second, openssl s_server next to confnode"
    echo "started: $started"
    echo "command: bench/tls_handshake.sh --seconds $seconds --clients $clients --workers $workers" \
        "--start $rate_start --max $rate_max --refine $refine --ciphersuites $suite$( ((quick)) && echo " --quick")"
    echo "$machine"
    echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "versions: $(openssl version); confnode $node_bin (built" \
        "$(date -u -r "$node_bin" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo '?')), tree" \
        "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "certificate: ECDSA P-256 server certificate from a throw-away CA (bench_make_pki);" \
        "TLS 1.3 only, suite $suite; clients verify the chain; no session resumption"
    echo "pinning: servers (s_server, confnode with $workers worker(s)) CPUs $srv_cpus;" \
        "clients (s_time, confbench) CPUs $cli_cpus; nice $nice_n"
    grep '^tls\.' "$summary" | sed 's/^tls\./negotiated: /'
    echo
    cat "$lines"
    echo
    cn=$(awk -F= '$1 == "hs.confnode.per_s" { print $2 }' "$summary")
    st=$(awk -F= '$1 == "hs.confnode_stime.per_s" { print $2 }' "$summary")
    echo "ratio confbench->confnode / s_time->s_server handshakes/s: $(ratio "$cn" "$ref") (goal >= 0.80)"
    echo "ratio s_time->confnode / s_time->s_server handshakes/s:   $(ratio "$st" "$ref")"
    echo "ratio s_server / confnode server CPU per handshake (s_time): $(ratio "$ref_cpu" \
        "$(awk -F= '$1 == "hs.confnode_stime.cpu_per_hs_us" { print $2 }' "$summary")")"
    echo
    echo "confbench steps (each TCP connect + TLS handshake + OPTIONS/200 + close; node CPU"
    echo "over the step and 2 s after it):"
    cat "$tmp/steps.txt" 2>/dev/null || true
}
report | tee "$tmp/report.txt"
if [[ -n $summary_out ]]; then
    cat "$summary" >>"$summary_out"
fi
if ((save)); then
    mkdir -p "$results_dir"
    out=$results_dir/tls_handshake-$(date -u +%Y%m%d-%H%M%S).txt
    cp "$tmp/report.txt" "$out"
    bench_log "saved $out"
fi
exit "$exit_status"
