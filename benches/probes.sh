#!/usr/bin/env bash
# Health and readiness probes under full query load and while reloads run: /ready and /health
# are fetched with curl every 50 ms while cnamed-load saturates one cnamed worker and a 1M-app
# dump is reloaded (with a new serial) every second. Reports each probe's status codes and
# latency (p50, p99, max). One cnamed worker pinned to core 0, cnamed-load on core 1; the
# metrics thread and the reloads share the cores with them. Loopback only.
#
#   benches/probes.sh [--seconds S]
. "$(dirname "$0")/../tests/lib.sh"

seconds=15
parse_flags "[--seconds S]" seconds -- "$@"

# Kept between runs: generated data is reused.
work=$root/target/load
mkdir -p "$work"
build
port=5312
metrics=127.0.0.1:9312

[ -s "$work/apps-1000000.json" ] || "$bin/cnamed-gen" dump --apps 1000000 --clusters 8 > "$work/apps-1000000.json"
[ -s "$work/queries-1000000.txt" ] || "$bin/cnamed-gen" queries --apps 1000000 --count 1000000 --mix mixed > "$work/queries-1000000.txt"
dump=$work/probes-apps.json
cp "$work/apps-1000000.json" "$dump"

: > "$work/probes.log"
taskset -c 0 "$bin/cnamed" --dump "$dump" --listen "127.0.0.1:$port" --threads 1 \
    --metrics "$metrics" 2>>"$work/probes.log" &
pid=$!
track "$pid"
for _ in $(seq 1 100); do grep -q serving "$work/probes.log" && break; sleep 0.1; done

probe() {
    local path=$1 out=$2
    : > "$out"
    local end=$((SECONDS + seconds))
    while [ $SECONDS -lt $end ]; do
        curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}\n' "http://$metrics/$path" >> "$out" || echo "000 5" >> "$out"
        sleep 0.05
    done
}
reload() {
    local serial
    serial=$(sed -n '1s/.*"serial": \([0-9]*\).*/\1/p' "$dump")
    local end=$((SECONDS + seconds))
    while [ $SECONDS -lt $end ]; do
        sleep 1
        serial=$((serial + 1))
        sed "1s/\"serial\": [0-9]*/\"serial\": $serial/" "$dump" > "$dump.tmp"
        mv "$dump.tmp" "$dump"
        kill -HUP "$pid"
    done
}

probe ready "$work/probe-ready.txt" &
ready=$!
probe health "$work/probe-health.txt" &
health=$!
reload &
reloader=$!
line=$(taskset -c 1 "$bin/cnamed-load" --server "127.0.0.1:$port" --queries "$work/queries-1000000.txt" \
    --duration "$seconds" --warmup 0)
wait "$ready" "$health" "$reloader"
sleep 2

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
echo "## Probes under load ($(date -u +%Y-%m-%d), $(nproc) CPUs, ${seconds} s)"
echo
echo "load: $(field "$line" qps) q/s, lost $(field "$line" lost); reloads: $(grep -c 'reloaded' "$work/probes.log")"
echo
printf '| probe | fetched | 200 | other | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n'
for path in ready health; do
    file=$work/probe-$path.txt
    sort -k2 -n "$file" | awk -v path="/$path" '
        { t[NR] = $2 * 1000; if ($1 == 200) ok++; else other++ }
        END { p99 = int(NR * 0.99) + 1; if (p99 > NR) p99 = NR
              printf "| %s | %d | %d | %d | %.1f | %.1f | %.1f |\n", path, NR, ok, other,
              t[int(NR * 0.5) + 1], t[p99], t[NR] }'
done
