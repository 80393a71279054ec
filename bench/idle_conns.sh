#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# idle_conns.sh: memory a server spends per idle TLS connection. For confnode (and
# Kamailio with bench/kamailio/kamailio.cfg, for comparison) it opens --conns TLS
# connections from many loopback source addresses with bench/idle_conns_bench, keeps
# them idle, and reads the server's memory before, while they are held, and after
# they close (VmRSS from /proc/PID/status and Rss/Pss from /proc/PID/smaps_rollup,
# summed over the server's processes). Loopback only, bounded, everything stopped on
# exit. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

usage() {
    cat <<'EOF'
Usage: bench/idle_conns.sh [options]

  --node PATH          confnode binary (default build/bin/confnode; env CONFNODE_BIN)
  --helper PATH        idle_conns_bench (default: next to --node)
  --conns N            connections to hold (default 10000)
  --workers N          confnode workers, Kamailio tcp_children (default 2)
  --servers LIST       from confnode kamailio (default both)
  --sources SPEC       client source addresses (default 127.0.0.2-254)
  --settle N           seconds between a change and a memory reading (default 5)
  --port-base N        confnode TLS on N+1 (SIP N+2, admin N+9), Kamailio TLS on N+11
                       (SIP N+10) (default 5390)
  --summary FILE       append key=value results to FILE (for side_by_side.sh)
  --quick              2000 connections, 2 s settle
  --results-dir DIR    where the results file goes (default bench/results)
  --no-save            write no results file
  --keep-tmp           keep the temp dir
  -h, --help           this text

Exit status: 0 when every server held every connection, 1 otherwise, 2 on a usage error.
EOF
}

node_bin=${CONFNODE_BIN:-$repo/build/bin/confnode}
helper=""
conns=10000
workers=2
servers="confnode kamailio"
sources=127.0.0.2-254
settle=5
port_base=5390
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
    --helper) helper=$val ;;
    --conns) conns=$val ;;
    --workers) workers=$val ;;
    --servers) servers=$val ;;
    --sources) sources=$val ;;
    --settle) settle=$val ;;
    --port-base) port_base=$val ;;
    --summary) summary_out=$val ;;
    --results-dir) results_dir=$val ;;
    *) echo "unknown option $opt (see --help)" >&2; exit 2 ;;
    esac
done
for v in conns workers settle port_base; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "${v}: not a non-negative integer" >&2; exit 2; }
done
((conns >= 1 && conns <= 100000 && workers >= 1 && workers <= 64 && settle <= 60 &&
    port_base >= 1024 && port_base <= 65000)) || { echo "option out of range (see --help)" >&2; exit 2; }
for s in $servers; do
    case $s in confnode | kamailio) ;; *) echo "unknown server $s" >&2; exit 2 ;; esac
done
((quick)) && { conns=2000; settle=2; }

[[ $node_bin == /* ]] || node_bin=$PWD/$node_bin
[[ -n $helper ]] || helper=$(dirname "$node_bin")/idle_conns_bench
[[ $helper == /* ]] || helper=$PWD/$helper
[[ -z $summary_out || $summary_out == /* ]] || summary_out=$PWD/$summary_out
bench_need openssl:openssl timeout:coreutils ss:iproute2 awk:gawk
[[ -x $helper ]] || bench_die "idle_conns_bench not found at $helper (build the project, or --helper)"

node_tls_port=$((port_base + 1))
node_port=$((port_base + 2))
admin_port=$((port_base + 9))
kam_port=$((port_base + 10))
kam_tls_port=$((port_base + 11))
exit_status=0

bench_make_tmp idle_conns
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
tmp=$BENCH_TMP
results_dir=$(realpath -m "$results_dir")
cd "$tmp"
# both the servers and the client need a descriptor per connection
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
ulimit -c 0 # a crashing server with a 2 GB shared-memory segment would write a 2 GB core
nofile=$(ulimit -n)
if ((nofile < conns + 200)); then
    bench_log "open-file limit $nofile is below $((conns + 200)); lowering --conns"
    conns=$((nofile - 200))
fi

bench_make_pki "$tmp/pki" "$tls_name"
cert=$tmp/pki/node.crt
key=$tmp/pki/node.key
ca=$tmp/pki/ca.crt

summary=$tmp/summary.txt
: >"$summary"
put() { printf '%s=%s\n' "$1" "$2" >>"$summary"; }
table=$tmp/table.txt
: >"$table"

# mem PID: "VmRSS_kB Rss_kB Pss_kB" summed over PID and its descendants.
mem() {
    local p v r s tv=0 tr=0 ts=0
    for p in $(bench_tree_pids "$1"); do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
        read -r r s < <(awk '/^Rss:/ { r = $2 } /^Pss:/ { s = $2 } END { print r + 0, s + 0 }' \
            "/proc/$p/smaps_rollup" 2>/dev/null || echo "0 0")
        tv=$((tv + ${v:-0})) tr=$((tr + ${r:-0})) ts=$((ts + ${s:-0}))
    done
    echo "$tv $tr $ts"
}

nfds() {
    local p n=0
    for p in $(bench_tree_pids "$1"); do
        n=$((n + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)))
    done
    echo "$n"
}

# hold SERVER PID PORT [WARM [INFLIGHT]]: warm-up (unless WARM is 0), then --conns idle
# connections, INFLIGHT (64) handshakes at a time; records the figures and, when every
# connection was held, writes a line to $tmp/hold-ok.
hold() {
    local name=$1 spid=$2 port=$3 warm=${4:-1} inflight=${5:-64}
    local i out hpid line est=0 failed=0 secs=0 m0 m1 m2 f0 f1
    # warm-up: TLS contexts, allocator arenas and per-worker tables touched once
    if ((warm)); then
        "$helper" "127.0.0.1:$port" 200 --ca "$ca" --name "$tls_name" --sources "$sources" \
            --hold 1 >"$tmp/$name-warm.out" 2>&1 ||
            bench_log "$name: warm-up: $(tail -n 2 "$tmp/$name-warm.out")"
    fi
    sleep "$settle"
    m0=$(mem "$spid")
    f0=$(nfds "$spid")
    out=$tmp/$name-hold.out
    bench_spawn "$out" "$helper" "127.0.0.1:$port" "$conns" --ca "$ca" --name "$tls_name" \
        --sources "$sources" --timeout 300 --inflight "$inflight"
    hpid=$BENCH_LAST_PID
    for ((i = 0; i < 3200; i++)); do
        grep -q '^ready ' "$out" && break
        bench_alive "$hpid" || break
        sleep 0.1
    done
    line=$(grep '^ready ' "$out" || true)
    if [[ -z $line ]]; then
        bench_log "$name: the client did not report ($(tail -n 2 "$out"))"
        bench_stop "$hpid"
        exit_status=1
        return 0
    fi
    est=$(sed -n 's/.*established=\([0-9]*\).*/\1/p' <<<"$line")
    failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")
    secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
    sleep "$settle"
    m1=$(mem "$spid")
    f1=$(nfds "$spid")
    bench_stop "$hpid" 10
    grep -h 'first failure\|closed ' "$out" | sed "s/^/  $name client: /" >>"$tmp/notes.txt" || true
    sleep "$settle"
    m2=$(mem "$spid")
    local v0 r0 s0 v1 r1 s1 v2 s2
    read -r v0 r0 s0 <<<"$m0"
    read -r v1 r1 s1 <<<"$m1"
    read -r v2 _ s2 <<<"$m2"
    local per_rss per_pss
    per_rss=$(awk -v a="$r0" -v b="$r1" -v n="$est" 'BEGIN { printf "%.2f", (n > 0 ? (b - a) / n : 0) }')
    per_pss=$(awk -v a="$s0" -v b="$s1" -v n="$est" 'BEGIN { printf "%.2f", (n > 0 ? (b - a) / n : 0) }')
    # an attempt that held nothing (the server died) leaves the figures of an earlier one
    ((est > 0)) || { put "idle.$name.failed_attempt" "$failed"; est=0; }
    ((est > 0)) && put "idle.$name.conns" "$est"
    ((est > 0)) && put "idle.$name.failed" "$failed"
    ((est > 0)) && put "idle.$name.kb_per_conn" "$per_pss"
    if ((est > 0)); then
        put "idle.$name.rss_kb_per_conn" "$per_rss"
        put "idle.$name.pss_kb_before" "$s0"
        put "idle.$name.pss_kb_held" "$s1"
        put "idle.$name.pss_kb_after_close" "$s2"
    fi
    printf '%-9s %7s %6s %7s %9s %9s %9s %9s %9s %9s %8s %8s %8s\n' "$name" "$est" "$failed" \
        "$secs" "$v0" "$v1" "$v2" "$s0" "$s1" "$s2" "$per_rss" "$per_pss" "$((f1 - f0))" >>"$table"
    bench_log "$name: $est connections held ($failed failed), $per_pss kB (PSS) / $per_rss kB (RSS) each"
    if ((est == conns && failed == 0)); then
        echo ok >"$tmp/hold-ok"
    else
        exit_status=1
    fi
}

ports_free() {
    local p
    for p in "$@"; do
        if bench_listening udp "$p" || bench_listening tcp "$p"; then
            bench_log "port $p is in use (choose --port-base)"
            return 1
        fi
    done
}

measure_confnode() {
    [[ -x $node_bin ]] || { bench_log "no confnode binary at $node_bin"; exit_status=1; return 0; }
    ports_free "$node_tls_port" "$node_port" "$admin_port" || { exit_status=1; return 0; }
    cat >"$tmp/confnode.conf" <<EOF
node: { name = "bench"; workers = $workers; log_level = "warn"; pin_workers = false; };
sip: { listen = "127.0.0.1"; udp_port = $node_port; tcp_port = $node_port;
       tls_port = $node_tls_port; domain = "example.test";
       max_connections = $((conns + 1000)); idle_timeout = 3600; };
tls: { certificate = "$cert"; key = "$key"; ca = "$ca"; verify_client = "none"; };
admin: { listen = "127.0.0.1"; port = $admin_port; };
vmrs = ( { alias = "meet@example.test"; name = "Bench room"; } );
EOF
    bench_spawn "$tmp/confnode.log" "$node_bin" run -c "$tmp/confnode.conf"
    local pid=$BENCH_LAST_PID
    if ! bench_wait_listen "$pid" tcp "$node_tls_port" 15; then
        tail -n 5 "$tmp/confnode.log" >&2
        bench_log "confnode did not start"
        bench_stop "$pid"
        exit_status=1
        return 0
    fi
    sleep 1
    hold confnode "$pid" "$node_tls_port"
    bench_alive "$pid" || { bench_log "confnode exited"; exit_status=1; }
    grep -E 'level=(warn|error)' "$tmp/confnode.log" | sort | uniq -c | sort -rn | head -n 3 |
        sed 's/^/  confnode log: /' >>"$tmp/notes.txt" || true
    bench_stop "$pid" 10
}

measure_kamailio() {
    command -v kamailio >/dev/null || { bench_log "kamailio missing (apt-get install kamailio kamailio-tls-modules)"; exit_status=1; return 0; }
    ports_free "$kam_port" "$kam_tls_port" || { exit_status=1; return 0; }
    # the harness config with room for --conns connections (it allows 4096)
    local cfg=$tmp/kamailio.cfg max=$((conns + 1000))
    sed -e "s/^tcp_max_connections=.*/tcp_max_connections=$max\ntls_max_connections=$max/" \
        "$here/kamailio/kamailio.cfg" >"$cfg"
    grep -q "^tls_max_connections=$max" "$cfg" || { bench_log "could not raise Kamailio's limits"; exit_status=1; return 0; }
    local -a args=(-f "$cfg" -Y "$tmp/kamailio-run" -m 2048 -M 64
        -A "KAM_ADDR=\"127.0.0.1\"" -A "KAM_PORT=$kam_port" -A "KAM_TLS_PORT=$kam_tls_port"
        -A "KAM_CHILDREN=$workers" -A WITH_TLS -A "KAM_TLS_CERT=\"$cert\""
        -A "KAM_TLS_KEY=\"$key\"" -A "KAM_TLS_CA=\"$ca\"")
    mkdir -p "$tmp/kamailio-run"
    kamailio -c "${args[@]}" >"$tmp/kamailio-check.log" 2>&1 ||
        { tail -n 5 "$tmp/kamailio-check.log" >&2; exit_status=1; return 0; }
    local attempt pid saved=$exit_status
    # Kamailio 5.6's tls module sometimes crashes a TCP child while many handshakes run
    # (the log shows q_malloc "freeing already freed pointer" from tls_init.c), which
    # stops Kamailio: then it is started once more and measured without the warm-up,
    # 4 handshakes at a time
    for attempt in 1 2; do
        bench_spawn "$tmp/kamailio-$attempt.log" kamailio -DD -E "${args[@]}"
        pid=$BENCH_LAST_PID
        if ! bench_wait_listen "$pid" tcp "$kam_tls_port" 15; then
            tail -n 5 "$tmp/kamailio-$attempt.log" >&2
            bench_log "kamailio did not start"
            bench_stop "$pid"
            exit_status=1
            return 0
        fi
        sleep 2
        : >"$tmp/hold-ok"
        hold kamailio "$pid" "$kam_tls_port" "$((attempt == 1))" "$((attempt == 1 ? 64 : 4))"
        grep -E 'exited by a signal|CRITICAL' "$tmp/kamailio-$attempt.log" | sort | uniq -c |
            sort -rn | head -n 3 | sed "s/^/  kamailio log (attempt $attempt): /" >>"$tmp/notes.txt" || true
        if bench_alive "$pid" && [[ -s $tmp/hold-ok ]]; then
            bench_stop "$pid" 10
            break
        fi
        echo "  kamailio attempt $attempt: Kamailio stopped during the measurement" >>"$tmp/notes.txt"
        ((attempt == 1)) && exit_status=$saved
        bench_stop "$pid" 10
    done
}

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
machine=$(bench_machine)
: >"$tmp/notes.txt"
for s in $servers; do
    case $s in
    confnode) measure_confnode ;;
    kamailio) measure_kamailio ;;
    esac
done

report() {
    echo "# idle_conns: server memory per idle TLS connection"
    echo "started: $started"
    echo "command: bench/idle_conns.sh --conns $conns --workers $workers --servers '$servers'" \
        "--sources $sources --settle $settle$( ((quick)) && echo " --quick")"
    echo "$machine"
    echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "versions: $(openssl version); $( (kamailio -v 2>/dev/null || true) | sed -n 's/^version: *//p' | head -n 1)"
    echo "confnode: $node_bin (built $(date -u -r "$node_bin" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo '?'))," \
        "tree $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "client: idle_conns_bench, TLS 1.2+ (negotiates TLS 1.3), verifies the chain, no resumption,"
    echo "        nothing sent after the handshake; source addresses $sources; open-file limit $nofile"
    echo "method: 200-connection warm-up, $settle s, reading 'before'; $conns connections opened and"
    echo "        held, $settle s, reading 'held'; closed, $settle s, reading 'closed'. kB per"
    echo "        connection = (held - before) / connections established. Memory summed over the"
    echo "        server's processes; PSS charges Kamailio's shared memory once, RSS would count it"
    echo "        in every process that touched it (confnode is one process: RSS and PSS agree)."
    echo
    printf '%-9s %7s %6s %7s %9s %9s %9s %9s %9s %9s %8s %8s %8s\n' server conns failed "open s" \
        "RSS0 kB" "RSS1 kB" "RSS2 kB" "PSS0 kB" "PSS1 kB" "PSS2 kB" "RSS/conn" "PSS/conn" "+fds"
    cat "$table"
    echo
    local c k
    c=$(awk -F= '$1 == "idle.confnode.kb_per_conn" { v = $2 } END { print v }' "$summary")
    k=$(awk -F= '$1 == "idle.kamailio.kb_per_conn" { v = $2 } END { print v }' "$summary")
    [[ -n $c ]] && echo "confnode: $c kB per idle TLS connection (goal <= 16 kB at 10,000 connections)"
    [[ -n $c && -n $k ]] && awk -v c="$c" -v k="$k" 'BEGIN { if (c > 0) printf "kamailio / confnode memory per connection: %.2f\n", k / c }'
    if [[ -s $tmp/notes.txt ]]; then
        echo
        echo "notes:"
        cat "$tmp/notes.txt"
    fi
}
report | tee "$tmp/report.txt"
[[ -n $summary_out ]] && cat "$summary" >>"$summary_out"
if ((save)); then
    mkdir -p "$results_dir"
    out=$results_dir/idle_conns-$(date -u +%Y%m%d-%H%M%S).txt
    cp "$tmp/report.txt" "$out"
    bench_log "saved $out"
fi
exit "$exit_status"
