# shellcheck shell=bash
# Shared helpers of the local cluster scripts (deploy/cluster-up.sh, cluster-add-node.sh,
# cluster-down.sh) and of the cluster integration tests. Sourced, never run.
#
# A local cluster lives in network namespaces on one machine:
#
#   <id>-hub      a bridge (br0); every other namespace has one veth port on it
#   <id>-infra    .2    redis-server primary :6379, replica :6380, three sentinels
#                       :26379-26381 (master "confnode"), dnsmasq :53
#   <id>-n<K>     .1<K> node K: `confnode run`, SIP UDP/TCP 5060, TLS 5061, media
#                       40000-40999, admin API 127.0.0.1:8088 inside its namespace
#   <id>-client   .200  where test calls come from (sipp)
#
# on 10.231.X.0/24 (X chosen per cluster; a blackhole route for it in the root
# namespace keeps any mistake on this machine). Nothing touches the root namespace's
# interfaces. Everything the scripts make is recorded in STATE/resources before it is
# made, so cluster-down.sh removes it even after a partial failure.
#
# State directory (default /tmp/confnode-cluster):
#   cluster.env    what the cluster is (sourced by cl_load)
#   resources      one line per thing made: "netns NAME", "route PREFIX", "etc DIR"
#   pids/NAME.pid  every process started, with its expected program in NAME.cmd
#   pki/           local CA (ca.crt, ca.key), the cluster key and certificates
#   infra/         redis, sentinel and dnsmasq configs, data and logs; dns-hosts
#   node<K>/       confnode.conf, tls/ (its copy of the cluster certificate), node.log

CL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CL_STATE=${CL_STATE:-}
CL_MASTER=confnode
CL_SIP_PORT=5060
CL_TLS_PORT=5061
CL_ADMIN_PORT=8088

cl_log() { printf '[cluster] %s\n' "$*" >&2; }
cl_die() {
    printf '[cluster] error: %s\n' "$*" >&2
    exit 1
}

# cl_need TOOL...: fails naming the Debian package when a tool is missing.
cl_need() {
    local t pkg
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 && continue
        case $t in
        ip) pkg=iproute2 ;;
        dnsmasq) pkg=dnsmasq-base ;;
        redis-server | redis-cli) pkg=redis-server ;;
        sipp) pkg=sip-tester ;;
        *) pkg=$t ;;
        esac
        cl_die "$t is not installed (Debian package $pkg; deploy/bootstrap.sh installs it)"
    done
}

# ---------------------------------------------------------------------------- state

# cl_load STATE: reads STATE/cluster.env (CL_ID, CL_NET, CL_DOMAIN, CL_NODES, ...).
cl_load() {
    CL_STATE=$(cd "$1" 2>/dev/null && pwd) || cl_die "no cluster state in '$1'"
    [[ -r "$CL_STATE/cluster.env" ]] || cl_die "$CL_STATE holds no cluster (no cluster.env)"
    # shellcheck source=/dev/null
    source "$CL_STATE/cluster.env"
}

# cl_env_set KEY VALUE: records KEY=VALUE in cluster.env (replacing an older value).
cl_env_set() {
    local key=$1 value=$2 f=$CL_STATE/cluster.env
    touch "$f"
    grep -v "^$key=" "$f" >"$f.new" || true
    printf '%s=%q\n' "$key" "$value" >>"$f.new"
    mv "$f.new" "$f"
    printf -v "$key" '%s' "$value"
}

# cl_resource KIND NAME: notes a thing about to be made, for cluster-down.sh.
cl_resource() {
    printf '%s %s\n' "$1" "$2" >>"$CL_STATE/resources"
}

cl_ns_hub() { echo "$CL_ID-hub"; }
cl_ns_infra() { echo "$CL_ID-infra"; }
cl_ns_client() { echo "$CL_ID-client"; }
# cl_ns NODE (node3) -> its namespace
cl_ns() { echo "$CL_ID-n${1#node}"; }
cl_infra_ip() { echo "$CL_NET.2"; }
cl_client_ip() { echo "$CL_NET.200"; }
# cl_ip NODE (node3) -> its address
cl_ip() { echo "$CL_NET.$((10 + ${1#node}))"; }
# cl_node_of_ip ADDRESS -> node name ("" when no node has it)
cl_node_of_ip() {
    local n
    for n in $CL_NODES; do
        [[ "$(cl_ip "$n")" == "$1" ]] && echo "$n" && return 0
    done
    echo ""
}

# cl_in NS COMMAND...: runs COMMAND inside namespace NS.
cl_in() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# ---------------------------------------------------------------------------- processes

# cl_pid_alive PID: running (a zombie is not).
cl_pid_alive() {
    local state
    [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo X)
    [[ "$state" != Z && "$state" != X ]]
}

# cl_pid NAME: the recorded pid of process NAME when it is still that program.
cl_pid() {
    local name=$1 pid cmd
    pid=$(cat "$CL_STATE/pids/$name.pid" 2>/dev/null) || return 1
    cmd=$(cat "$CL_STATE/pids/$name.cmd" 2>/dev/null) || return 1
    cl_pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$cmd" || return 1
    echo "$pid"
}

# cl_spawn NAME NS LOG COMMAND...: starts COMMAND in namespace NS in its own session,
# output to LOG, and records its pid (ip netns exec and setsid both exec: $! is the
# program itself).
cl_spawn() {
    local name=$1 ns=$2 log=$3
    shift 3
    mkdir -p "$CL_STATE/pids"
    ip netns exec "$ns" setsid "$@" </dev/null >>"$log" 2>&1 &
    echo $! >"$CL_STATE/pids/$name.pid"
    printf '%s' "$1" >"$CL_STATE/pids/$name.cmd"
}

# cl_stop NAME [SIGNAL] [GRACE]: stops process NAME (default SIGTERM, then SIGKILL
# after GRACE seconds, default 5). Never fails.
cl_stop() {
    local name=$1 sig=${2:-TERM} grace=${3:-5} pid i
    pid=$(cl_pid "$name") || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        cl_pid_alive "$pid" || break
        sleep 0.1
    done
    if cl_pid_alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.1
    fi
    wait "$pid" 2>/dev/null || true
    return 0
}

# cl_wait SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds, at
# most SECONDS; fails naming WHAT.
cl_wait() {
    local secs=$1 what=$2 end
    shift 2
    end=$((SECONDS + secs))
    while ! "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || {
            cl_log "timed out after ${secs}s waiting for $what"
            return 1
        }
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------- network

# cl_pick_net: reserves a free 10.231.X.0/24 with a blackhole route in the root
# namespace (adding the route is the reservation: it fails when X is taken).
cl_pick_net() {
    local x attempt
    for ((attempt = 0; attempt < 64; attempt++)); do
        x=$((RANDOM % 250 + 1))
        [[ -z "$(ip -4 route show "10.231.$x.0/24" 2>/dev/null)" ]] || continue
        ip -4 addr show 2>/dev/null | grep -q "inet 10\.231\.$x\." && continue
        cl_resource route "10.231.$x.0/24"
        if ip route add blackhole "10.231.$x.0/24" 2>/dev/null; then
            cl_env_set CL_NET "10.231.$x"
            return 0
        fi
    done
    cl_die "no free 10.231.X.0/24 subnet (or 'ip route add blackhole' refused)"
}

# cl_netns_add NS: a namespace with loopback up; its resolver is the cluster's DNS.
cl_netns_add() {
    local ns=$1
    cl_resource netns "$ns"
    ip netns add "$ns" || cl_die "ip netns add $ns failed (are you root? CAP_SYS_ADMIN?)"
    ip -n "$ns" link set lo up
    if mkdir -p "/etc/netns/$ns" 2>/dev/null; then
        cl_resource etc "/etc/netns/$ns"
        printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$(cl_infra_ip)" \
            >"/etc/netns/$ns/resolv.conf"
    fi
}

# cl_port NS PORTNAME ADDRESS/24: a veth pair PORTNAME (in the hub, on br0) <-> eth0
# (in NS) with ADDRESS.
cl_port() {
    local ns=$1 port=$2 addr=$3 hub
    hub=$(cl_ns_hub)
    ip -n "$hub" link add "$port" type veth peer name eth0 netns "$ns"
    ip -n "$hub" link set "$port" master br0 up
    ip -n "$ns" addr add "$addr" dev eth0
    ip -n "$ns" link set eth0 up
}

cl_hub_up() {
    local hub
    hub=$(cl_ns_hub)
    cl_netns_add "$hub"
    ip -n "$hub" link add br0 type bridge
    ip -n "$hub" link set br0 up
}

# ---------------------------------------------------------------------------- infra

cl_redis_conf() {
    local port=$1 d=$CL_STATE/infra
    mkdir -p "$d/redis-$port"
    cat >"$d/redis-$port.conf" <<EOF
# redis-server for the local confnode cluster $CL_ID (made by deploy/cluster-up.sh)
bind $(cl_infra_ip)
port $port
protected-mode no
daemonize no
save ""
appendonly no
repl-diskless-sync-delay 0
dir $d/redis-$port
logfile $d/redis-$port.log
EOF
    if [[ $port != 6379 ]]; then
        echo "replicaof $(cl_infra_ip) 6379" >>"$d/redis-$port.conf"
    fi
}

cl_sentinel_conf() {
    local port=$1 d=$CL_STATE/infra
    cat >"$d/sentinel-$port.conf" <<EOF
# Sentinel for the local confnode cluster $CL_ID (rewritten by the sentinel itself)
bind $(cl_infra_ip)
port $port
protected-mode no
daemonize no
dir $d
logfile $d/sentinel-$port.log
sentinel monitor $CL_MASTER $(cl_infra_ip) 6379 2
sentinel down-after-milliseconds $CL_MASTER 1000
sentinel failover-timeout $CL_MASTER 3000
sentinel parallel-syncs $CL_MASTER 1
EOF
}

# cl_redis_start PORT / cl_sentinel_start PORT: (re)start one infra process from its
# config file. Process names: redis-PORT, sentinel-PORT.
cl_redis_start() {
    local port=$1 d=$CL_STATE/infra
    cl_pid "redis-$port" >/dev/null && return 0
    cl_spawn "redis-$port" "$(cl_ns_infra)" "$d/redis-$port.out" \
        redis-server "$d/redis-$port.conf"
}

cl_sentinel_start() {
    local port=$1 d=$CL_STATE/infra
    cl_pid "sentinel-$port" >/dev/null && return 0
    cl_spawn "sentinel-$port" "$(cl_ns_infra)" "$d/sentinel-$port.out" \
        redis-server "$d/sentinel-$port.conf" --sentinel
}

# cl_rcli PORT ARGS...: redis-cli against the infra address (inside its namespace).
cl_rcli() {
    local port=$1
    shift
    cl_in "$(cl_ns_infra)" timeout 5 redis-cli -h "$(cl_infra_ip)" -p "$port" "$@"
}

cl_redis_ping() { [[ "$(cl_rcli "$1" ping 2>/dev/null)" == PONG ]]; }

cl_replica_synced() {
    cl_rcli "$1" info replication 2>/dev/null | grep -q '^master_link_status:up'
}

# cl_sentinel_field PORT FIELD: a field of SENTINEL MASTER confnode.
cl_sentinel_field() {
    cl_rcli "$1" sentinel master "$CL_MASTER" 2>/dev/null |
        awk -v f="$2" 'prev == f { print; exit } { prev = $0 }'
}

# All three sentinels know the replica and each other (a fail-over can happen).
cl_sentinels_meshed() {
    local p
    for p in 26379 26380 26381; do
        [[ "$(cl_sentinel_field $p num-other-sentinels)" == 2 ]] || return 1
        [[ "$(cl_sentinel_field $p num-slaves)" -ge 1 ]] 2>/dev/null || return 1
    done
}

# cl_primary: "IP:port" of the primary as the first answering sentinel names it.
cl_primary() {
    local p out
    for p in 26379 26380 26381; do
        out=$(cl_rcli $p sentinel get-master-addr-by-name "$CL_MASTER" 2>/dev/null | paste -sd:)
        [[ "$out" == *:* ]] && echo "$out" && return 0
    done
    return 1
}

# cl_redis CMD...: a command on the current primary.
cl_redis() {
    local pri
    pri=$(cl_primary) || return 1
    cl_rcli "${pri##*:}" "$@"
}

# cl_infra_up: redis primary and replica, then the sentinels once the replica is in
# sync (a sentinel learns replicas from the primary's INFO: started after the sync it
# knows the replica at once), then waits until the sentinels see each other.
cl_infra_up() {
    local p
    cl_redis_conf 6379
    cl_redis_conf 6380
    cl_redis_start 6379
    cl_wait 20 "redis-server 6379" cl_redis_ping 6379 || return 1
    cl_redis_start 6380
    cl_wait 20 "the replica (6380) in sync" cl_replica_synced 6380 || return 1
    for p in 26379 26380 26381; do
        cl_sentinel_conf $p
        cl_sentinel_start $p
    done
    cl_wait 30 "the three sentinels to know the replica and each other" cl_sentinels_meshed
}

# cl_redis_all_down: Redis gone entirely: SIGKILL to the sentinels, then to both
# servers (sentinels first, so none of them starts a fail-over meanwhile).
cl_redis_all_down() {
    local p
    for p in sentinel-26379 sentinel-26380 sentinel-26381 redis-6380 redis-6379; do
        cl_stop "$p" KILL 2
    done
}

# cl_redis_all_up: starts them again from their config files (the sentinels' as they
# rewrote them): the primary, the replica, then the sentinels.
cl_redis_all_up() {
    local p
    cl_redis_start 6379
    cl_wait 20 "redis-server 6379" cl_redis_ping 6379 || return 1
    cl_redis_start 6380
    for p in 26379 26380 26381; do
        cl_sentinel_start $p
    done
}

# ---------------------------------------------------------------------------- DNS

# cl_dns_write: dnsmasq's config and hosts file from `confnode plan` of the
# newest node's config: the SRV record and every A record the plan asks for.
cl_dns_write() {
    local d=$CL_STATE/infra plan last
    last=${CL_NODES##* }
    plan=$("$CL_CONFNODE" plan -c "$CL_STATE/$last/confnode.conf" 2>/dev/null || true)
    [[ "$plan" == *" IN SRV "* ]] || cl_die "confnode plan printed no SRV record: $plan"
    {
        echo "# dnsmasq for the local confnode cluster $CL_ID (from confnode plan)"
        echo "port=53"
        echo "listen-address=$(cl_infra_ip)"
        echo "bind-interfaces"
        echo "no-resolv"
        echo "no-hosts"
        echo "user=root"
        echo "local=/$CL_DOMAIN/"
        # the TTL the plan asks for
        awk '$3 == "IN" { print "local-ttl=" $2; exit }' <<<"$plan"
        echo "addn-hosts=$d/dns-hosts"
        echo "log-facility=$d/dnsmasq.log"
        # _sipfederationtls._tcp.D. 300 IN SRV 1 100 5061 sip.D.
        awk '$3 == "IN" && $4 == "SRV" {
                 n = $1; t = $8; sub(/\.$/, "", n); sub(/\.$/, "", t)
                 printf "srv-host=%s,%s,%s,%s,%s\n", n, t, $7, $5, $6 }' <<<"$plan"
    } >"$d/dnsmasq.conf.new"
    awk '$3 == "IN" && ($4 == "A" || $4 == "AAAA") {
             n = $1; sub(/\.$/, "", n); print $5, n }' <<<"$plan" >"$d/dns-hosts.new"
    mv "$d/dnsmasq.conf.new" "$d/dnsmasq.conf"
    mv "$d/dns-hosts.new" "$d/dns-hosts"
}

cl_dns_start() {
    local d=$CL_STATE/infra
    cl_pid dnsmasq >/dev/null && return 0
    cl_spawn dnsmasq "$(cl_ns_infra)" "$d/dnsmasq.out" \
        "${CL_DNSMASQ:-dnsmasq}" --keep-in-foreground --conf-file="$d/dnsmasq.conf"
    cl_wait 10 "dnsmasq on $(cl_infra_ip):53" cl_in "$(cl_ns_infra)" \
        sh -c "ss -Hlun 'sport = :53' | grep -q ."
}

# cl_dns_reload: dnsmasq re-reads the hosts file (new A records) on SIGHUP.
cl_dns_reload() {
    local pid
    pid=$(cl_pid dnsmasq) || cl_die "dnsmasq is not running"
    kill -HUP "$pid"
}

# ---------------------------------------------------------------------------- certificates

cl_ca_make() {
    local p=$CL_STATE/pki
    mkdir -p "$p"
    chmod 700 "$p"
    [[ -s "$p/ca.crt" && -s "$p/ca.key" ]] && return 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$p/ca.key" -out "$p/ca.crt" -days 365 \
        -subj "/O=confnode local cluster/CN=confnode local cluster CA $CL_ID" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" >>"$p/openssl.log" 2>&1 ||
        cl_die "openssl could not make the CA: $(tail -n 3 "$p/openssl.log")"
}

# cl_cert_make CONFIG: the cluster certificate for the plan of CONFIG: `confnode csr`
# writes the request (CN = SRV target, SAN = it and every node FQDN, EKU serverAuth +
# clientAuth) with the cluster key (made on the first call), the local CA signs it
# keeping the requested extensions. Prints the new certificate's path
# (pki/cluster-<generation>.crt) and points pki/cluster.crt at it.
cl_cert_make() {
    local conf=$1 p=$CL_STATE/pki gen ext
    gen=$((${CL_CERT_GEN:-0} + 1))
    "$CL_CONFNODE" csr -c "$conf" --key "$p/cluster.key" --out "$p/cluster-$gen.csr" \
        --key-type ec >"$p/csr.log" 2>&1 || cl_die "confnode csr failed: $(tail -n 3 "$p/csr.log")"
    ext=$p/leaf.ext
    printf 'basicConstraints=critical,CA:FALSE\n' >"$ext"
    if [[ "${CL_CERT_IP_SANS:-0}" == 1 ]]; then
        # the requested names plus every node's address (an extension in the extfile
        # replaces the requested one)
        local san n
        san=$(openssl req -in "$p/cluster-$gen.csr" -noout -text |
            grep -o 'DNS:[^, ]*' | paste -sd,)
        for n in $CL_NODES; do
            san+=",IP:$(cl_ip "$n")"
        done
        printf 'subjectAltName=%s\n' "$san" >>"$ext"
    fi
    openssl x509 -req -in "$p/cluster-$gen.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 365 -sha256 -copy_extensions copy \
        -extfile "$ext" -out "$p/cluster-$gen.crt" >>"$p/openssl.log" 2>&1 ||
        cl_die "openssl could not sign the cluster certificate: $(tail -n 3 "$p/openssl.log")"
    ln -sfn "cluster-$gen.crt" "$p/cluster.crt"
    cl_env_set CL_CERT_GEN "$gen"
    echo "$p/cluster-$gen.crt"
}

# cl_cert_install NODE CERT: installs CERT as NODE's certificate (atomic rename), with
# the cluster key and the CA. A running node keeps the certificate it loaded until
# its next start.
cl_cert_install() {
    local node=$1 cert=$2 t=$CL_STATE/$1/tls
    mkdir -p "$t"
    chmod 700 "$t"
    cp "$CL_STATE/pki/cluster.key" "$t/cluster.key.new"
    cp "$CL_STATE/pki/ca.crt" "$t/ca.crt.new"
    cp "$cert" "$t/cluster.crt.new"
    mv "$t/cluster.key.new" "$t/cluster.key"
    mv "$t/ca.crt.new" "$t/ca.crt"
    mv "$t/cluster.crt.new" "$t/cluster.crt"
}

# cl_cert_sans CERT: its SAN DNS names, comma-separated.
cl_cert_sans() {
    openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null |
        grep -o 'DNS:[^, ]*' | sed 's/^DNS://' | paste -sd,
}

# ---------------------------------------------------------------------------- nodes

# cl_node_conf NODE: writes NODE/confnode.conf for the nodes in CL_NODES.
cl_node_conf() {
    local node=$1 ip n entries="" sentinels
    ip=$(cl_ip "$node")
    sentinels="\"$(cl_infra_ip):26379\", \"$(cl_infra_ip):26380\", \"$(cl_infra_ip):26381\""
    for n in $CL_NODES; do
        entries+="${entries:+,
}    { name = \"$n\"; fqdn = \"$n.$CL_DOMAIN\"; address = \"$(cl_ip "$n")\"; }"
    done
    mkdir -p "$CL_STATE/$node"
    cat >"$CL_STATE/$node/confnode.conf.new" <<EOF
# $node of the local confnode cluster $CL_ID (made by deploy/cluster-up.sh).
# Runs in network namespace $(cl_ns "$node"): ip netns exec $(cl_ns "$node") ...
node: { name = "$node"; workers = ${CL_WORKERS:-1}; pin_workers = false; log_level = "info"; };
sip: {
  listen = "$ip";
  domain = "$CL_DOMAIN";
  udp_port = $CL_SIP_PORT;
  tcp_port = $CL_SIP_PORT;
  tls_port = $CL_TLS_PORT;
};
tls: {
  certificate = "tls/cluster.crt";
  key = "tls/cluster.key";
  ca = "tls/ca.crt";
  verify_client = "request";
};
media: { address = "$ip"; port_min = 40000; port_max = 40999; };
admin: { listen = "127.0.0.1"; port = $CL_ADMIN_PORT; };
vmrs = (
  { alias = "room1@$CL_DOMAIN"; name = "Room 1"; },
  { alias = "room2@$CL_DOMAIN"; name = "Room 2"; },
  { alias = "room3@$CL_DOMAIN"; name = "Room 3"; },
  { alias = "room4@$CL_DOMAIN"; name = "Room 4"; }
);
cluster: {
  mode = "redis";
  sentinels = [ $sentinels ];
  master_name = "$CL_MASTER";
  lease_ttl = ${CL_LEASE:-3};
  heartbeat = ${CL_HEARTBEAT:-1};
  sip_fqdn = "$node.$CL_DOMAIN";
  srv_domain = "$CL_DOMAIN";
  srv_target = "sip.$CL_DOMAIN";
  nodes = (
$entries
  );
};
EOF
    mv "$CL_STATE/$node/confnode.conf.new" "$CL_STATE/$node/confnode.conf"
}

# cl_node_netns NODE: its namespace and port on the bridge.
cl_node_netns() {
    local node=$1 ns
    ns=$(cl_ns "$node")
    cl_netns_add "$ns"
    cl_port "$ns" "p${node#node}" "$(cl_ip "$node")/24"
}

# cl_node_start NODE: `confnode run` in its namespace (process name NODE).
cl_node_start() {
    local node=$1
    cl_pid "$node" >/dev/null && return 0
    "$CL_CONFNODE" check-config -c "$CL_STATE/$node/confnode.conf" >/dev/null ||
        cl_die "$node: confnode check-config failed"
    cl_spawn "$node" "$(cl_ns "$node")" "$CL_STATE/$node/node.log" \
        "$CL_CONFNODE" run -c "$CL_STATE/$node/confnode.conf"
}

# cl_status NODE: its /status JSON (admin API inside its namespace).
cl_status() {
    cl_in "$(cl_ns "$1")" curl -fsS --max-time 3 "http://127.0.0.1:$CL_ADMIN_PORT/status"
}

# cl_status_is NODE JQ: true when NODE's /status satisfies the jq expression.
cl_status_is() {
    local json
    json=$(cl_status "$1" 2>/dev/null) || return 1
    jq -e "$2" <<<"$json" >/dev/null 2>&1
}

# cl_node_ready NODE: answering /status and connected to the Redis primary.
cl_node_ready() {
    cl_pid "$1" >/dev/null || return 1
    cl_status_is "$1" '.cluster.connected == true and .cluster.degraded == false'
}

# cl_nodes_wait_ready SECONDS NODE...: waits for them all; on failure shows the log.
cl_nodes_wait_ready() {
    local secs=$1 n
    shift
    for n in "$@"; do
        if ! cl_wait "$secs" "$n to be up and connected" cl_node_ready "$n"; then
            cl_log "last lines of $CL_STATE/$n/node.log:"
            tail -n 20 "$CL_STATE/$n/node.log" >&2 || true
            return 1
        fi
    done
}

# ---------------------------------------------------------------------------- summary

cl_summary() {
    local n pid
    cat <<EOF
confnode local cluster $CL_ID
  state       $CL_STATE
  subnet      $CL_NET.0/24 (blackhole route in the root namespace)
  domain      $CL_DOMAIN: _sipfederationtls._tcp.$CL_DOMAIN SRV -> sip.$CL_DOMAIN:$CL_TLS_PORT
  dns         $(cl_infra_ip):53 dnsmasq (pid $(cl_pid dnsmasq || echo -)), records from confnode plan
  redis       primary $(cl_primary || echo ?) (master "$CL_MASTER"), sentinels $(cl_infra_ip):26379,26380,26381
  infra       namespace $(cl_ns_infra), logs in $CL_STATE/infra/
  certificate $CL_STATE/pki/cluster.crt: CN sip.$CL_DOMAIN, SAN $(cl_cert_sans "$CL_STATE/pki/cluster.crt")
  ca          $CL_STATE/pki/ca.crt
EOF
    for n in $CL_NODES; do
        pid=$(cl_pid "$n" || echo -)
        printf '  %-11s %-14s namespace %s, pid %s, admin 127.0.0.1:%s inside it, %s\n' \
            "$n" "$(cl_ip "$n")" "$(cl_ns "$n")" "$pid" "$CL_ADMIN_PORT" "$CL_STATE/$n/"
    done
    printf '  %-11s %-14s namespace %s\n' client "$(cl_client_ip)" "$(cl_ns_client)"
    cat <<EOF
rooms: room1..room4@$CL_DOMAIN. Try:
  ip netns exec $(cl_ns_client) sipp -sn uac -s room1 -i $(cl_client_ip) -m 1 $(cl_ip node1):$CL_SIP_PORT
  ip netns exec $(cl_ns node1) curl -s 127.0.0.1:$CL_ADMIN_PORT/status
  ip netns exec $(cl_ns node1) $CL_CONFNODE drain --admin 127.0.0.1:$CL_ADMIN_PORT
  ip netns exec $(cl_ns_client) $CL_CONFNODE doctor $CL_DOMAIN --dns $(cl_infra_ip):53 --ca $CL_STATE/pki/ca.crt
  $CL_ROOT/deploy/cluster-add-node.sh -d $CL_STATE
  $CL_ROOT/deploy/cluster-down.sh -d $CL_STATE
EOF
}

# ---------------------------------------------------------------------------- teardown

# cl_teardown: stops every process, deletes every namespace, route and /etc/netns
# directory listed in STATE/resources (whatever exists of them), newest first.
cl_teardown() {
    local f name kind what pid i
    [[ -n "$CL_STATE" && -d "$CL_STATE" ]] || return 0
    # recorded processes: nodes first (a clean SIGTERM), then the rest
    if [[ -d "$CL_STATE/pids" ]]; then
        for f in "$CL_STATE"/pids/node*.pid; do
            [[ -e "$f" ]] || continue
            name=$(basename "$f" .pid)
            cl_stop "$name" TERM 5
        done
        for f in "$CL_STATE"/pids/*.pid; do
            [[ -e "$f" ]] || continue
            cl_stop "$(basename "$f" .pid)" TERM 3
        done
    fi
    [[ -r "$CL_STATE/resources" ]] || return 0
    # whatever still runs inside our namespaces was started there by us
    while read -r kind what; do
        [[ $kind == netns ]] || continue
        ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF "$what" || continue
        for pid in $(ip netns pids "$what" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
    done <"$CL_STATE/resources"
    while read -r kind what; do
        case $kind in
        netns)
            for i in 1 2 3 4 5; do
                ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF "$what" || break
                ip netns del "$what" 2>/dev/null || sleep 0.2
            done
            ;;
        route)
            ip route del blackhole "$what" 2>/dev/null || true
            ;;
        etc)
            if [[ "$what" == /etc/netns/?* && "$what" != */../* ]]; then
                rm -rf -- "$what"
            fi
            ;;
        esac
    done < <(tac "$CL_STATE/resources")
    return 0
}

# ---------------------------------------------------------------------------- test calls

# cl_uac_scenario FILE: a sipp UAC scenario for calls into the cluster. The call
# completes (200: ACK, hold for the -d duration, BYE; in-dialog requests go to the
# answer's Contact through its Record-Route set, so through a forwarding node) or is
# sent to the room's owner (302: ACK; the Contact host is logged). Each call logs
# one line, "outcome=200" or "outcome=302 owner=IP:port", to sipp's -log_file.
cl_uac_scenario() {
    cat >"$1" <<'XML'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="confnode cluster call: answered (200) or sent to the owner (302)">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Subject: confnode cluster test
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="302" optional="true" next="moved">
    <action>
      <ereg regexp="sip:[^@]*@\[?([0-9a-fA-F.:]+)" search_in="hdr" header="Contact:"
            check_it="true" assign_to="contact,owner"/>
    </action>
  </recv>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop>
    <action><log message="outcome=200 call=[call_id]"/></action>
  </nop>
  <pause/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
  <nop next="done"/>
  <label id="moved"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop>
    <action><log message="outcome=302 owner=[$owner] call=[call_id] contact=[$contact]"/></action>
  </nop>
  <label id="done"/>
</scenario>
XML
}

# ---------------------------------------------------------------------------- integration tests
# For tests/integration/test_cluster_*.sh: they source tests/integration/lib.sh, call
# it_init, then cl_test_up. Calls use the scenario above from the client namespace;
# each sipp run NAME leaves $IT_TMP/NAME.{pid,out,csv,errors,calls}, so lib.sh's
# it_sipp_wait / it_sipp_expect_all / it_sipp_show apply to it.

# cl_test_up N: a cluster of N nodes in $IT_TMP/cluster from the build under test;
# removed when the test ends, whatever happens.
cl_test_up() {
    local count=$1
    [[ $EUID -eq 0 ]] || it_fail "the cluster tests need root (network namespaces)"
    it_require ip setsid sipp redis-server redis-cli
    [[ -x "$(command -v dnsmasq || echo /usr/sbin/dnsmasq)" ]] ||
        it_fail "dnsmasq is not installed (Debian package dnsmasq-base)"
    CL_TEST_STATE=$IT_TMP/cluster
    CL_CALL_SEQ=0
    trap cl_test_cleanup EXIT
    CL_TEST_T0=$SECONDS
    CONFNODE=$CONFNODE "$CL_ROOT/deploy/cluster-up.sh" -d "$CL_TEST_STATE" "$count" \
        >"$IT_TMP/cluster-up.out" 2>&1 || {
        tail -n 40 "$IT_TMP/cluster-up.out" >&2
        it_fail "deploy/cluster-up.sh $count failed"
    }
    cl_load "$CL_TEST_STATE"
    cl_uac_scenario "$IT_TMP/cluster-uac.xml"
    it_log "cluster $CL_ID up in $((SECONDS - CL_TEST_T0)) s: $CL_NODES on $CL_NET.0/24"
}

cl_test_cleanup() {
    local rc=$? n
    set +e
    if [[ $rc -ne 0 && -n "${CL_STATE:-}" ]]; then
        for n in ${CL_NODES:-}; do
            [[ -s "$CL_STATE/$n/node.log" ]] || continue
            printf '[%s] --- last lines of %s ---\n' "$IT_NAME" "$CL_STATE/$n/node.log" >&2
            tail -n 15 "$CL_STATE/$n/node.log" >&2
        done
    fi
    if [[ -n "${CL_TEST_STATE:-}" && -e "$CL_TEST_STATE/resources" ]]; then
        "$CL_ROOT/deploy/cluster-down.sh" -d "$CL_TEST_STATE" --keep-state \
            >>"$IT_TMP/cluster-down.out" 2>&1 ||
            it_log "cluster-down.sh failed: $(tail -n 5 "$IT_TMP/cluster-down.out")"
    fi
    (exit "$rc")
    it_cleanup
}

# cl_test_finish [NODE...]: stops the nodes (default all) with SIGTERM; each must log
# a clean stop and no sanitizer report or crash (under ASan, leaks show at exit).
# shellcheck disable=SC2120 # the node list is optional
cl_test_finish() {
    local n log nodes=("$@")
    [[ $# -gt 0 ]] || read -ra nodes <<<"$CL_NODES"
    for n in "${nodes[@]}"; do
        cl_pid "$n" >/dev/null || it_fail "$n is not running at the end of the test"
        cl_stop "$n" TERM 15
    done
    for n in "${nodes[@]}"; do
        log=$CL_STATE/$n/node.log
        if grep -qE 'Sanitizer|runtime error:|core dumped|Segmentation fault' "$log"; then
            grep -nE -m 5 'Sanitizer|runtime error:|SUMMARY' "$log" >&2
            it_fail "$n's log shows a sanitizer report or a crash ($log)"
        fi
        grep -q "event=stopped node=$n" "$log" || it_fail "$n did not stop cleanly on SIGTERM ($log)"
    done
}

# cl_call NAME TARGET ROOM [HOLD_MS] [CALLS] [RATE]: starts sipp in the client
# namespace: CALLS calls (default 1) at RATE per second into ROOM at TARGET (a node
# name or an address), each held HOLD_MS once answered (default 0). CL_SIPP_OPTS:
# more sipp options.
cl_call() {
    local name=$1 target=$2 room=$3 hold=${4:-0} calls=${5:-1} rate=${6:-10} seq pid
    local -a extra
    read -ra extra <<<"${CL_SIPP_OPTS:-}"
    [[ $target == *.* ]] || target=$(cl_ip "$target")
    CL_CALL_SEQ=$((CL_CALL_SEQ + 1))
    seq=$CL_CALL_SEQ
    rm -f "$IT_TMP/$name".*
    (
        cd "$IT_TMP" || exit 1
        exec timeout -k 5 100 ip netns exec "$(cl_ns_client)" sipp -sf "$IT_TMP/cluster-uac.xml" \
            -s "$room" "$target:$CL_SIP_PORT" -t u1 -i "$(cl_client_ip)" -p $((5100 + seq)) \
            -mi "$(cl_client_ip)" -mp $((20000 + 10 * seq)) -m "$calls" -r "$rate" -d "$hold" \
            -l 50 -nostdin -timeout 90s -timeout_error -trace_stat -stf "$IT_TMP/$name.csv" -fd 1 \
            -trace_err -error_file "$IT_TMP/$name.errors" \
            -trace_logs -log_file "$IT_TMP/$name.calls" "${extra[@]}" >"$IT_TMP/$name.out" 2>&1
    ) &
    pid=$!
    IT_PIDS+=("$pid")
    echo "$pid" >"$IT_TMP/$name.pid"
}

# cl_call_stop NAME: ends sipp run NAME at once (its calls are abandoned).
cl_call_stop() {
    local pid child
    pid=$(cat "$IT_TMP/$1.pid" 2>/dev/null) || return 0
    # timeout(1) is the run's process; sipp runs under it (ip netns exec execs it)
    for child in $(pgrep -P "$pid" 2>/dev/null); do
        kill -KILL "$child" 2>/dev/null || true
    done
    it_wait_exit "$pid" 5 || it_kill "$pid" 1
}

# cl_outcomes NAME: one line per call of sipp run NAME so far: "200" (answered) or
# "302 IP" (sent to the owner at IP).
cl_outcomes() {
    { grep -ho 'outcome=[0-9]*\( owner=[^ ]*\)\?' "$IT_TMP/$1.calls" 2>/dev/null || true; } |
        sed -E 's/^outcome=//; s/ owner=\[?([0-9a-fA-F.:]*[0-9a-fA-F])\]?:[0-9]+$/ \1/'
}

# cl_outcome_counts NAME: "5x 200, 11x 302 10.231.7.13" for sipp run NAME.
cl_outcome_counts() {
    cl_outcomes "$1" | sort | uniq -c | awk '{ n = $1; $1 = ""; printf "%s%dx%s", sep, n, $0; sep = ", " }'
}

# cl_call_run NAME TARGET ROOM [HOLD_MS] [CALLS]: cl_call, then waits; every call must
# have succeeded (answered, or sent to the owner).
cl_call_run() {
    cl_call "$@"
    it_sipp_wait "$1"
    it_sipp_expect_all "$1" "${5:-1}"
}

# cl_owner ROOM: the node that owns ROOM's conference in Redis ("" when none).
cl_owner() {
    cl_redis hget "confnode:conf:$1@$CL_DOMAIN" owner 2>/dev/null || true
}

# cl_wait_outcome NAME SECONDS: waits until sipp run NAME logged an outcome.
cl_wait_outcome() {
    cl_wait "$2" "a call outcome of $1" grep -q outcome= "$IT_TMP/$1.calls" ||
        {
            it_sipp_show "$1"
            it_fail "sipp $1 logged no call outcome within $2 s"
        }
}

# cl_hold NAME TARGET ROOM HOLD_MS: one call into ROOM held HOLD_MS on the room's
# owner: placed at TARGET and, when sent elsewhere (302), placed again at the owner.
# Waits until it is answered; sets CL_HELD_NODE (the room's owner, where the call's
# conference is up) and CL_HELD_NAME (the sipp run holding it).
cl_hold() {
    local name=$1 target=$2 room=$3 hold=$4 out
    cl_call "$name" "$target" "$room" "$hold"
    cl_wait_outcome "$name" 15
    out=$(cl_outcomes "$name" | head -n 1)
    CL_HELD_NAME=$name
    if [[ $out == 302\ * ]]; then
        it_sipp_wait "$name"
        CL_HELD_NODE=$(cl_node_of_ip "${out#302 }")
        [[ -n "$CL_HELD_NODE" ]] || it_fail "$name: 302 to ${out#302 }, which is no node"
        CL_HELD_NAME=$name-owner
        cl_call "$CL_HELD_NAME" "$CL_HELD_NODE" "$room" "$hold"
        cl_wait_outcome "$CL_HELD_NAME" 15
        out=$(cl_outcomes "$CL_HELD_NAME" | head -n 1)
    fi
    [[ $out == 200 ]] || it_fail "$CL_HELD_NAME: answered '$out', not 200"
    # answered: by the owner, or through the node reached (a forwarding non-owner)
    CL_HELD_NODE=$(cl_owner "$room")
    [[ -n "$CL_HELD_NODE" ]] || it_fail "$CL_HELD_NAME is up but Redis names no owner for $room"
}

# cl_wait_status SECONDS WHAT JQ NODE...: waits until every NODE's /status satisfies
# JQ; fails showing their cluster objects.
cl_wait_status() {
    local secs=$1 what=$2 expr=$3 end n ok
    shift 3
    end=$((SECONDS + secs))
    for (( ; ; )); do
        ok=1
        for n in "$@"; do
            cl_status_is "$n" "$expr" || {
                ok=0
                break
            }
        done
        [[ $ok == 1 ]] && return 0
        if ((SECONDS >= end)); then
            for n in "$@"; do
                it_log "$n /status cluster: $(cl_status "$n" 2>&1 | jq -c .cluster 2>&1)"
            done
            it_fail "waited $secs s for $what"
        fi
        sleep 0.2
    done
}
