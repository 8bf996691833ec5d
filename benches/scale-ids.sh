#!/usr/bin/env bash
# Scale by ID kind (issue 14): 100k numeric apps (the baseline), 10M string apps (8-30 bytes,
# about 17 on average: words, hyphens, digits, a tenth numeric-looking with leading zeros) and
# 100M numeric apps. For each: load time, steady RSS per app (over an empty dump's), queries
# per second against the 100k baseline in the same run, and a reload to a second dump of the
# same size under query load: its time and the peak RSS while it ran (VmRSS sampled every
# 10 ms) against the steady RSS; how much of the RSS is transparent huge pages; then random
# lookups at 100k, 1M and 10M apps (`cargo bench --bench snapshot -- lookup`, criterion).
#
#   benches/scale-ids.sh [--strings N] [--numbers N] [--seconds S] [--no-lookups]
#
# Dumps are generated once into target/load (not timed; the 100M one is 1.9 GB). cnamed loads
# with both cores, then its threads are pinned to core 0 (one worker), cnamed-load on core 1,
# loopback only.
. "$(dirname "$0")/../tests/lib.sh"

strings=10000000
numbers=100000000
seconds=10
no_lookups=no
parse_flags "[--strings N] [--numbers N] [--seconds S] [--no-lookups]" \
    strings numbers seconds no-lookups? -- "$@"
lookups=1
[ "$no_lookups" = no ] || lookups=

# Kept between runs: generated data is reused.
work=$root/target/load
mkdir -p "$work"
build cnamed cnamed-gen cnamed-load
port=5311
pid=
sampler=

# data KIND N: dumps (seeds 1 and 2) and a query file, made once.
data() {
    local name=$1-$2
    for seed in 1 2; do
        [ -s "$work/$name-$seed.json" ] \
            || "$bin/cnamed-gen" dump --apps "$2" --clusters 8 --ids "$1" --seed "$seed" > "$work/$name-$seed.json"
    done
    [ -s "$work/$name.queries" ] \
        || "$bin/cnamed-gen" queries --apps "$2" --count 1000000 --mix mixed --ids "$1" > "$work/$name.queries"
}

# serve DUMP: one pinned worker; waits until it serves; sets pid and load_ms.
serve() {
    ln -f "$1" "$work/serving.json"
    : > "$work/scale-ids.log"
    "$bin/cnamed" --dump "$work/serving.json" --listen "127.0.0.1:$port" --threads 1 \
        --max-dump-size 100000000000 --max-shrink 100 2>>"$work/scale-ids.log" &
    pid=$!
    track "$pid"
    for _ in $(seq 1 3000); do
        grep -q serving "$work/scale-ids.log" && break
        sleep 0.1
    done
    # Loaded with both cores (as at a box's start); served from core 0, threads to come too.
    taskset -a -p -c 0 "$pid" >/dev/null
    load_ms=$(sed -n 's/.*loaded.* in \([0-9.]*\) ms$/\1/p' "$work/scale-ids.log" | head -1)
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
huge_kib() { awk '/AnonHugePages/ {print $2}' "/proc/$pid/smaps_rollup"; }
load() {
    taskset -c 1 "$bin/cnamed-load" --server "127.0.0.1:$port" --queries "$1" --duration "$2" --warmup 1
}
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

echo '{"serial": 1, "apps": {}}' > "$work/empty.json"
serve "$work/empty.json"; empty_rss=$(rss_kib); kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

data numbers 100000
data strings "$strings"
data numbers "$numbers"

echo "## Scale by ID kind ($(date -u +%Y-%m-%d), $(nproc) CPUs, cnamed $(git rev-parse --short HEAD))"
echo
printf '| apps | dump MiB | load s | RSS MiB | of which huge pages | bytes/app | q/s | q/s vs 100k | reload s | peak RSS MiB during reload | peak / steady |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
baseline=
for case in "numbers 100000" "strings $strings" "numbers $numbers"; do
    read -r kind apps <<< "$case"
    name=$kind-$apps
    serve "$work/$name-1.json"
    rss=$(rss_kib)
    huge=$(huge_kib)
    line=$(load "$work/$name.queries" "$seconds")
    qps=$(field "$line" qps)
    [ -n "$baseline" ] || baseline=$qps
    # A reload to the other dump under load, its peak RSS sampled meanwhile.
    load "$work/$name.queries" $((seconds + 20)) > "$work/reload-load.out" &
    loader=$!
    sleep 2
    : > "$work/rss-samples"
    ( while kill -0 "$pid" 2>/dev/null; do rss_kib >> "$work/rss-samples"; sleep 0.01; done ) &
    sampler=$!
    track "$sampler"
    ln -f "$work/$name-2.json" "$work/serving.json.tmp"
    mv "$work/serving.json.tmp" "$work/serving.json"
    started=$(date +%s%3N)
    kill -HUP "$pid"
    for _ in $(seq 1 6000); do grep -q "reloaded\|reload failed" "$work/scale-ids.log" && break; sleep 0.01; done
    reload_ms=$(($(date +%s%3N) - started))
    sleep 0.5
    kill "$sampler"; wait "$sampler" 2>/dev/null || true; sampler=
    grep -q "reloaded" "$work/scale-ids.log" || { grep "reload" "$work/scale-ids.log" >&2; exit 1; }
    wait "$loader" || true
    peak=$(sort -n "$work/rss-samples" | tail -1)
    printf '| %s %s | %d | %.2f | %d | %d | %.1f | %s | %.3f | %.2f | %d | %.2f |\n' "$apps" "$kind" \
        $(( $(stat -c %s "$work/$name-1.json") / 1048576 )) "$(echo "$load_ms / 1000" | bc -l)" \
        $((rss / 1024)) $((huge / 1024)) "$(echo "($rss - $empty_rss) * 1024 / $apps" | bc -l)" "$qps" \
        "$(echo "$qps / $baseline" | bc -l)" "$(echo "$reload_ms / 1000" | bc -l)" $((peak / 1024)) \
        "$(echo "$peak / $rss" | bc -l)"
    grep "reloaded" "$work/scale-ids.log" | sed 's/^/    /' >&2
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done

# Random lookups, criterion's medians (the bench builds its own snapshots in memory).
if [ -n "$lookups" ]; then
    echo
    echo "| lookup (criterion) | ns |"
    echo "|---|---|"
    cargo bench --locked --bench snapshot -- '^lookup' 2>/dev/null \
        | sed -n 's/^\(lookup[a-z_]*\/[0-9]*\) *time: *\[[^ ]* [^ ]* \([^ ]*\) ns.*/| \1 | \2 |/p'
fi
