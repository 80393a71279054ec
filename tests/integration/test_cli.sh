#!/bin/bash
# The command line: check-config on the shipped example and on broken files, a
# missing certificate at start-up, and clean exits on SIGTERM and SIGINT.
#
#   tests/integration/test_cli.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"

# cn ARGS...: runs confnode (bounded to 20 s); sets CN_RC and CN_OUT (stdout+stderr).
cn() {
    CN_RC=0
    CN_OUT=$(timeout -k 2 20 "$CONFNODE" "$@" 2>&1) || CN_RC=$?
}

# no_crash WHAT: the last cn run ended by itself, without a signal or sanitizer report.
no_crash() {
    local what=$1
    ((CN_RC != 124)) || it_fail "$what: still running after 20 s"
    ((CN_RC < 128)) || it_fail "$what: killed by signal $((CN_RC - 128)): $CN_OUT"
    if grep -qE 'Sanitizer|runtime error:|core dumped' <<<"$CN_OUT"; then
        it_fail "$what: sanitizer report or crash:
$CN_OUT"
    fi
}

# line_of FILE PATTERN: number of the first line of FILE matching PATTERN
line_of() {
    grep -n -m1 -e "$2" "$1" | cut -d: -f1
}

# expect_config_error FILE FIELD: check-config fails with exit 1 and says FILE:LINE:
# (LINE being where FIELD is set) and names FIELD.
expect_config_error() {
    local file=$1 field=$2 line base
    line=$(line_of "$file" "$field")
    base=$(basename "$file")
    cn check-config -c "$file"
    no_crash "check-config $base"
    [[ "$CN_RC" == 1 ]] || it_fail "check-config $base: exit $CN_RC, expected 1: $CN_OUT"
    grep -q "$base:$line:" <<<"$CN_OUT" ||
        it_fail "check-config $base: message lacks \"$base:$line:\": $CN_OUT"
    grep -q "$field" <<<"$CN_OUT" ||
        it_fail "check-config $base: message does not name $field: $CN_OUT"
    it_log "check-config $base: $(head -n 1 <<<"$CN_OUT")"
}

# --- the shipped example, in a copy of the repository layout it expects
example=$IT_ROOT/deploy/examples/standalone.conf
[[ -r "$example" ]] || it_fail "$example is missing"
mkdir -p "$IT_TMP/repo/deploy/examples"
cp "$example" "$IT_TMP/repo/deploy/examples/standalone.conf"
it_make_certs "$IT_TMP/repo/build/demo"
cn check-config -c "$IT_TMP/repo/deploy/examples/standalone.conf"
no_crash "check-config standalone.conf"
[[ "$CN_RC" == 0 ]] ||
    it_fail "check-config deploy/examples/standalone.conf: exit $CN_RC: $CN_OUT"
it_log "check-config deploy/examples/standalone.conf: ok"

# --- broken configs
it_alloc_node_ports
it_write_config "$IT_TMP/good.conf"
cn check-config -c "$IT_TMP/good.conf"
no_crash "check-config good.conf"
[[ "$CN_RC" == 0 ]] || it_fail "check-config of the test's own config: exit $CN_RC: $CN_OUT"

sed 's/^\(    domain = .*\)$/\1\n    bogus_key = 1;/' "$IT_TMP/good.conf" >"$IT_TMP/unknown-key.conf"
expect_config_error "$IT_TMP/unknown-key.conf" bogus_key

sed "s/^    udp_port = .*/    udp_port = 70000;/" "$IT_TMP/good.conf" >"$IT_TMP/bad-port.conf"
expect_config_error "$IT_TMP/bad-port.conf" udp_port

# --- start-up with a certificate that is not there
missing=$IT_TMP/nowhere/missing-node.crt
sed "s|^    certificate = .*|    certificate = \"$missing\";|" "$IT_TMP/good.conf" \
    >"$IT_TMP/missing-cert.conf"
cn run -c "$IT_TMP/missing-cert.conf"
no_crash "run with a missing certificate"
[[ "$CN_RC" != 0 ]] || it_fail "run with a missing certificate exited 0: $CN_OUT"
grep -qE 'missing-node\.crt|tls\.certificate' <<<"$CN_OUT" ||
    it_fail "run with a missing certificate: the message names neither the file nor" \
        "tls.certificate: $CN_OUT"
it_log "run with a missing certificate: exit $CN_RC: $(head -n 1 <<<"$CN_OUT")"

# --- an unknown subcommand is refused, without a crash
cn no-such-subcommand
no_crash "confnode no-such-subcommand"
[[ "$CN_RC" != 0 ]] || it_fail "confnode no-such-subcommand exited 0"

# --- SIGTERM: exit 0 within 5 s
it_start_node "$IT_TMP/good.conf"
it_stop_node 5
it_log "SIGTERM: exit 0"

# --- SIGINT (Ctrl-C in quickstart): same. Job control keeps SIGINT from being
# ignored in the background process, as it would be for a foreground one.
it_alloc_node_ports
it_write_config "$IT_TMP/good2.conf"
set -m
it_start_node "$IT_TMP/good2.conf"
set +m
kill -INT "$IT_NODE_PID"
it_wait_exit "$IT_NODE_PID" 5 || it_fail "confnode did not exit within 5 s of SIGINT"
it_check_node_log
[[ "$IT_WAIT_RC" == 0 ]] || it_fail "confnode exited with status $IT_WAIT_RC after SIGINT"
it_log "SIGINT: exit 0"
