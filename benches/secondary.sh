#!/usr/bin/env bash
# cnamed as a secondary at scale (1M apps by default), three measurements in one run:
#
#   1. cold start from AXFR: from launching a secondary with --primary to its "serving" line
#      (transfer, checks, build), beside Knot loading the same zone as a secondary of the same
#      primary (from launch to answering the serial), R runs each;
#   2. applying IXFRs of K changed apps (a third moved, a third added, a third removed): the
#      secondary's own log (bytes, time on the wire, time to build the changed copy), and
#      UDP query latency at the secondary (cnamed-load, closed loop) in alternating phases:
#      quiet, and with a NOTIFY each second for a new serial with K changes. The primary
#      reloads the same way in both phases (only the NOTIFY differs), so the phases differ by
#      the secondary's refreshes alone. Secondary on core 0 (1 worker: the refresh shares its
#      core), primary and load on core 1;
#   3. end to end: from SIGHUP to the primary until each of three cnamed secondaries and a
#      Knot secondary answers the new serial (polled every 2 ms over UDP), no load.
#
#   benches/secondary.sh [--apps N] [--changes K] [--runs R] [--seconds S]
. "$(dirname "$0")/../tests/lib.sh"

apps=1000000
changes=1000
runs=3
seconds=20
parse_flags "[--apps N] [--changes K] [--runs R] [--seconds S]" apps changes runs seconds -- "$@"
build cnamed cnamed-gen cnamed-load
command -v knotd >/dev/null || { echo "needs knotd (apt-get install knot)" >&2; exit 2; }
make_work secondary
declare -A pid_of
now_ms() { date +%s%3N; }
zone=apps.example.com
read -r primary s1 s2 s3 knot_port <<< "$(free_ports 5)"
serial_of() {
    dig @127.0.0.1 -p "$1" +short +time=1 +tries=1 "$zone" SOA 2>/dev/null | awk '{print $3}'
}
wait_log() {
    for _ in $(seq 1 6000); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.01; done
    echo "no '$2' in $1" >&2; tail -5 "$1" >&2; exit 1
}
# Writes the next dump for round N: K changed apps (moved, added, removed in thirds) and
# serial + 1.
next_dump() {
    # A third moved (the same first apps each round), a third removed, the rest added.
    local third=$((changes / 3))
    "$bin/cnamed-gen" change --dump "$work/apps.json" --move "$third" --remove "$third" \
        --add "$((changes - 2 * third))" --prefix "r$1-"
}

step "a cnamed primary with $apps apps (core 1)"
"$bin/cnamed-gen" dump --apps "$apps" --clusters 8 > "$work/apps.json"
taskset -c 1 "$bin/cnamed" serve --dump "$work/apps.json" --zone "$zone" --listen "127.0.0.1:$primary" \
    --threads 1 --xfr-allow 127.0.0.1 2>"$work/primary.log" &
pid_of[primary]=$!
track $!
wait_log "$work/primary.log" serving
serial=$(serial_of "$primary")

step "1. cold start from AXFR, $runs runs each (secondaries on core 0)"
knot_conf() {
    mkdir -p "$work/knot-$1"
    cat > "$work/knot-$1/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$1
    rundir: $work/knot-$1
database:
    storage: $work/knot-$1
remote:
  - id: cnamed
    address: 127.0.0.1@$primary
acl:
  - id: notify
    address: 127.0.0.1
    action: notify
zone:
  - domain: $zone
    storage: $work/knot-$1
    master: cnamed
    acl: [notify]
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
CONF
}
cold_cnamed=()
cold_knot=()
for run in $(seq 1 "$runs"); do
    echo "none" > "$work/s1.json"
    started=$(now_ms)
    taskset -c 0 "$bin/cnamed" serve --dump "$work/s1.json" --zone "$zone" --listen "127.0.0.1:$s1" \
        --threads 1 --primary "127.0.0.1:$primary" 2>"$work/s1.log" &
    pid=$!
    wait_log "$work/s1.log" serving
    cold_cnamed+=($(($(now_ms) - started)))
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$work/knot-$knot_port"; knot_conf "$knot_port"
    started=$(now_ms)
    taskset -c 0 knotd -c "$work/knot-$knot_port/knot.conf" >/dev/null 2>&1 &
    pid=$!
    until [ "$(serial_of "$knot_port")" = "$serial" ]; do sleep 0.02; done
    cold_knot+=($(($(now_ms) - started)))
    knot_rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "  run $run: cnamed ${cold_cnamed[-1]} ms (RSS $((rss / 1024)) MB), Knot ${cold_knot[-1]} ms (RSS $((knot_rss / 1024)) MB)" >&2
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
mc=$(median "${cold_cnamed[@]}"); mk=$(median "${cold_knot[@]}")
echo "cold start at $apps apps: cnamed $mc ms, Knot $mk ms (medians), Knot/cnamed $(echo "scale=1; $mk / $mc" | bc)x" >&2

step "2. IXFRs of $changes changes at $apps apps, under UDP load ($seconds s phases)"
echo "none" > "$work/s1.json"
taskset -c 0 "$bin/cnamed" serve --dump "$work/s1.json" --zone "$zone" --listen "127.0.0.1:$s1" \
    --threads 1 --primary "127.0.0.1:$primary" 2>"$work/s1.log" &
pid_of[s1]=$!
track $!
wait_log "$work/s1.log" serving
"$bin/cnamed-gen" queries --apps "$apps" --count 100000 --mix mixed > "$work/queries"
notify() {
    python3 - "$1" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
name = b"".join(bytes([len(l)]) + l for l in b"apps.example.com".split(b".")) + b"\0"
msg = struct.pack(">HHHHHH", 4242, 0x2400, 1, 0, 0, 0) + name + struct.pack(">HH", 6, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(msg, ("127.0.0.1", port)); s.recv(512)
PY
}
round=0
# One phase (not in a subshell: it counts rounds): load for $seconds s while the primary takes a new dump each second; with
# "notify", the secondary is told each time.
phase() {
    taskset -c 1 "$bin/cnamed-load" --server "127.0.0.1:$s1" --queries "$work/queries" \
        --duration "$seconds" --warmup 1 --sockets 4 --window 8 > "$work/load.out" &
    local load=$!
    sleep 1
    local end=$(($(now_ms) + seconds * 1000 - 1500))
    while [ "$(now_ms)" -lt "$end" ]; do
        round=$((round + 1))
        next_dump "$round"
        kill -HUP "${pid_of[primary]}"
        wait_log "$work/primary.log" "serial $((serial + round)) (was"
        if [ "$1" = notify ]; then notify "$s1"; fi
        sleep 0.5
    done
    wait "$load"
    if [ "$1" = notify ]; then
        # The secondary ends the phase current.
        for _ in $(seq 1 200); do [ "$(serial_of "$s1")" = "$((serial + round))" ] && break; sleep 0.05; done
    else
        notify "$s1"
        for _ in $(seq 1 200); do [ "$(serial_of "$s1")" = "$((serial + round))" ] && break; sleep 0.05; done
    fi
}
for rep in 1 2; do
    phase quiet
    quiet=$(cat "$work/load.out")
    applies_before=$(grep -c "IXFR from 127.0.0.1" "$work/s1.log" || true)
    phase notify
    busy=$(cat "$work/load.out")
    applies=$(( $(grep -c "IXFR from 127.0.0.1" "$work/s1.log" || true) - applies_before ))
    p99() { echo "$1" | tr ' ' '\n' | sed -n 's/^p99_us=//p'; }
    qps() { echo "$1" | tr ' ' '\n' | sed -n 's/^qps=//p'; }
    lost() { echo "$1" | tr ' ' '\n' | sed -n 's/^lost=//p'; }
    echo "  round $rep: quiet p99 $(p99 "$quiet") us, $(qps "$quiet") q/s, lost $(lost "$quiet"); with $applies IXFRs applied: p99 $(p99 "$busy") us, $(qps "$busy") q/s, lost $(lost "$busy"); ratio $(echo "scale=2; $(p99 "$busy") / $(p99 "$quiet")" | bc)" >&2
done
echo "  IXFR applies at the secondary (time on the wire, then the changed copy):" >&2
grep "IXFR from 127.0.0.1" "$work/s1.log" | sed 's/^cnamed: info: /    /' | tail -8 >&2
grep "IXFR from 127.0.0.1" "$work/s1.log" | sed -n 's/.*snapshot ready in \([0-9.]*\) ms.*/\1/p' \
    | sort -n | awk '{a[NR] = $1} END {printf "  snapshot ready: median %.1f ms, max %.1f ms over %d IXFRs\n", a[int((NR + 1) / 2)], a[NR], NR}' >&2
grep "reloaded" "$work/s1.log" | tail -3 | sed 's/^cnamed: info: /    /' >&2
kill "${pid_of[s1]}"; wait "${pid_of[s1]}" 2>/dev/null || true; unset 'pid_of[s1]'
kill "${pid_of[primary]}"; wait "${pid_of[primary]}" 2>/dev/null || true

step "3. end to end: three cnamed secondaries and Knot, NOTIFY then IXFR, no load"
taskset -c 1 "$bin/cnamed" serve --dump "$work/apps.json" --zone "$zone" --listen "127.0.0.1:$primary" \
    --threads 1 --xfr-allow 127.0.0.1 --notify "127.0.0.1:$s1" --notify "127.0.0.1:$s2" \
    --notify "127.0.0.1:$s3" --notify "127.0.0.1:$knot_port" 2>"$work/primary2.log" &
pid_of[primary]=$!
track $!
wait_log "$work/primary2.log" serving
serial=$(serial_of "$primary")
for s in s1 s2 s3; do
    echo "none" > "$work/$s.json"
    taskset -c 0 "$bin/cnamed" serve --dump "$work/$s.json" --zone "$zone" --listen "127.0.0.1:${!s}" \
        --threads 1 --primary "127.0.0.1:$primary" 2>"$work/$s.log" &
    pid_of[$s]=$!
    track $!
done
rm -rf "$work/knot-$knot_port"; knot_conf "$knot_port"
taskset -c 0 knotd -c "$work/knot-$knot_port/knot.conf" >/dev/null 2>&1 &
pid_of[knot]=$!
track $!
for port in "$s1" "$s2" "$s3" "$knot_port"; do
    until [ "$(serial_of "$port")" = "$serial" ]; do sleep 0.1; done
done
sleep 3
for rep in 1 2 3; do
    round=$((round + 1))
    next_dump "$round"
    serial=$((serial + 1))
    python3 - "$serial" "$s1" "$s2" "$s3" "$knot_port" "${pid_of[primary]}" <<'PY' >&2
import os, signal, socket, struct, sys, time
serial, ports, primary = int(sys.argv[1]), [int(p) for p in sys.argv[2:6]], int(sys.argv[6])
name = b"".join(bytes([len(l)]) + l for l in b"apps.example.com".split(b".")) + b"\0"
def soa_serial(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.05)
    s.sendto(struct.pack(">HHHHHH", 7, 0, 1, 0, 0, 0) + name + struct.pack(">HH", 6, 1), ("127.0.0.1", port))
    try: reply = s.recv(1500)
    except socket.timeout: return None
    finally: s.close()
    # The answer's SOA: SERIAL is 20 bytes before the end of its RDATA (no additional data).
    return struct.unpack(">I", reply[-20:-16])[0] if struct.unpack(">H", reply[6:8])[0] else None
start = time.monotonic()
os.kill(primary, signal.SIGHUP)
seen = {}
while len(seen) < len(ports) and time.monotonic() - start < 30:
    for name_, port in zip(["cnamed-1", "cnamed-2", "cnamed-3", "knot"], ports):
        if name_ not in seen and soa_serial(port) == serial:
            seen[name_] = (time.monotonic() - start) * 1e3
    time.sleep(0.002)
print("  serial %d: " % serial + ", ".join("%s %.0f ms" % kv for kv in sorted(seen.items(), key=lambda kv: kv[1]))
      + "; last edge %.0f ms after SIGHUP" % max(seen.values()))
PY
    sleep 3
done
grep "reloaded" "$work/primary2.log" | tail -1 | sed 's/^cnamed: info: /  primary: /' >&2
