#!/usr/bin/env bash
# Scale and reload: load time and memory of a big dump, QPS at 10M apps against 100k apps, and
# queries lost and p99 latency while SIGHUP reloads a 1M-app dump every second.
#
#   benches/scale.sh [--big N] [--seconds S] [--reload-only] [--user NAME]
#
# --user runs cnamed as that user (from root, with setpriv), without CAP_SYS_NICE as the
# shipped unit runs it: reloads cannot leave SCHED_IDLE and fall back to a second loader.
# One cnamed worker pinned to core 0, cnamed-load on core 1, loopback only.
. "$(dirname "$0")/../tests/lib.sh"

big=10000000
seconds=15
reload_only=no
user=
parse_flags "[--big N] [--seconds S] [--reload-only] [--user NAME]" \
    big seconds reload-only? user -- "$@"
scale=yes
[ "$reload_only" = no ] || scale=no
as_user=()
[ -z "$user" ] || as_user=(setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --clear-groups --)

# Kept between runs: generated data is reused.
work=$root/target/load
mkdir -p "$work"
build
port=5310
pid=

data() {
    local apps=$1
    cached_dump "$apps" "$work/apps-$apps.json"
    [ -s "$work/queries-$apps.txt" ] || "$bin/cnamed-gen" queries --apps "$apps" --count 1000000 --mix mixed > "$work/queries-$apps.txt"
}

# serve DUMP: starts one pinned worker and waits until it serves; sets pid and load_ms.
serve() {
    : > "$work/scale.log"
    "${as_user[@]}" taskset -c 0 "$bin/cnamed" --dump "$1" --listen "127.0.0.1:$port" --threads 1 2>>"$work/scale.log" &
    pid=$!
    track "$pid"
    for _ in $(seq 1 600); do
        grep -q serving "$work/scale.log" && break
        sleep 0.1
    done
    load_ms=$(sed -n 's/.* in \([0-9.]*\) ms$/\1/p' "$work/scale.log" | head -1)
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

load() {
    taskset -c 1 "$bin/cnamed-load" --server "127.0.0.1:$port" --queries "$1" --duration "$2" --warmup 1
}
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

if [ "$scale" = yes ]; then
echo '{"serial": 1, "apps": {}}' > "$work/apps-empty.json"
serve "$work/apps-empty.json"; empty_rss=$(rss_kib); kill "$pid"; wait "$pid" 2>/dev/null || true

for apps in 100000 "$big"; do
    data "$apps"
done

echo "## Scale ($(date -u +%Y-%m-%d), $(nproc) CPUs)"
echo
printf '| apps | dump MiB | load s | RSS MiB | bytes/app over empty | q/s (med of 3) |\n|---|---|---|---|---|---|\n'
declare -A qps
for apps in 100000 "$big"; do
    serve "$work/apps-$apps.json"
    rss=$(rss_kib)
    runs=()
    for _ in 1 2 3; do
        line=$(load "$work/queries-$apps.txt" "$seconds")
        runs+=("$(field "$line" qps)")
    done
    qps[$apps]=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p)
    printf '| %s | %d | %.2f | %d | %.1f | %s |\n' "$apps" $(( $(stat -c %s "$work/apps-$apps.json") / 1048576 )) \
        "$(echo "$load_ms / 1000" | bc -l)" $((rss / 1024)) "$(echo "($rss - $empty_rss) * 1024 / $apps" | bc -l)" "${qps[$apps]}"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
echo
printf 'QPS at %s apps / QPS at 100000 apps: %.3f\n' "$big" "$(echo "${qps[$big]} / ${qps[100000]}" | bc -l)"
fi

echo
echo "## Reload under load: 1000000 apps, SIGHUP every second for 30 s"
data 1000000
# Each reload gets a new serial (the same serial and content would be an unchanged reload,
# with nothing to swap).
reload_dump=$work/apps-1000000-reload.json
cp "$work/apps-1000000.json" "$reload_dump"
serve "$reload_dump"
quiet=$(load "$work/queries-1000000.txt" 30)
(
    for serial in $(seq 1 30); do
        sleep 1
        sed "1s/\"serial\": [0-9]*/\"serial\": $((2026112601 + serial))/" "$reload_dump" > "$reload_dump.tmp"
        mv "$reload_dump.tmp" "$reload_dump"
        kill -HUP "$pid"
    done
) &
reloader=$!
busy=$(load "$work/queries-1000000.txt" 30)
wait "$reloader"

sleep 1
reloads=$(grep -c reloaded "$work/scale.log" || true)
reload_ms=$(sed -n 's/.*reloaded.*, \([0-9.]*\) ms$/\1/p' "$work/scale.log" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo
printf '| run | q/s | lost | p50 us | p99 us | p99.9 us |\n|---|---|---|---|---|---|\n'
for run in quiet busy; do
    line=${!run}
    printf '| %s | %s | %s | %s | %s | %s |\n' "$run" "$(field "$line" qps)" "$(field "$line" lost)" \
        "$(field "$line" p50_us)" "$(field "$line" p99_us)" "$(field "$line" p999_us)"
done
echo
echo "reloads: $reloads, median reload time ${reload_ms} ms; p99 during reloads / quiet p99: $(echo "$(field "$busy" p99_us) / $(field "$quiet" p99_us)" | bc -l | cut -c1-5)"
