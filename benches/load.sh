#!/usr/bin/env bash
# Load test: cnamed against NSD, Knot DNS and a bare UDP reflector (the kernel's ceiling), all
# answering the same zone and the same query file, in interleaved rounds.
#
#   benches/load.sh [--apps N] [--rounds R] [--seconds S] [--whole-box-only] [--no-whole-box]
#                   [--cnamed-flags "FLAGS"]
#
# Per core: each server runs one worker pinned to core 0; cnamed-load drives it from core 1.
# Whole box: two workers each, nothing pinned. Loopback only. Needs root for apt-get (it installs
# nsd, knot, dnsperf and dig when missing).
. "$(dirname "$0")/../tests/lib.sh"

apps=100000
rounds=3
seconds=15
whole_box_only=no
no_whole_box=no
cnamed_flags=
parse_flags "[--apps N] [--rounds R] [--seconds S] [--whole-box-only] [--no-whole-box] [--cnamed-flags \"FLAGS\"]" \
    apps rounds seconds whole-box-only? no-whole-box? cnamed-flags -- "$@"
read -ra cnamed_flags <<< "$cnamed_flags"
per_core=yes
whole_box=yes
[ "$whole_box_only" = no ] || per_core=no
[ "$no_whole_box" = no ] || whole_box=no

# Kept between runs: generated data is reused.
work=$root/target/load
mkdir -p "$work"
zone=apps.example.com
declare -A port=([cnamed]=5301 [nsd]=5302 [knot]=5303 [reflector]=5304)
servers=(cnamed nsd knot reflector)
pids=()

# Stops the servers of a mode (NSD forks: its children are found by their configuration).
stop_servers() {
    for pid in "${pids[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    pkill -f "$work/nsd.conf" 2>/dev/null || true
    wait 2>/dev/null || true
}
on_exit stop_servers

need nsd:nsd knotd:knot dnsperf:dnsperf dig:bind9-dnsutils
systemctl stop nsd knot 2>/dev/null || true

step "building"
build

dump=$work/apps-$apps.json
queries=$work/queries-$apps.txt
zonefile=$work/zone-$apps.txt
if [ ! -s "$dump" ]; then
    step "generating $apps apps"
    "$bin/cnamed-gen" dump --apps "$apps" --clusters 8 > "$dump"
fi
if [ ! -s "$queries" ]; then
    "$bin/cnamed-gen" queries --apps "$apps" --count 1000000 --mix mixed > "$queries"
fi
if [ ! -s "$zonefile" ]; then
    "$bin/cnamed" zonefile --dump "$dump" > "$zonefile"
fi
step "zone: $(grep -c CNAME "$zonefile") CNAMEs; queries: $(wc -l < "$queries")"

write_configs() {
    local workers=$1
    mkdir -p "$work/nsd" "$work/knot"
    cat > "$work/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@${port[nsd]}
    server-count: $workers
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "$work"
    pidfile: "$work/nsd/nsd.pid"
    xfrdfile: "$work/nsd/xfrd.state"
    zonelistfile: "$work/nsd/zone.list"
    database: ""
    verbosity: 0
    hide-version: no
    reuseport: yes
    round-robin: no
    minimal-responses: yes
    # Debian builds NSD with response rate limiting on (200 q/s per /24): off for a load test.
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: $zone
    zonefile: "$zonefile"
EOF
    cat > "$work/knot.conf" <<EOF
server:
    listen: 127.0.0.1@${port[knot]}
    udp-workers: $workers
    tcp-workers: 1
    background-workers: 1
    rundir: "$work/knot"
log:
  - target: stderr
    any: error
database:
    storage: "$work/knot"
template:
  - id: default
    storage: "$work"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: $zone
    file: "$zonefile"
EOF
}

# start NAME WORKERS PIN: starts one server in the background, records its pid.
start() {
    local name=$1 workers=$2 pin=$3 prefix=()
    [ "$pin" = yes ] && prefix=(taskset -c 0)
    case "$name" in
        cnamed) "${prefix[@]}" "$bin/cnamed" --dump "$dump" --listen "127.0.0.1:${port[cnamed]}" --threads "$workers" --identity bench "${cnamed_flags[@]}" 2>>"$work/cnamed.log" & ;;
        nsd) "${prefix[@]}" nsd -d -c "$work/nsd.conf" 2>>"$work/nsd.log" & ;;
        knot) "${prefix[@]}" knotd -c "$work/knot.conf" 2>>"$work/knot.log" & ;;
        reflector) "${prefix[@]}" "$bin/cnamed-reflector" "127.0.0.1:${port[reflector]}" "$workers" 2>>"$work/reflector.log" & ;;
    esac
    pids+=($!)
    eval "pid_$name=$!"
}

wait_ready() {
    local name=$1
    [ "$name" = reflector ] && { sleep 0.5; return; }
    for _ in $(seq 1 600); do
        if dig +short +time=1 +tries=1 @127.0.0.1 -p "${port[$name]}" "$zone" SOA 2>/dev/null | grep -q hostmaster; then
            return
        fi
        sleep 0.5
    done
    echo "$name did not come up; see $work/$name.log" >&2
    exit 1
}

# RSS in MiB of a server: its process and all its children (NSD forks its workers).
rss_of() {
    local pid=$1 total=0 kb
    for p in $pid $(pgrep -P "$pid" 2>/dev/null); do
        kb=$(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + ${kb:-0}))
    done
    echo $((total / 1024))
}

# negative PORT NAME: the status and the authority SOA of a negative answer, IDs removed.
negative() {
    dig +norec @127.0.0.1 -p "$1" "$2" | awk '/status:/ {sub(/id: [0-9]+/, ""); print} /IN[ \t]+SOA/ {print}'
}

check_answers() {
    step "checking that every server gives the same answers"
    local sample name expected got
    sample=$(awk '$2 == "A" && n++ % 100 == 0 && n < 2000 {print $1}' "$queries")
    for name in $sample "$zone"; do
        expected=$(dig +short +norec @127.0.0.1 -p "${port[cnamed]}" "$name" | sort)
        for server in nsd knot; do
            got=$(dig +short +norec @127.0.0.1 -p "${port[$server]}" "$name" | sort)
            if [ "$got" != "$expected" ]; then
                echo "answer mismatch for $name: cnamed '$expected', $server '$got'" >&2
                exit 1
            fi
        done
    done
    # Negative answers too: status and SOA.
    for name in ws-1.$zone nope.$zone; do
        expected=$(negative "${port[cnamed]}" "$name")
        for server in nsd knot; do
            got=$(negative "${port[$server]}" "$name")
            if [ "$got" != "$expected" ]; then
                echo "negative answer mismatch for $name on $server:" >&2
                echo "$expected" >&2
                echo "$got" >&2
                exit 1
            fi
        done
    done
    step "answers agree ($(echo $sample | wc -w) names and the apex, plus NXDOMAIN)"
}

# field LINE KEY: the value of key=value in a cnamed-load result line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

run_rounds() {
    local mode=$1 workers=$2 pin=$3
    local load_prefix=()
    [ "$pin" = yes ] && load_prefix=(taskset -c 1)
    write_configs "$workers"
    rm -rf "$work/knot"/*
    pids=()
    for server in "${servers[@]}"; do
        start "$server" "$workers" "$pin"
    done
    for server in "${servers[@]}"; do
        wait_ready "$server"
    done
    check_answers
    local results=$work/results-$mode.txt
    : > "$results"
    for round in $(seq 1 "$rounds"); do
        for server in "${servers[@]}"; do
            line=$("${load_prefix[@]}" "$bin/cnamed-load" --server "127.0.0.1:${port[$server]}" \
                --queries "$queries" --duration "$seconds" --warmup 1 --sockets 8 --window 16)
            echo "round=$round name=$server $line" >> "$results"
            step "$mode round $round $server: $(field "$line" qps) q/s, lost $(field "$line" lost_pct)%"
        done
    done
    for server in "${servers[@]}"; do
        eval "rss_$server=\$(rss_of \$pid_$server)"
    done
    print_table "$mode" "$results"
    if command -v dnsperf >/dev/null && [ "$mode" = per-core ]; then
        echo
        echo "dnsperf (one 10 s run each, 8 clients, 128 in flight; dnsperf itself tops out near one core's worth):"
        for server in "${servers[@]}"; do
            qps=$("${load_prefix[@]}" dnsperf -s 127.0.0.1 -p "${port[$server]}" -d "$queries" -l 10 -c 8 -q 128 2>/dev/null \
                | awk '/Queries per second/ {print $4}')
            printf '  %-10s %s q/s\n' "$server" "${qps:-n/a}"
        done
    fi
    stop_servers
    pids=()
}

print_table() {
    local mode=$1 results=$2
    declare -A qps
    for server in "${servers[@]}"; do
        qps[$server]=$(grep "name=$server " "$results" | while read -r line; do field "$line" qps; done | median)
    done
    echo
    echo "## $mode: $apps apps, $rounds rounds of ${seconds}s, $(date -u +%Y-%m-%d), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo
    printf '| %-9s | %9s | %8s | %8s | %12s | %6s | %7s | %7s | %7s |\n' server "q/s (med)" "vs NSD" "vs Knot" "vs reflector" "lost %" "p50 us" "p99 us" "RSS MiB"
    printf '|%s|\n' "-----------|-----------|----------|----------|--------------|--------|---------|---------|---------"
    for server in "${servers[@]}"; do
        local lines lost p50 p99 rss
        lines=$(grep "name=$server " "$results")
        lost=$(while read -r line; do field "$line" lost_pct; done <<<"$lines" | sort -n | tail -1)
        p50=$(while read -r line; do field "$line" p50_us; done <<<"$lines" | median)
        p99=$(while read -r line; do field "$line" p99_us; done <<<"$lines" | median)
        eval "rss=\$rss_$server"
        printf '| %-9s | %9.0f | %8.2f | %8.2f | %12.2f | %6s | %7s | %7s | %7s |\n' "$server" "${qps[$server]}" \
            "$(echo "${qps[$server]} / ${qps[nsd]}" | bc -l)" "$(echo "${qps[$server]} / ${qps[knot]}" | bc -l)" \
            "$(echo "${qps[$server]} / ${qps[reflector]}" | bc -l)" "$lost" "$p50" "$p99" "$rss"
    done
    echo
    echo "Per-round ratios of cnamed (each round's runs are back to back):"
    for round in $(seq 1 "$rounds"); do
        local c n k r
        c=$(field "$(grep "round=$round name=cnamed " "$results")" qps)
        n=$(field "$(grep "round=$round name=nsd " "$results")" qps)
        k=$(field "$(grep "round=$round name=knot " "$results")" qps)
        r=$(field "$(grep "round=$round name=reflector " "$results")" qps)
        printf '  round %s: vs NSD %.2f, vs Knot %.2f, vs reflector %.2f\n' "$round" \
            "$(echo "$c / $n" | bc -l)" "$(echo "$c / $k" | bc -l)" "$(echo "$c / $r" | bc -l)"
    done
}

command -v bc >/dev/null || { apt-get install -y -qq bc >/dev/null; }
[ "$per_core" = yes ] && run_rounds per-core 1 yes
[ "$whole_box" = yes ] && run_rounds whole-box 2 no
exit 0
