# shellcheck shell=bash
# Helpers for the integration tests (tests/integration/test_*.sh). Sourced, never run.
#
# Each test calls `it_init "$@"` first: it takes the build directory as $1, makes a
# private temporary directory ($IT_TMP), installs a trap that stops every process the
# test started, and reads nothing from stdin. Everything talks to 127.0.0.1 only;
# every wait is bounded in count and time. On failure the test prints why, plus the
# tail of the node's log, and exits non-zero.
#
# Environment: CONFNODE_KEEP_TMP=1 keeps $IT_TMP after the run (path is printed).

set -euo pipefail

IT_NAME=$(basename "$0" .sh)
IT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IT_DIR=$IT_ROOT/tests/integration
IT_TMP=
IT_PIDS=()      # every background process we started, stopped on exit
IT_PORTS=()     # port ranges ("lo-hi") handed out by it_free_ports in this test
IT_NODE_PID=
IT_NODE_LOG=
IT_NODE_RC=

it_log() { printf '[%s] %s\n' "$IT_NAME" "$*" >&2; }

it_fail() {
    printf '[%s] FAIL: %s\n' "$IT_NAME" "$*" >&2
    exit 1
}

# it_assert "message" command...: runs the command; fails with the message if it fails.
it_assert() {
    local msg=$1
    shift
    "$@" || it_fail "$msg"
}

it_pid_alive() {
    local pid=$1 state
    kill -0 "$pid" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo X)
    [[ "$state" != Z && "$state" != X ]]
}

# it_wait_exit PID SECONDS: waits up to SECONDS for PID (our child) to end.
# Returns 0 and sets IT_WAIT_RC to its exit status, or returns 1 if still running.
it_wait_exit() {
    local pid=$1 deadline=$((SECONDS + $2)) i
    IT_WAIT_RC=
    for ((i = 0; i < $2 * 20 + 1; i++)); do
        if ! it_pid_alive "$pid"; then
            IT_WAIT_RC=0
            wait "$pid" 2>/dev/null || IT_WAIT_RC=$?
            return 0
        fi
        ((SECONDS <= deadline)) || break
        sleep 0.05
    done
    return 1
}

# Stops PID: SIGTERM, then SIGKILL after SECONDS (default 5). Never fails.
it_kill() {
    local pid=$1 grace=${2:-5}
    it_pid_alive "$pid" || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    if ! it_wait_exit "$pid" "$grace"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

it_cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    set +e
    for pid in "${IT_PIDS[@]}"; do
        it_kill "$pid" 3
    done
    if [[ $rc -ne 0 && -n "$IT_NODE_LOG" && -s "$IT_NODE_LOG" ]]; then
        printf '[%s] --- last lines of %s ---\n' "$IT_NAME" "$IT_NODE_LOG" >&2
        tail -n 40 "$IT_NODE_LOG" >&2
        printf '[%s] ---\n' "$IT_NAME" >&2
    fi
    if [[ -n "$IT_TMP" ]]; then
        if [[ "${CONFNODE_KEEP_TMP:-0}" == 1 ]]; then
            it_log "kept $IT_TMP"
        else
            rm -rf "$IT_TMP"
        fi
    fi
    if [[ $rc -eq 0 ]]; then
        it_log "PASS"
    else
        it_log "FAILED (exit $rc)"
    fi
    exit "$rc"
}

it_require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 ||
            it_fail "$tool is not installed (run deploy/bootstrap.sh)"
    done
}

# it_init BUILD_DIR
it_init() {
    [[ $# -ge 1 && -d "$1" ]] || it_fail "usage: $0 BUILD_DIR (the CMake build directory)"
    IT_BUILD=$(cd "$1" && pwd)
    CONFNODE=$IT_BUILD/bin/confnode
    [[ -x "$CONFNODE" ]] || it_fail "$CONFNODE is not built"
    exec </dev/null
    IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/confnode-$IT_NAME.XXXXXX")
    trap it_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    it_require curl jq ss openssl
    # A sanitizer build must stop at the first error, and say where.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    it_log "build $IT_BUILD, temp $IT_TMP"
}

# ---------------------------------------------------------------------------- ports

# Local ports of every TCP and UDP socket on the host, one per line.
it_used_ports() {
    ss -Htuan 2>/dev/null | awk '{ n = split($5, a, ":"); print a[n] }'
}

it_port_in_use() {
    it_used_ports | grep -qx "$1"
}

# it_free_ports LO HI COUNT STEP: sets IT_PORT to the first of COUNT consecutive
# ports, free for TCP and UDP, starting at a random multiple of STEP within LO..HI,
# and records them as taken by this test. Bounded: 200 attempts.
it_free_ports() {
    local lo=$1 hi=$2 count=$3 step=$4 attempt base used
    for ((attempt = 0; attempt < 200; attempt++)); do
        base=$((lo + (RANDOM * 32768 + RANDOM) % ((hi - lo - count) / step + 1) * step))
        used=$(it_used_ports)
        # free on the host, and no overlap with a range handed out earlier
        if awk -v lo="$base" -v hi=$((base + count - 1)) -v taken="${IT_PORTS[*]}" '
            BEGIN {
                n = split(taken, r, " ")
                for (i = 1; i <= n; i++) {
                    split(r[i], b, "-")
                    if (b[1] + 0 <= hi && b[2] + 0 >= lo) exit 1
                }
            }
            $1 + 0 >= lo && $1 + 0 <= hi { exit 1 }' <<<"$used"; then
            IT_PORTS+=("$base-$((base + count - 1))")
            IT_PORT=$base
            return 0
        fi
    done
    it_fail "no $count free consecutive ports in $lo..$hi"
}

# Sets IT_PORT to one free port for a client tool (sipp, stunnel), away from the
# node's ranges.
it_free_port() {
    it_free_ports 21000 29999 1 1
}

# Sets SIP_PORT (UDP+TCP), TLS_PORT (= SIP_PORT + 1), ADMIN_PORT, MEDIA_MIN, MEDIA_MAX.
# Signaling ports stay below the kernel's ephemeral range (32768-60999 by default);
# the 1000 media ports sit above it, so no client socket lands in them.
it_alloc_node_ports() {
    it_free_ports 12000 17999 2 2
    SIP_PORT=$IT_PORT
    TLS_PORT=$((SIP_PORT + 1))
    it_free_ports 18000 20999 1 1
    ADMIN_PORT=$IT_PORT
    it_free_ports 61000 65499 1000 2
    MEDIA_MIN=$IT_PORT
    MEDIA_MAX=$((MEDIA_MIN + 999))
}

# ---------------------------------------------------------------------------- certificates

# it_make_certs DIR: demo CA, node and client certificates (deploy/mkcerts.sh).
it_make_certs() {
    "$IT_ROOT/deploy/mkcerts.sh" "$1" 2>"$IT_TMP/mkcerts.log" ||
        it_fail "deploy/mkcerts.sh $1 failed: $(cat "$IT_TMP/mkcerts.log")"
}

# ---------------------------------------------------------------------------- the node

# it_write_config FILE: a complete node config on the allocated ports, using the
# certificates in $IT_TMP/pki. Optional extra lines inside groups: IT_NODE_EXTRA,
# IT_SIP_EXTRA, IT_TLS_EXTRA; more VMRs: IT_VMRS_EXTRA (starting with a comma).
# IT_WORKERS (default 2), IT_LOG_LEVEL (default info).
it_write_config() {
    local file=$1 pki=$IT_TMP/pki
    [[ -e "$pki/node.crt" ]] || it_make_certs "$pki"
    cat >"$file" <<EOF
node: {
    name = "it-$IT_NAME";
    workers = ${IT_WORKERS:-2};
    log_level = "${IT_LOG_LEVEL:-info}";
    ${IT_NODE_EXTRA:-}
};
sip: {
    listen = "127.0.0.1";
    udp_port = $SIP_PORT;
    tcp_port = $SIP_PORT;
    tls_port = $TLS_PORT;
    domain = "example.test";
    max_message_size = 65536;
    ${IT_SIP_EXTRA:-}
};
tls: {
    certificate = "$pki/node.crt";
    key = "$pki/node.key";
    ca = "$pki/ca.crt";
    verify_client = "request";
    ${IT_TLS_EXTRA:-}
};
media: {
    address = "127.0.0.1";
    port_min = $MEDIA_MIN;
    port_max = $MEDIA_MAX;
};
admin: {
    listen = "127.0.0.1";
    port = $ADMIN_PORT;
};
vmrs = (
    { alias = "meet@example.test"; name = "Demo"; }${IT_VMRS_EXTRA:-}
);
EOF
}

# it_start_node CONFIG: starts `confnode run -c CONFIG` in the background and waits
# (at most 30 s) until the admin API answers /status and the SIP TCP port listens.
# Sets IT_NODE_PID and IT_NODE_LOG.
it_start_node() {
    local conf=$1 i
    IT_NODE_LOG=$IT_TMP/node.log
    "$CONFNODE" run -c "$conf" >>"$IT_NODE_LOG" 2>&1 &
    IT_NODE_PID=$!
    IT_PIDS+=("$IT_NODE_PID")
    for ((i = 0; i < 300; i++)); do
        if ! it_pid_alive "$IT_NODE_PID"; then
            it_wait_exit "$IT_NODE_PID" 1 || true
            it_fail "confnode exited during start-up (status ${IT_WAIT_RC:-?})"
        fi
        if curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$ADMIN_PORT/status" 2>/dev/null &&
            ss -Htln "sport = :$SIP_PORT" | grep -q .; then
            it_log "node up (pid $IT_NODE_PID): sip $SIP_PORT, tls $TLS_PORT, admin $ADMIN_PORT"
            return 0
        fi
        sleep 0.1
    done
    it_fail "confnode did not become ready within 30 s (admin http://127.0.0.1:$ADMIN_PORT/status)"
}

# Fails if the node's log shows a sanitizer report or a crash.
it_check_node_log() {
    [[ -n "$IT_NODE_LOG" && -e "$IT_NODE_LOG" ]] || return 0
    if grep -qE 'Sanitizer|runtime error:|core dumped|Segmentation fault' "$IT_NODE_LOG"; then
        grep -nE -m 5 'Sanitizer|runtime error:|core dumped|Segmentation fault' "$IT_NODE_LOG" >&2
        it_fail "the node's log shows a sanitizer report or a crash ($IT_NODE_LOG)"
    fi
}

it_assert_node_alive() {
    it_pid_alive "$IT_NODE_PID" || {
        it_wait_exit "$IT_NODE_PID" 1 || true
        it_fail "confnode died (exit status ${IT_WAIT_RC:-?})"
    }
}

# it_stop_node [SECONDS]: SIGTERM; the node must exit with status 0 within SECONDS
# (default 10) and leave a clean log.
it_stop_node() {
    local grace=${1:-10}
    it_assert_node_alive
    kill -TERM "$IT_NODE_PID"
    if ! it_wait_exit "$IT_NODE_PID" "$grace"; then
        kill -KILL "$IT_NODE_PID" 2>/dev/null || true
        it_fail "confnode did not exit within $grace s of SIGTERM"
    fi
    IT_NODE_RC=$IT_WAIT_RC
    it_check_node_log
    [[ "$IT_NODE_RC" == 0 ]] || it_fail "confnode exited with status $IT_NODE_RC after SIGTERM"
}

# ---------------------------------------------------------------------------- admin API

it_status() {
    curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/status" ||
        it_fail "GET /status failed"
}

# it_status_sum KEY: KEY summed over the workers in /status
# ({"workers": [{"id": 0, "calls": 0, ...}, ...], "totals": {...}}).
it_status_sum() {
    local json
    json=$(it_status)
    jq -e --arg k "$1" '
        [.workers[] | .[$k]]
        | if length > 0 and all(type == "number") then add
          else error("missing") end' <<<"$json" ||
        it_fail "/status lacks a per-worker \"$1\": $json"
}

# it_wait_status_sum KEY VALUE SECONDS: waits until the sum of KEY equals VALUE.
it_wait_status_sum() {
    local key=$1 want=$2 secs=$3 i got=
    for ((i = 0; i < secs * 5; i++)); do
        got=$(it_status_sum "$key")
        [[ "$got" == "$want" ]] && return 0
        sleep 0.2
    done
    it_fail "/status $key is $got, expected $want (waited $secs s)"
}

# ---------------------------------------------------------------------------- sipp

# it_sipp_start NAME TARGET TRANSPORT CALLS RATE [extra sipp args...]
# Starts sipp in the background; output in $IT_TMP/NAME.*. TRANSPORT is a sipp -t
# value (u1, t1). The scenario is sipp's built-in uac (INVITE/ACK/BYE to user
# "meet") unless the extra arguments name one (-sf FILE / -sn NAME, with -s USER).
# sipp's own messages log goes to $IT_TMP/NAME.log (-trace_logs).
# Every call must end within 60 s (sipp -timeout). At most 20 calls are up at once
# (-l 20): every call goes to one room, and a room holds 32 participants, so a slow
# (loaded) machine must not turn the test into an overload test.
it_sipp_start() {
    local name=$1 target=$2 transport=$3 calls=$4 rate=$5 lport cport mport pid arg
    local -a scenario=(-sn uac -s meet)
    shift 5
    for arg in "$@"; do
        [[ "$arg" == -sf || "$arg" == -sn ]] && scenario=()
    done
    it_require sipp
    it_free_port
    lport=$IT_PORT
    it_free_port
    cport=$IT_PORT
    it_free_ports 22000 29000 4 4
    mport=$IT_PORT
    (
        cd "$IT_TMP"
        exec timeout -k 5 90 sipp "${scenario[@]}" "$target" -t "$transport" \
            -i 127.0.0.1 -p "$lport" -cp "$cport" -mi 127.0.0.1 -mp "$mport" \
            -m "$calls" -r "$rate" -l 20 -nostdin -timeout 60s -timeout_error \
            -trace_stat -stf "$IT_TMP/$name.csv" -fd 1 \
            -trace_err -error_file "$IT_TMP/$name.errors" \
            -trace_logs -log_file "$IT_TMP/$name.log" "$@" \
            >"$IT_TMP/$name.out" 2>&1
    ) &
    pid=$!
    IT_PIDS+=("$pid")
    printf '%s\n' "$pid" >"$IT_TMP/$name.pid"
}

# it_sipp_wait NAME: waits (at most 100 s) for sipp NAME; sets SIPP_RC, SIPP_OK and
# SIPP_FAILED (successful and failed calls from sipp's final statistics).
it_sipp_wait() {
    local name=$1 pid csv
    pid=$(cat "$IT_TMP/$name.pid")
    it_wait_exit "$pid" 100 || it_fail "sipp $name still running after 100 s"
    SIPP_RC=$IT_WAIT_RC
    csv=$IT_TMP/$name.csv
    SIPP_OK=0
    SIPP_FAILED=0
    if [[ -s "$csv" ]]; then
        read -r SIPP_OK SIPP_FAILED < <(awk -F';' '
            NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            { ok = $(col["SuccessfulCall(C)"]); bad = $(col["FailedCall(C)"]) }
            END { print ok + 0, bad + 0 }' "$csv")
    fi
    it_log "sipp $name: exit $SIPP_RC, $SIPP_OK successful, $SIPP_FAILED failed calls"
}

it_sipp_show() {
    local name=$1
    tail -n 30 "$IT_TMP/$name.out" >&2 || true
    if [[ -s "$IT_TMP/$name.errors" ]]; then
        it_log "first lines of sipp's error log:"
        head -n 30 "$IT_TMP/$name.errors" >&2
    fi
}

# it_sipp_expect_all NAME CALLS: sipp exited 0 with CALLS successful, 0 failed calls.
it_sipp_expect_all() {
    local name=$1 calls=$2
    if [[ "$SIPP_RC" != 0 || "$SIPP_OK" != "$calls" || "$SIPP_FAILED" != 0 ]]; then
        it_sipp_show "$name"
        it_fail "sipp $name: expected $calls successful calls and exit 0;" \
            "got exit $SIPP_RC, $SIPP_OK successful, $SIPP_FAILED failed"
    fi
}

# ---------------------------------------------------------------------------- raw SIP

# it_sipsend ARGS...: tests/integration/sipsend.py (one message, reports the outcome).
it_sipsend() {
    python3 "$IT_DIR/sipsend.py" "$@"
}
