#!/usr/bin/env bash
# The edge features under load, per core (one cnamed worker pinned to core 0, the load and
# any attacker on core 1, loopback only):
#
# 1. Regression: UDP queries per second of a baseline commit (before counters, cookies and
#    RRL), of this tree, of this tree with --metrics scraped every second, with RRL on at a
#    rate the load never reaches (the cost of the check), and with dnstap: every query and
#    response logged to fstrm_capture (on core 1, writing to /dev/null), one query in 100,
#    and every query to a collector that stopped reading (SIGSTOP after the handshake), in
#    interleaved rounds. The ratios are to the baseline, or to the first variant without it.
# 2. Attacks: UDP queries per second while hostile TCP clients run (cnamed-attack): a
#    connection flood, half length prefixes, Slowloris, and clients that never read.
#
#   benches/edge.sh [--baseline REF] [--rounds R] [--seconds S] [--variants "V..."]
#                   [--no-regression] [--no-attacks]
#
# Variants: baseline current metrics rrl (the default) and dnstap dnstap100 dnstap-stalled,
# e.g. --variants "current dnstap dnstap100 dnstap-stalled".
. "$(dirname "$0")/../tests/lib.sh"

baseline=5e1b9b4
rounds=3
seconds=10
variants="baseline current metrics rrl"
no_regression=no
no_attacks=no
parse_flags "[--baseline REF] [--rounds R] [--seconds S] [--variants \"V...\"] [--no-regression] [--no-attacks]" \
    baseline rounds seconds variants no-regression? no-attacks? -- "$@"
read -ra variants <<< "$variants"
regression=yes
attacks=yes
[ "$no_regression" = no ] || regression=no
[ "$no_attacks" = no ] || attacks=no

# Kept between runs (the baseline's build above all).
work=$root/target/edge
mkdir -p "$work"
port=5320
metrics_port=9320
apps=100000
need dig:bind9-dnsutils curl:curl bc:bc fstrm_capture:fstrm-bin
step "building"
build
dump=$work/apps-$apps.json
queries=$work/queries-$apps.txt
cached_dump "$apps" "$dump"
[ -s "$queries" ] || "$bin/cnamed-gen" queries --apps "$apps" --count 1000000 --mix mixed > "$queries"

baseline_bin=$work/baseline-target/release/cnamed
case " ${variants[*]} " in
    *" baseline "*) [ "$regression" = no ] || build_at "$baseline" "$work/baseline-target" cnamed ;;
esac
dnstap_socket=$work/dnstap.sock

# collect [stalled]: fstrm_capture on core 1, discarding what it reads; "stalled": it stops
# reading once cnamed has connected (called after serve).
collector=
collect() {
    rm -f "$dnstap_socket"
    taskset -c 1 fstrm_capture -t protobuf:dnstap.Dnstap -u "$dnstap_socket" -w /dev/null \
        2>>"$work/fstrm.log" &
    collector=$!
    track "$collector"
    for _ in $(seq 1 100); do [ -S "$dnstap_socket" ] && return; sleep 0.05; done
    echo "fstrm_capture did not come up; see $work/fstrm.log" >&2
    exit 1
}
stop_collector() {
    [ -n "$collector" ] || return 0
    kill -CONT "$collector" 2>/dev/null || true
    kill "$collector" 2>/dev/null || true
    wait "$collector" 2>/dev/null || true
    collector=
}
# dnstap_counts: frames written and dropped, from the metrics.
dnstap_counts() {
    curl -s "http://127.0.0.1:$metrics_port/metrics" | awk '
        /^cnamed_dnstap_frames_total/ {sent=$2}
        /^cnamed_dnstap_dropped_frames_total/ {dropped+=$2}
        END {printf "dnstap frames written %d, dropped %d", sent, dropped}'
}

# serve BINARY FLAGS...: one pinned worker; waits until it answers.
serve() {
    local binary=$1
    shift
    taskset -c 0 "$binary" --dump "$dump" --listen "127.0.0.1:$port" --threads 1 \
        --identity bench "$@" 2>>"$work/cnamed.log" &
    server=$!
    track "$server"
    for _ in $(seq 1 300); do
        dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" apps.example.com SOA 2>/dev/null | grep -q hostmaster && return
        sleep 0.2
    done
    echo "cnamed did not come up; see $work/cnamed.log" >&2
    exit 1
}

stop() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }

# load: prints the answered queries per second of one run.
load() {
    taskset -c 1 "$bin/cnamed-load" --server "127.0.0.1:$port" --queries "$queries" \
        --duration "$seconds" --warmup 1 | tee -a "$work/load.log" | sed -n 's/.*qps=\([0-9]*\).*/\1/p'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

if [ "$regression" = yes ]; then
    declare -A results
    for round in $(seq 1 "$rounds"); do
        for variant in "${variants[@]}"; do
            case "$variant" in
                baseline) serve "$baseline_bin" ;;
                current) serve "$bin/cnamed" ;;
                metrics) serve "$bin/cnamed" --metrics "127.0.0.1:$metrics_port" ;;
                rrl) serve "$bin/cnamed" --rrl-rate 4000000000 ;;
                dnstap | dnstap-stalled)
                    collect
                    serve "$bin/cnamed" --metrics "127.0.0.1:$metrics_port" --dnstap "$dnstap_socket"
                    ;;
                dnstap100)
                    collect
                    serve "$bin/cnamed" --metrics "127.0.0.1:$metrics_port" --dnstap "$dnstap_socket" \
                        --dnstap-sample 100
                    ;;
            esac
            if [ "$variant" = dnstap-stalled ]; then
                for _ in $(seq 1 100); do
                    curl -s "http://127.0.0.1:$metrics_port/metrics" | grep -q '^cnamed_dnstap_connected 1' && break
                    sleep 0.05
                done
                kill -STOP "$collector"
            fi
            scraper=
            if [ "$variant" = metrics ]; then
                (while :; do curl -s "http://127.0.0.1:$metrics_port/metrics" >/dev/null; sleep 1; done) &
                scraper=$!
            fi
            qps=$(load)
            [ -n "$scraper" ] && { kill "$scraper"; wait "$scraper" 2>/dev/null || true; }
            counts=
            case "$variant" in dnstap*) counts=" ($(dnstap_counts))" ;; esac
            stop
            stop_collector
            results[$variant]="${results[$variant]:-} $qps"
            step "round $round $variant: $qps q/s$counts"
        done
    done
    echo "## UDP queries per second, one worker, $rounds rounds of ${seconds}s (median; each round)"
    reference=${variants[0]}
    [ -z "${results[baseline]:-}" ] || reference=baseline
    base=$(echo "${results[$reference]}" | tr ' ' '\n' | grep . | median)
    for variant in "${variants[@]}"; do
        m=$(echo "${results[$variant]}" | tr ' ' '\n' | grep . | median)
        printf '%-14s %8s q/s  %.3fx %s  (%s )\n' "$variant" "$m" "$(echo "$m / $base" | bc -l)" "$reference" "${results[$variant]}"
    done
fi

if [ "$attacks" = yes ]; then
    echo "## UDP queries per second while TCP attacks run, one worker (default TCP limits)"
    # name:mode:connections. The cap is 1024 connections per worker: 1000 fit, 3000 make the
    # server close the least recently active one at every accept (and the attacker reconnect).
    declare -A under
    attacks_list=(none::0 flood-1000:flood:1000 flood-3000:flood:3000 half-3000:half:3000
        slowloris-3000:slowloris:3000 noread-300:noread:300)
    for round in $(seq 1 "$rounds"); do
        for attack in "${attacks_list[@]}"; do
            IFS=: read -r name mode count <<< "$attack"
            serve "$bin/cnamed" --metrics "127.0.0.1:$metrics_port"
            attacker=
            if [ "$name" != none ]; then
                taskset -c 1 "$bin/cnamed-attack" --server "127.0.0.1:$port" --mode "$mode" \
                    --connections "$count" --duration $((seconds + 4)) \
                    > "$work/attack.txt" &
                attacker=$!
                track "$attacker"
                sleep 2
            fi
            qps=$(load)
            closed=$(curl -s "http://127.0.0.1:$metrics_port/metrics" |
                awk '/^cnamed_tcp_connections_closed_total/ && $2 > 0 {sub(/.*reason="/, ""); sub(/"}/, ""); printf "%s=%s ", $1, $2}')
            [ -n "$attacker" ] && wait "$attacker"
            stop
            printf 'round %s %-15s %8s q/s  %s %s\n' "$round" "$name" "$qps" \
                "$(cat "$work/attack.txt" 2>/dev/null || true)" "closed: ${closed:-none}"
            rm -f "$work/attack.txt"
            under[$name]="${under[$name]:-} $qps"
        done
    done
    echo "## medians"
    quiet=$(echo "${under[none]}" | tr ' ' '\n' | grep . | median)
    for attack in "${attacks_list[@]}"; do
        name=${attack%%:*}
        m=$(echo "${under[$name]}" | tr ' ' '\n' | grep . | median)
        printf '%-15s %8s q/s  %.2fx no attack\n' "$name" "$m" "$(echo "$m / $quiet" | bc -l)"
    done
fi
