#!/usr/bin/env bash
# Zone transfers out at scale (1M apps by default), three measurements in one run:
#
#   1. UDP queries per second with and without 4 AXFR clients transferring the zone over and
#      over, in alternating rounds (cnamed pinned to core 0, one worker: the transfer threads
#      share the worker's core; cnamed-load and the AXFR clients on core 1);
#   2. IXFR after 1% of the apps move, and after 1% move + 1% come + 1% go: bytes on the wire
#      beside the AXFR's;
#   3. the reload time a difference adds, and the memory of a full history (--ixfr-history 32
#      reloads, each moving 1%), from cnamed's log and metrics.
#
#   benches/xfr.sh [--apps N] [--rounds R] [--seconds S]
. "$(dirname "$0")/../tests/lib.sh"

apps=1000000
rounds=3
seconds=10
parse_flags "[--apps N] [--rounds R] [--seconds S]" apps rounds seconds -- "$@"
build cnamed cnamed-gen cnamed-load
make_work xfr
zone=apps.example.com

read -r port metrics_port <<< "$(free_ports 2)"
"$bin/cnamed-gen" dump --apps "$apps" --clusters 8 > "$work/apps.json"
"$bin/cnamed-gen" queries --apps "$apps" --count 200000 --mix mixed > "$work/queries"
taskset -c 0 "$bin/cnamed" serve --dump "$work/apps.json" --listen "127.0.0.1:$port" --threads 1 \
    --xfr-allow 127.0.0.1 --metrics "127.0.0.1:$metrics_port" 2>"$work/cnamed.log" &
track $!
cnamed_pid=$!
for _ in $(seq 1 300); do grep -q serving "$work/cnamed.log" && break; sleep 0.1; done
grep -q serving "$work/cnamed.log" || { cat "$work/cnamed.log" >&2; exit 1; }
metric() { curl -s "http://127.0.0.1:$metrics_port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$cnamed_pid/status"; }

# client MODE ARG: one transfer over TCP, read to the end; prints "seconds bytes". MODE axfr,
# or ixfr with the client's serial; loop: AXFRs back to back until the file ARG exists,
# prints the count.
client() {
    python3 - "$port" "$@" <<'PY'
import os, socket, struct, sys, time
port, mode, arg = int(sys.argv[1]), sys.argv[2], sys.argv[3]
name = b"".join(bytes([len(l)]) + l for l in b"apps.example.com".split(b".")) + b"\0"
def query(qtype, serial=None):
    counts = (1, 0, 1 if serial is not None else 0, 0)
    q = struct.pack(">HHHHHH", 0x1234, 0, *counts) + name + struct.pack(">HH", qtype, 1)
    if serial is not None:
        rdata = b"\0\0" + struct.pack(">IIIII", serial, 0, 0, 0, 0)
        q += b"\xc0\x0c" + struct.pack(">HHIH", 6, 1, 0, len(rdata)) + rdata
    return struct.pack(">H", len(q)) + q
def transfer(q):
    s = socket.create_connection(("127.0.0.1", port))
    start = time.perf_counter()
    s.sendall(q)
    buf, total = bytearray(1 << 20), 0
    while True:
        n = s.recv_into(buf)
        if n == 0:
            break
        total += n
    s.close()
    return time.perf_counter() - start, total
if mode == "axfr":
    print("%.3f %d" % transfer(query(252)))
elif mode == "ixfr":
    print("%.3f %d" % transfer(query(251, int(arg))))
else:
    count = 0
    while not os.path.exists(arg):
        transfer(query(252))
        count += 1
    print(count)
PY
}

load() {
    taskset -c 1 "$bin/cnamed-load" --server "127.0.0.1:$port" --queries "$work/queries" \
        --duration "$seconds" --warmup 1 --sockets 8 --window 16
}
field() { tr ' ' '\n' <<< "$1" | sed -n "s/^$2=//p"; }

step "1. UDP q/s, quiet and with 4 AXFR clients looping ($rounds rounds of $seconds s)"
ratios=()
for round in $(seq 1 "$rounds"); do
    quiet=$(load)
    rm -f "$work/stop"
    for i in 1 2 3 4; do taskset -c 1 bash -c "$(declare -f client); port=$port client loop $work/stop" > "$work/loop-$i" & done
    sleep 1
    busy=$(load)
    touch "$work/stop"
    wait $(jobs -p | grep -v -x -e "$cnamed_pid") 2>/dev/null || true
    axfrs=$(cat "$work"/loop-* | paste -sd+ | bc)
    q=$(field "$quiet" qps); b=$(field "$busy" qps)
    ratio=$(echo "scale=3; $b / $q" | bc)
    ratios+=("$ratio")
    step "round $round: quiet $q q/s, during $axfrs AXFRs $b q/s (lost $(field "$busy" lost_pct)%): ${ratio}x"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p")
echo "UDP q/s during 4 looping AXFRs / quiet: median ${median}x of ${ratios[*]}"

step "2. IXFR after a 1% change"
serial=$("$bin/cnamed" check --dump "$work/apps.json" | sed -n 's/.*serial \([0-9]*\)$/\1/p')
read -r axfr_seconds axfr_bytes <<< "$(client axfr -)"
# change N_MOVE N_ADD N_REMOVE (per 10,000 of the apps): writes the next serial's dump.
change() {
    local next=$((serial + 1))
    "$bin/cnamed-gen" change --dump "$work/apps.json" --move "$((apps * $1 / 10000))" \
        --add "$((apps * $2 / 10000))" --remove "$((apps * $3 / 10000))" --prefix "new$next-"
}
reload() {
    local before
    before=$(grep -c reloaded "$work/cnamed.log" || true)
    kill -HUP "$cnamed_pid"
    for _ in $(seq 1 600); do
        [ "$(grep -c reloaded "$work/cnamed.log" || true)" -gt "$before" ] && break
        sleep 0.05
    done
    grep reloaded "$work/cnamed.log" | tail -1
}
change 100 0 0
line=$(reload)
step "$line"
read -r ixfr_seconds ixfr_bytes <<< "$(client ixfr "$serial")"
echo "1% moved: IXFR $ixfr_bytes bytes in $ixfr_seconds s, AXFR $axfr_bytes bytes in $axfr_seconds s: $(echo "scale=2; 100 * $ixfr_bytes / $axfr_bytes" | bc)% of the AXFR"
serial=$((serial + 1))
change 100 100 100
line=$(reload)
step "$line"
read -r ixfr_seconds ixfr_bytes <<< "$(client ixfr "$serial")"
echo "1% moved, 1% added, 1% removed: IXFR $ixfr_bytes bytes in $ixfr_seconds s: $(echo "scale=2; 100 * $ixfr_bytes / $axfr_bytes" | bc)% of the AXFR"

step "3. reload time and a full history: 32 reloads moving 1% each"
rss_before=$(rss)
extra=()
for _ in $(seq 1 32); do
    change 100 0 0
    line=$(reload)
    extra+=("$(sed -n 's/.*, \([0-9.]*\) ms (+\([0-9.]*\) ms for IXFR).*/\1 \2/p' <<< "$line")")
done
printf '%s\n' "${extra[@]}" | awk '{load += $1; diff += $2} END {printf "reload (mean of 32): %.1f ms loading, %.1f ms (%.1f%%) recording the difference\n", load / NR, diff / NR, 100 * diff / load}'
echo "history: $(metric cnamed_ixfr_history_deltas) deltas, $(metric cnamed_ixfr_history_bytes) bytes; RSS $rss_before -> $(rss) bytes"
