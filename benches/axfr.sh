#!/usr/bin/env bash
# AXFR of a big zone to a raw TCP client on loopback: cnamed (streaming from its snapshot)
# beside Knot serving the same zone (cnamed's `zonefile` export) in the same run.
#
#   benches/axfr.sh [--apps N]      (default 1M apps: 3M CNAMEs)
#
# The client (python, the same for both) sends one AXFR and reads messages, summing ANCOUNT,
# until every record has arrived; three alternating runs each, medians reported.
. "$(dirname "$0")/../tests/lib.sh"

apps=1000000
parse_flags "[--apps N]" apps -- "$@"
build cnamed cnamed-gen
command -v knotd >/dev/null || { echo "needs knotd (apt-get install knot)" >&2; exit 1; }
make_work axfr
zone=apps.example.com
records=$((apps * 3 + 3))

"$bin/cnamed-gen" dump --apps "$apps" --clusters 8 > "$work/apps.json"
"$bin/cnamed" zonefile --dump "$work/apps.json" > "$work/$zone.zone"
"$bin/cnamed" serve --dump "$work/apps.json" --listen 127.0.0.1:0 --threads 1 \
    --xfr-allow 127.0.0.1 2>"$work/cnamed.log" &
track $!
for _ in $(seq 1 200); do grep -q serving "$work/cnamed.log" && break; sleep 0.1; done
cnamed_port=$(sed -n 's/.* on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/cnamed.log" | head -1)

knot_port=$(free_ports 1)
cat > "$work/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$knot_port
    rundir: $work
database:
    storage: $work
acl:
  - id: local
    address: 127.0.0.1
    action: transfer
zone:
  - domain: $zone
    storage: $work
    file: $work/$zone.zone
    acl: local
    journal-content: none
    zonefile-sync: -1
CONF
knotd -c "$work/knot.conf" 2>"$work/knot.log" &
track $!
for _ in $(seq 1 600); do
    [ -n "$(dig @127.0.0.1 -p "$knot_port" +short +time=1 +tries=1 $zone SOA 2>/dev/null)" ] && break
    sleep 0.2
done

transfer() {
    python3 - "$1" "$records" <<'PY'
import socket, struct, sys, time
port, want = int(sys.argv[1]), int(sys.argv[2])
name = b"".join(bytes([len(l)]) + l for l in b"apps.example.com".split(b".")) + b"\0"
query = struct.pack(">HHHHHH", 0x1234, 0, 1, 0, 0, 0) + name + struct.pack(">HH", 252, 1)
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
start = time.perf_counter()
s.sendall(struct.pack(">H", len(query)) + query)
f = s.makefile("rb", buffering=1 << 20)
got = messages = size = 0
while got < want:
    length = struct.unpack(">H", f.read(2))[0]
    message = f.read(length)
    got += struct.unpack(">H", message[6:8])[0]
    messages += 1
    size += 2 + length
elapsed = time.perf_counter() - start
print(f"{elapsed:.3f} {got} {messages} {size}")
PY
}
declare -A runs
for _ in 1 2 3; do
    for server in cnamed knot; do
        port_var=${server}_port
        runs[$server]+="$(transfer "${!port_var}")"$'\n'
    done
done
echo "## AXFR of $apps apps ($records records), $(date -u +%Y-%m-%d), $(nproc) CPUs"
echo
printf '| server | seconds (median of 3) | records/s | messages | MB |\n|---|---|---|---|---|\n'
declare -A median
for server in cnamed knot; do
    line=$(printf '%s' "${runs[$server]}" | sort -n | sed -n 2p)
    read -r seconds got messages size <<<"$line"
    [ "$got" -eq "$records" ] || { echo "$server sent $got records" >&2; exit 1; }
    median[$server]=$seconds
    printf '| %s | %.2f | %.0f | %s | %.1f |\n' "$server" "$seconds" "$(echo "$got / $seconds" | bc -l)" \
        "$messages" "$(echo "$size / 1000000" | bc -l)"
done
echo
printf 'cnamed rate / Knot rate: %.2f\n' "$(echo "${median[knot]} / ${median[cnamed]}" | bc -l)"
