#!/bin/bash
# The shipped two-node production example and the systemd unit hold together.
#
# deploy/examples/production-node1.conf and production-node2.conf describe one
# cluster: `confnode plan` prints the same DNS records and SAN list for both, and the
# files differ only in the node's own keys (name, addresses, sip_fqdn). One
# certificate made from node2's `confnode csr` and signed by a test CA passes
# `confnode plan --cert` for both nodes (exit 0); a certificate lacking node2's SAN
# fails it for node2 (exit 1). When systemd-analyze is installed, it finds nothing
# wrong in deploy/systemd/confnode.service but the binary it cannot find here.
#
#   tests/integration/test_cluster_examples.sh BUILD_DIR
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init "$@"

ex=$IT_ROOT/deploy/examples
n1=$ex/production-node1.conf
n2=$ex/production-node2.conf

# plan: same records and SANs; the only complaint is the certificate not installed here
for k in 1 2; do
    rc=0
    "$CONFNODE" plan -c "$ex/production-node$k.conf" >"$IT_TMP/plan$k.out" 2>"$IT_TMP/plan$k.err" ||
        rc=$?
    { [[ $rc == 1 ]] && grep -q "certificate '/etc/confnode/tls/" "$IT_TMP/plan$k.err"; } ||
        it_fail "confnode plan production-node$k.conf: exit $rc: $(cat "$IT_TMP/plan$k.err")"
done
grep -q '^_sipfederationtls._tcp.example.com. 300 IN SRV 1 100 5061 sip.example.com.$' \
    "$IT_TMP/plan1.out" || it_fail "no SRV record in the plan: $(cat "$IT_TMP/plan1.out")"
[[ $(grep -c '^sip.example.com. 300 IN A ' "$IT_TMP/plan1.out") == 2 ]] ||
    it_fail "the plan does not put both nodes behind sip.example.com"
diff -u "$IT_TMP/plan1.out" "$IT_TMP/plan2.out" >&2 ||
    it_fail "the two production examples describe different clusters"

# the files differ only in node-specific lines
changed=$(diff "$n1" "$n2" | grep '^[<>]' | sed -E 's/^[<>] *//' |
    grep -vE '^(name = "node[12]";|listen = "192\.0\.2\.1[01]";|address = "192\.0\.2\.1[01]";|sip_fqdn = "node[12]\.example\.com";|# confnode production example: node [12] |#   sip\.example\.com\. +A +192\.0\.2\.1[01] +\((this node|node [12])\))' ||
    true)
[[ -z "$changed" ]] || it_fail "the examples differ beyond the node's own keys: $changed"

# one certificate for both nodes, from node2's request
pki=$IT_TMP/pki
mkdir -p "$pki"
quiet() { "$@" >>"$IT_TMP/openssl.log" 2>&1 || it_fail "$* failed: $(tail -n 5 "$IT_TMP/openssl.log")"; }
quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" \
    -out "$pki/ca.crt" -days 30 -subj "/CN=confnode test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
quiet "$CONFNODE" csr -c "$n2" --key "$pki/cluster.key" --out "$pki/cluster.csr" --key-type ec
quiet openssl x509 -req -in "$pki/cluster.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial 2 -days 30 -copy_extensions copy -out "$pki/cluster.crt"
for k in 1 2; do
    "$CONFNODE" plan -c "$ex/production-node$k.conf" --cert "$pki/cluster.crt" \
        >"$IT_TMP/check$k.out" 2>&1 ||
        it_fail "node$k: confnode plan --cert rejects the cluster certificate: $(cat "$IT_TMP/check$k.out")"
done
quiet openssl req -new -key "$pki/cluster.key" -out "$pki/short.csr" -subj "/CN=sip.example.com" \
    -addext "subjectAltName=DNS:sip.example.com,DNS:node1.example.com" \
    -addext "extendedKeyUsage=serverAuth,clientAuth"
quiet openssl x509 -req -in "$pki/short.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial 3 -days 30 -copy_extensions copy -out "$pki/short.crt"
rc=0
"$CONFNODE" plan -c "$n2" --cert "$pki/short.crt" >"$IT_TMP/short.out" 2>&1 || rc=$?
{ [[ $rc == 1 ]] && grep -q 'missing SAN: DNS:node2.example.com' "$IT_TMP/short.out"; } ||
    it_fail "a certificate without node2's SAN: exit $rc: $(cat "$IT_TMP/short.out")"

# the systemd unit
if command -v systemd-analyze >/dev/null 2>&1; then
    unit=$IT_ROOT/deploy/systemd/confnode.service
    problems=$(systemd-analyze verify "$unit" 2>&1 | grep -v 'confnode is not executable' || true)
    [[ -z "$problems" ]] || it_fail "systemd-analyze verify $unit: $problems"
    grep -q '^ExecStart=/usr/local/bin/confnode run -c /etc/confnode/confnode.conf$' "$unit" ||
        it_fail "the unit does not run confnode run -c /etc/confnode/confnode.conf"
else
    it_log "systemd-analyze is not installed: the unit is not verified"
fi
