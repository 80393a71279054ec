#!/bin/bash
# Makes a demo certificate authority and the certificates a node and a test client
# need, with openssl, in DIR:
#
#   ca.crt ca.key           self-signed CA ("confnode demo CA")
#   node.crt node.key       server certificate, CN sip.example.test,
#                           SAN DNS:sip.example.test, DNS:node1.example.test,
#                           DNS:localhost, IP:127.0.0.1; EKU serverAuth, clientAuth
#   client.crt client.key   client certificate, CN client.example.test,
#                           SAN DNS:client.example.test; EKU clientAuth
#
#   deploy/mkcerts.sh DIR
#
# Existing files are never overwritten: a certificate whose .crt and .key both exist
# is kept, and missing ones are signed by the CA in DIR. Environment overrides:
#   CONFNODE_CERT_CN    node certificate CN            (default sip.example.test)
#   CONFNODE_CERT_SAN   node certificate subjectAltName
#                       (default DNS:sip.example.test,DNS:node1.example.test,
#                        DNS:localhost,IP:127.0.0.1)
#   CONFNODE_CERT_DAYS  validity in days               (default 825)
#   CONFNODE_CA_CN      CA common name                 (default "confnode demo CA")
set -euo pipefail

log() { printf 'mkcerts: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

[[ $# -eq 1 && -n "$1" ]] || die "usage: $0 DIR"
dir=$1
node_cn=${CONFNODE_CERT_CN:-sip.example.test}
node_san=${CONFNODE_CERT_SAN:-DNS:sip.example.test,DNS:node1.example.test,DNS:localhost,IP:127.0.0.1}
days=${CONFNODE_CERT_DAYS:-825}
ca_cn=${CONFNODE_CA_CN:-confnode demo CA}

command -v openssl >/dev/null 2>&1 || die "openssl not found (run deploy/bootstrap.sh)"
mkdir -p "$dir"
umask 077

work=$(mktemp -d "${TMPDIR:-/tmp}/mkcerts.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Writes $work/NAME.key (RSA 2048: what federated edges accept everywhere).
new_key() {
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/$1.key" 2>/dev/null
}

# Moves a finished $work/NAME.{crt,key} into DIR without replacing anything there.
install_pair() {
    local name=$1
    chmod 600 "$work/$name.key"
    chmod 644 "$work/$name.crt"
    if [[ -e "$dir/$name.key" || -e "$dir/$name.crt" ]]; then
        die "$dir/$name.crt or $dir/$name.key appeared while generating; not overwriting"
    fi
    mv "$work/$name.key" "$dir/$name.key"
    mv "$work/$name.crt" "$dir/$name.crt"
    log "wrote $dir/$name.crt and $dir/$name.key"
}

# A pair is present when both files exist; one without the other is an error
# (never guess which half to regenerate).
have_pair() {
    local name=$1
    if [[ -e "$dir/$name.crt" && -e "$dir/$name.key" ]]; then
        return 0
    fi
    if [[ -e "$dir/$name.crt" || -e "$dir/$name.key" ]]; then
        die "$dir has only one of $name.crt and $name.key; remove it or add the other"
    fi
    return 1
}

make_ca() {
    new_key ca
    openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$days" \
        -subj "/O=confnode demo/CN=$ca_cn" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$work/ca.crt"
    install_pair ca
}

# sign NAME CN SAN EKU
sign() {
    local name=$1 cn=$2 san=$3 eku=$4
    new_key "$name"
    openssl req -new -key "$work/$name.key" -subj "/O=confnode demo/CN=$cn" \
        -out "$work/$name.csr"
    cat >"$work/$name.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = $eku
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
    openssl x509 -req -in "$work/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -CAserial "$work/ca.srl" -sha256 -days "$days" \
        -extfile "$work/$name.ext" -out "$work/$name.crt" 2>/dev/null
    openssl verify -CAfile "$dir/ca.crt" "$work/$name.crt" >/dev/null ||
        die "$name.crt does not verify against $dir/ca.crt"
    install_pair "$name"
}

need_ca_key() {
    [[ -e "$dir/ca.key" ]] || die "$dir/ca.key is missing: cannot sign $1.crt"
}

if ! have_pair ca; then
    make_ca
fi
if ! have_pair node; then
    need_ca_key node
    sign node "$node_cn" "$node_san" "serverAuth, clientAuth"
fi
if ! have_pair client; then
    need_ca_key client
    sign client client.example.test "DNS:client.example.test" "clientAuth"
fi
