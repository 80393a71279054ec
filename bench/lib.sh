# shellcheck shell=bash
#
# Shared helpers for the shell benchmarks in bench/. Source it: it defines functions and
# a few variables and runs nothing. Every background process a bench starts goes
# through bench_spawn, so bench_cleanup (installed as the EXIT trap by the caller) can
# stop exactly those processes and nothing else.

BENCH_PIDS=()       # pids started by bench_spawn, in start order
BENCH_LAST_PID=""   # pid of the last bench_spawn
BENCH_TMP=""        # temp dir removed by bench_cleanup (set by bench_make_tmp)
BENCH_KEEP_TMP=0    # 1: leave BENCH_TMP in place for inspection

bench_log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

bench_die() {
    bench_log "error: $*"
    exit 1
}

# bench_need CMD:PACKAGE...: dies naming the Debian package of the first missing command.
bench_need() {
    local spec cmd pkg
    for spec in "$@"; do
        cmd=${spec%%:*}
        pkg=${spec#*:}
        command -v "$cmd" >/dev/null 2>&1 || bench_die "missing command '$cmd' (apt-get install $pkg)"
    done
}

# bench_make_tmp PREFIX: creates BENCH_TMP.
bench_make_tmp() {
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
}

# bench_spawn LOGFILE CMD [ARG...]: starts CMD in the background with stdout and stderr
# in LOGFILE and stdin from /dev/null; its pid is in BENCH_LAST_PID and BENCH_PIDS.
bench_spawn() {
    local logfile=$1
    shift
    "$@" </dev/null >"$logfile" 2>&1 &
    BENCH_LAST_PID=$!
    BENCH_PIDS+=("$BENCH_LAST_PID")
}

# bench_tree_pids PID: PID and all its descendants, one per line (PID first).
bench_tree_pids() {
    local -a queue=("$1")
    local p kid
    while ((${#queue[@]} > 0)); do
        p=${queue[0]}
        queue=("${queue[@]:1}")
        [[ -d /proc/$p ]] || continue
        printf '%s\n' "$p"
        for kid in $(pgrep -P "$p" 2>/dev/null || true); do
            queue+=("$kid")
        done
    done
}

# bench_pid_ticks PID: utime+stime+cutime+cstime of PID in clock ticks (all its threads,
# and its children that it has reaped); 0 when PID is gone.
bench_pid_ticks() {
    local stat rest
    local -a f
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return 0; }
    rest=${stat##*) }   # the comm field may hold spaces: cut after its closing ')'
    read -r -a f <<<"$rest"
    # f[0] is field 3 (state); utime, stime, cutime, cstime are fields 14..17
    echo $((f[11] + f[12] + f[13] + f[14]))
}

# bench_tree_ticks PID: CPU ticks of PID and every live descendant, summed.
bench_tree_ticks() {
    local total=0 p
    for p in $(bench_tree_pids "$1"); do
        total=$((total + $(bench_pid_ticks "$p")))
    done
    echo "$total"
}

# bench_busy_ticks: non-idle CPU ticks of the whole machine since boot, all CPUs summed
# (user, nice, system, irq, softirq, steal from /proc/stat).
bench_busy_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# bench_alive PID: true while PID exists and is not a zombie.
bench_alive() {
    local state
    [[ -r /proc/$1/stat ]] || return 1
    state=$(sed -e 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $state && $state != Z ]]
}

# bench_stop PID [GRACE_SECONDS]: SIGTERM, wait up to GRACE (default 5) seconds, then
# SIGKILL PID and whatever descendants it left. Reaps PID when it is our child.
bench_stop() {
    local pid=$1 grace=${2:-5} i p
    local -a tree
    [[ -n $pid ]] || return 0
    mapfile -t tree < <(bench_tree_pids "$pid")
    if bench_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            bench_alive "$pid" || break
            sleep 0.1
        done
    fi
    for p in "${tree[@]}"; do
        if bench_alive "$p"; then
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    wait "$pid" 2>/dev/null || true
    # forget it, so a later cleanup never signals a recycled pid
    local -a keep=()
    for p in "${BENCH_PIDS[@]}"; do
        [[ $p == "$pid" ]] || keep+=("$p")
    done
    BENCH_PIDS=("${keep[@]}")
}

# bench_cleanup: stops every process from bench_spawn (newest first), removes BENCH_TMP.
bench_cleanup() {
    while ((${#BENCH_PIDS[@]} > 0)); do
        bench_stop "${BENCH_PIDS[-1]}" 3
    done
    if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then
        if ((BENCH_KEEP_TMP)); then
            bench_log "kept $BENCH_TMP"
        else
            rm -rf -- "$BENCH_TMP"
        fi
    fi
}

# bench_listening udp|tcp PORT: true when something listens on 127.0.0.1:PORT or any
# address at PORT.
bench_listening() {
    local flag=-lnt
    [[ $1 == udp ]] && flag=-lnu
    [[ -n $(ss -H "$flag" "sport = :$2" 2>/dev/null) ]]
}

# bench_wait_listen PID udp|tcp PORT [SECONDS]: waits until PORT listens; fails when PID
# dies or after SECONDS (default 10).
bench_wait_listen() {
    local pid=$1 proto=$2 port=$3 secs=${4:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        bench_listening "$proto" "$port" && return 0
        bench_alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# bench_make_pki DIR NAME: a throw-away CA (DIR/ca.crt) and a server certificate for NAME
# and 127.0.0.1 signed by it (DIR/node.crt, DIR/node.key). ECDSA P-256, valid 2 days.
bench_make_pki() {
    local dir=$1 name=$2
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 2 -subj "/CN=bench test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/node.key" -out "$dir/node.csr" -subj "/CN=$name" >/dev/null 2>&1
    printf '%s\n' "subjectAltName=DNS:$name,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth,clientAuth" \
        >"$dir/node.ext"
    openssl x509 -req -in "$dir/node.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -out "$dir/node.crt" -days 2 -extfile "$dir/node.ext" >/dev/null 2>&1
    chmod 600 "$dir/ca.key" "$dir/node.key"
    openssl verify -CAfile "$dir/ca.crt" "$dir/node.crt" >/dev/null
}

# bench_tls_params HOST PORT CAFILE NAME [SUITES]: one line "TLSv1.3
# TLS_AES_256_GCM_SHA384 verify=OK" for what a verifying client offering the TLS 1.3
# SUITES (default: OpenSSL's) negotiates with HOST:PORT, or "unreachable".
bench_tls_params() {
    local out proto cipher verify
    local -a suites=()
    [[ -n ${5:-} && ${5:-} != default ]] && suites=(-ciphersuites "$5")
    out=$(timeout 5 openssl s_client -connect "$1:$2" -CAfile "$3" -verify_hostname "$4" \
        -servername "$4" "${suites[@]}" -brief </dev/null 2>&1) || true
    proto=$(sed -n 's/^Protocol version: *//p' <<<"$out" | head -n 1)
    cipher=$(sed -n 's/^Ciphersuite: *//p' <<<"$out" | head -n 1)
    verify=$(sed -n 's/^Verification: *//p' <<<"$out" | head -n 1)
    if [[ -z $proto ]]; then
        echo "unreachable"
    else
        echo "$proto $cipher verify=${verify:-?}"
    fi
}

# bench_machine: a few lines describing this machine, for results files.
bench_machine() {
    local model mem
    model=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
    mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    echo "host: nproc=$(nproc) cpu=\"${model:-unknown}\" memory=$mem"
    echo "kernel: $(uname -srm)"
    echo "os: $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")"
    echo "loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"
}
