#!/bin/bash
# Malformed SIP over UDP, TCP and TLS while real calls go on.
#
# Every message in tests/integration/malformed/ is sent over each transport listed
# in malformed/EXPECT and the node's reaction is checked (a 400 with a Warning, 501,
# the connection closed, no answer, ...). Meanwhile sipp places 100 calls over UDP;
# all of them must succeed. Afterwards the node still answers OPTIONS, a CRLFCRLF
# keep-alive gets its CRLF, and SIGTERM stops it cleanly.
#
#   tests/integration/test_malformed.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"
it_require sipp python3

corpus=$IT_DIR/malformed
pki=$IT_TMP/pki
it_alloc_node_ports
it_write_config "$IT_TMP/node.conf"
it_start_node "$IT_TMP/node.conf"

# send FILE TRANSPORT EXPECTED: prints sipsend's outcome line. When only an answer
# or a close by the node will do, wait long for it (the sender stops as soon as it
# has it: a loaded machine must not fail the test); when silence may be the
# answer, 1.5 s of it will do.
send() {
    local file=$1 transport=$2 expected=$3 port=$SIP_PORT wait=10
    [[ "$transport" == tls ]] && port=$TLS_PORT
    [[ "|$expected|" =~ \|(none|quiet|eof)\| ]] && wait=1.5
    it_sipsend --transport "$transport" --port "$port" --ca "$pki/ca.crt" \
        --cert "$pki/client.crt" --key "$pki/client.key" --wait "$wait" "$corpus/$file"
}

# field NAME LINE: value of NAME=... in a sipsend outcome line
field() {
    local name=$1 line=$2
    sed -n "s/.*\\b$name=\\([^ ]*\\).*/\\1/p" <<<"$line"
}

# all_codes_at_least MIN CODES: every code in the comma list is >= MIN ("-" passes)
all_codes_at_least() {
    local min=$1 codes=$2 c
    [[ "$codes" == - ]] && return 0
    for c in ${codes//,/ }; do
        ((c >= min)) || return 1
    done
}

# matches EXPECTED OUTCOME: one of the |-separated expectations holds
matches() {
    local expected=$1 outcome=$2 codes first warning closed pong alt
    codes=$(field codes "$outcome")
    first=${codes%%,*}
    warning=$(field warning "$outcome")
    closed=$(field closed "$outcome")
    pong=$(field pong "$outcome")
    for alt in ${expected//|/ }; do
        case "$alt" in
        400) [[ "$first" == 400 && "$warning" == 1 ]] && return 0 ;;
        [0-9][0-9][0-9]) [[ "$first" == "$alt" ]] && return 0 ;;
        none) [[ "$codes" == - ]] && return 0 ;;
        close) [[ "$closed" == peer ]] && all_codes_at_least 300 "$codes" && return 0 ;;
        eof)
            [[ "$closed" == peer || "$closed" == shutdown ]] &&
                all_codes_at_least 300 "$codes" && return 0
            ;;
        pong) [[ "$pong" == 1 && "$codes" == - && "$closed" != peer ]] && return 0 ;;
        quiet) [[ "$codes" == - && "$closed" != peer ]] && return 0 ;;
        *) it_fail "malformed/EXPECT: unknown outcome '$alt'" ;;
        esac
    done
    return 1
}

# Calls in the background for the whole run: 100 calls at 3 per second, each held
# for half a second, so the corpus below hits the node while calls are set up.
it_sipp_start load "127.0.0.1:$SIP_PORT" u1 100 3 -d 500

failures=()
checked=0
while read -r file udp stream; do
    [[ -z "$file" || "$file" == \#* ]] && continue
    [[ -e "$corpus/$file" ]] || it_fail "malformed/EXPECT names $file, which does not exist"
    for transport in udp tcp tls; do
        expected=$stream
        [[ "$transport" == udp ]] && expected=$udp
        [[ "$expected" == - ]] && continue
        outcome=$(send "$file" "$transport" "$expected") ||
            it_fail "$file over $transport: could not talk to the node (is it alive?)"
        checked=$((checked + 1))
        if matches "$expected" "$outcome"; then
            it_log "ok   $file over $transport: $outcome"
        else
            it_log "BAD  $file over $transport: expected $expected, got $outcome"
            failures+=("$file over $transport: expected $expected, got $outcome")
        fi
        it_assert_node_alive
    done
done <"$corpus/EXPECT"

# Every file in the corpus must have an expectation.
for path in "$corpus"/*; do
    name=$(basename "$path")
    [[ "$name" == EXPECT ]] && continue
    awk -v n="$name" '$1 == n { found = 1 } END { exit !found }' "$corpus/EXPECT" ||
        failures+=("$name has no line in malformed/EXPECT")
done

it_sipp_wait load
it_sipp_expect_all load 100

# Still serving: OPTIONS over every transport, keep-alive over TCP.
for transport in udp tcp tls; do
    outcome=$(send ok-options.sip "$transport" 200) || it_fail "OPTIONS over $transport: no contact"
    matches 200 "$outcome" || failures+=("OPTIONS over $transport after the corpus: $outcome")
done
outcome=$(send keepalive.sip tcp pong) || it_fail "keep-alive over TCP: no contact"
matches pong "$outcome" || failures+=("CRLFCRLF keep-alive over TCP: $outcome")

it_stop_node 10

if [[ ${#failures[@]} -ne 0 ]]; then
    printf '  %s\n' "${failures[@]}" >&2
    it_fail "${#failures[@]} of $checked checks failed"
fi
it_log "$checked corpus checks passed; 100 concurrent calls completed"
