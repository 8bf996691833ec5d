#!/usr/bin/env python3
"""The end-to-end driver of benches/end-to-end.sh: sends COUNT single-app UPDATEs to the
primary, one every INTERVAL ms (TSIG-signed, dnspython), and for each measures from its
NOERROR until each edge answers the new name (every edge asked over UDP every 2 ms until it
does) and until `cnamed wait --serial N` on the primary's control socket returns. Prints
p50/p99/max per edge and for wait, in milliseconds.

  end_to_end.py --primary ADDR:PORT --key-file F --control SOCK --cnamed BIN
                --edge NAME=ADDR:PORT ... [--count 100] [--interval 100]
"""
import argparse
import re
import selectors
import socket
import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update

ZONE = "apps.example.com."


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--primary", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--cnamed", required=True)
    parser.add_argument("--edge", action="append", required=True)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--interval", type=int, default=100)
    args = parser.parse_args()
    text = open(args.key_file).read()
    name, secret = re.search(r'key "([^"]+)".*secret "([^"]+)"', text, re.S).groups()
    keyring = dns.tsigkeyring.from_text({name: ("hmac-sha256", secret)})
    edges = dict((e.split("=")[0], addr(e.split("=")[1])) for e in args.edge)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    # (update index, edge) -> (NOERROR time, query id); done: edge -> [ms]
    pending = {}
    took = {edge: [] for edge in edges}
    waits = []
    waiting = []  # (index, NOERROR time, process)
    query_of = {}
    next_id = 1
    start = time.monotonic()
    sent = 0
    while sent < args.count or pending or waiting:
        now = time.monotonic()
        if sent < args.count and now >= start + sent * args.interval / 1000:
            app = f"e2e-{int(start)}-{sent}"
            update = dns.update.UpdateMessage(ZONE, keyring=keyring, keyname=name)
            for service in ("ws", "sockjs", "api"):
                update.replace(f"{service}-{app}", 300, "CNAME", f"{service}-c{sent % 8}.example.com.")
            answer = dns.query.tcp(update, *addr(args.primary)[:1], port=addr(args.primary)[1], timeout=5)
            acked = time.monotonic()
            if answer.rcode() != dns.rcode.NOERROR:
                raise SystemExit(f"UPDATE {sent}: {dns.rcode.to_text(answer.rcode())}")
            serial = None
            soa = dns.message.make_query(ZONE, "SOA")
            reply = dns.query.udp(soa, addr(args.primary)[0], port=addr(args.primary)[1], timeout=2)
            serial = reply.answer[0][0].serial
            for edge in edges:
                query = dns.message.make_query(f"ws-{app}.{ZONE}", "CNAME")
                query.id = next_id
                query_of[next_id] = (sent, edge, query.to_wire())
                pending[next_id] = acked
                next_id = next_id % 65535 + 1
            waiting.append((sent, acked, subprocess.Popen(
                [args.cnamed, "wait", "--control", args.control, "--serial", str(serial), "--timeout", "60"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
            sent += 1
        # Ask every edge still without the name.
        for qid in list(pending):
            _, edge, wire = query_of[qid]
            sock.sendto(wire, edges[edge])
        deadline = time.monotonic() + 0.002
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for _ in selector.select(left):
                while True:
                    try:
                        data, _ = sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    reply = dns.message.from_wire(data)
                    if reply.id in pending and reply.answer:
                        index, edge, _ = query_of[reply.id]
                        took[edge].append((time.monotonic() - pending.pop(reply.id)) * 1000)
        for entry in list(waiting):
            index, acked, process = entry
            code = process.poll()
            if code is not None:
                if code != 0:
                    raise SystemExit(f"cnamed wait for update {index} exited {code}")
                waits.append((time.monotonic() - acked) * 1000)
                waiting.remove(entry)
    rows = [(edge, values) for edge, values in took.items()] + [("cnamed wait", waits)]
    for label, values in rows:
        print(f"{label}: p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms, "
              f"max {max(values):.1f} ms over {len(values)} updates")


if __name__ == "__main__":
    main()
