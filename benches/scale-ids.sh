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
#                        [--vs REV] [--rounds N] [--loads-only]
#
# First, the load against the previous loader (issue 25): cnamed built at REV (default
# fdc957e, the last commit before the fast reader) and this tree load the 10M string-ID and
# the 100M numeric dumps in turn, ROUNDS times (default 5): the time to serving from the log
# ("loaded ... in N ms"), medians and the spread of the per-round ratio; this tree also on one
# core (taskset) for the scaling; the peak RSS (VmHWM: all of it anonymous but the binary's
# text, the dump being read, not mapped); and `wc -l` on the same file (page cache) for the
# floor. --loads-only stops after it.
#
# Dumps are generated once into target/load (not timed; the 100M one is 1.9 GB). cnamed loads
# with both cores, then its threads are pinned to core 0 (one worker), cnamed-load on core 1,
# loopback only.
. "$(dirname "$0")/../tests/lib.sh"

strings=10000000
numbers=100000000
seconds=10
no_lookups=no
vs=fdc957e
rounds=5
loads_only=no
parse_flags "[--strings N] [--numbers N] [--seconds S] [--no-lookups] [--vs REV] [--rounds N] [--loads-only]" \
    strings numbers seconds no-lookups? vs rounds loads-only? -- "$@"
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

# load_once BIN DUMP CPUS: BIN serves DUMP with its threads on CPUS; once it serves, prints
# "load_ms peak_kib" (the load's time from its log; VmHWM) and stops it.
load_once() {
    : > "$work/load-vs.log"
    taskset -c "$3" "$1" --dump "$2" --listen "127.0.0.1:$port" --threads 1 \
        --max-dump-size 100000000000 --max-shrink 100 2>>"$work/load-vs.log" &
    pid=$!
    track "$pid"
    for _ in $(seq 1 12000); do
        grep -q serving "$work/load-vs.log" && break
        sleep 0.05
    done
    grep -q serving "$work/load-vs.log" || { cat "$work/load-vs.log" >&2; exit 1; }
    local ms hwm
    ms=$(sed -n 's/.*loaded.* in \([0-9.]*\) ms$/\1/p' "$work/load-vs.log" | head -1)
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
    echo "$ms $hwm"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f-%.2f", lo, hi}'; }

previous=$root/target/previous-loader
build_at "$vs" "$previous" cnamed
all_cpus=0-$(($(nproc) - 1))
echo "## Load against the previous loader ($(date -u +%Y-%m-%d), $(nproc) CPUs, cnamed $(git rev-parse --short HEAD) vs $vs, $rounds rounds)"
echo
printf '| dump | MiB | previous s | now s | now / previous (rounds) | now on 1 core s | 1 core / all | peak RSS MiB previous / now | wc -l s | now on 1 core / wc -l |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for case in "strings $strings" "numbers $numbers"; do
    read -r kind apps <<< "$case"
    dump=$work/$kind-$apps-1.json
    before=() now=() one=() ratios=() one_ratios=() hwm_before=() hwm_now=() wc_s=()
    for _ in $(seq 1 "$rounds"); do
        read -r ms hwm < <(load_once "$previous/release/cnamed" "$dump" "$all_cpus")
        before+=("$ms") hwm_before+=("$hwm")
        read -r ms hwm < <(load_once "$bin/cnamed" "$dump" "$all_cpus")
        now+=("$ms") hwm_now+=("$hwm")
        ratios+=("$(echo "$ms / ${before[-1]}" | bc -l)")
        read -r ms _ < <(load_once "$bin/cnamed" "$dump" 0)
        one+=("$ms")
        one_ratios+=("$(echo "$ms / ${now[-1]}" | bc -l)")
        started=$(date +%s%N)
        wc -l "$dump" >/dev/null
        wc_s+=("$(echo "($(date +%s%N) - $started) / 1000000000" | bc -l)")
    done
    printf '| %s %s | %d | %.2f | %.2f | %.3f (%s) | %.2f | %.2f | %d / %d | %.3f | %.0f |\n' "$apps" "$kind" \
        $(( $(stat -c %s "$dump") / 1048576 )) "$(echo "$(median "${before[@]}") / 1000" | bc -l)" \
        "$(echo "$(median "${now[@]}") / 1000" | bc -l)" "$(median "${ratios[@]}")" "$(spread "${ratios[@]}")" \
        "$(echo "$(median "${one[@]}") / 1000" | bc -l)" "$(median "${one_ratios[@]}")" \
        $(( $(median "${hwm_before[@]}") / 1024 )) $(( $(median "${hwm_now[@]}") / 1024 )) \
        "$(median "${wc_s[@]}")" "$(echo "$(median "${one[@]}") / 1000 / $(median "${wc_s[@]}")" | bc -l)"
done
echo
[ "$loads_only" = no ] || exit 0

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
