#!/usr/bin/env python3
"""How long a request spends inside the gateway on each leg of its way, against nginx in the
same place: a diagnostic for work on the request path, not part of the benchmark's report.

    python3 bench/legs.py                    # 5 ms upstream, concurrency 1, 3 rounds
    python3 bench/legs.py --latency 50 --rounds 5

The benchmark's added latency at 50 ms is the difference of two end-to-end medians, and moves
by about 0.1 ms between runs of the same binary on this machine: too much to tell whether a
change of a few tens of microseconds helped. This measures inside the proxy instead. `perf`
records the proxy's system calls (tracepoints only, no stacks) while wrk sends requests one at
a time, and for each request two legs are timed:

- request leg: from the read that brought the client's request in to the write that sends it
  upstream;
- response leg: from the read that brought the provider's answer in to the end of the write
  that hands it to the client.

At concurrency 1 with a few milliseconds between requests, each request finds the proxy's
caches cold: the reason a request at 50 ms upstream latency costs the gateway several times the
CPU it costs under full load, and most of its added latency there. Medians over the rounds are printed, with the system calls a request
makes between the two reads and writes. The tracepoints cost each proxy about a microsecond a
system call. Needs `perf` (linux-perf or linux-tools) and root or perf_event_paranoid <= 1.
"""

import argparse
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

READS = {"read", "recvfrom", "readv", "recvmsg"}
WRITES = {"write", "writev", "sendto", "sendmsg"}


def syscall_names():
    names = {}
    with open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") as header:
        for line in header:
            match = re.match(r"#define __NR_(\w+)\s+(\d+)", line)
            if match:
                names[int(match.group(2))] = match.group(1)
    return names


def socket_roles(pid, listen_port, upstream_port):
    """fd -> "client" or "upstream", for the proxy's TCP connections."""
    inodes = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            match = re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if match:
            inodes[match.group(1)] = int(fd)
    roles = {}
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            remote_port = int(fields[2].split(":")[1], 16)
            fd = inodes.get(fields[9])
            if fd is None:
                continue
            if remote_port == upstream_port:
                roles[fd] = "upstream"
            elif local_port == listen_port and remote_port != 0:
                roles[fd] = "client"
    return roles


def record_calls(pid, url, body_file, auth, concurrency, seconds, listen_port, upstream_port, names):
    """The proxy's system calls while wrk runs: (enter, exit, name, fd, result), in time order,
    and the roles of its sockets."""
    with tempfile.TemporaryDirectory() as workdir:
        data = os.path.join(workdir, "perf.data")
        perf = subprocess.Popen(
            ["perf", "record", "-e", "raw_syscalls:sys_enter,raw_syscalls:sys_exit", "-p", str(pid), "-o", data],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        command, env = bench.wrk_command(url, body_file, concurrency, seconds, auth)
        load = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        time.sleep(min(1.0, seconds / 2))
        roles = socket_roles(pid, listen_port, upstream_port)
        load.wait()
        perf.send_signal(2)
        perf.wait()
        text = subprocess.run(["perf", "script", "-i", data, "-F", "tid,time,event,trace"],
                              capture_output=True, text=True).stdout
    entered = {}
    calls = []
    for line in text.splitlines():
        enter = re.match(r"\s*(\d+)\s+([\d.]+):\s+raw_syscalls:sys_enter:\s+NR (\d+) \(([^)]*)\)", line)
        if enter:
            args = enter.group(4)
            fd = int(args.split(",")[0], 16) if args else None
            entered[enter.group(1)] = (float(enter.group(2)), names.get(int(enter.group(3))), fd)
            continue
        leave = re.match(r"\s*(\d+)\s+([\d.]+):\s+raw_syscalls:sys_exit:\s+NR \d+ = (-?\d+)", line)
        if leave and leave.group(1) in entered:
            started, name, fd = entered.pop(leave.group(1))
            calls.append((started, float(leave.group(2)), name, fd, int(leave.group(3))))
    calls.sort()
    return calls, roles


def legs(calls, roles):
    """Per request: the request and response legs in microseconds, and the other system calls
    made within them."""
    request_legs, response_legs = [], []
    within = collections.Counter()
    state, since = None, 0.0
    for started, ended, name, fd, result in calls:
        role = roles.get(fd) if name in READS | WRITES else None
        if name in READS and role == "client" and result > 0:
            state, since = "request", ended
        elif name in WRITES and role == "upstream" and state == "request":
            request_legs.append((started - since) * 1e6)
            state = None
        elif name in READS and role == "upstream" and result > 0 and state != "response":
            state, since = "response", ended
        elif name in WRITES and role == "client" and state == "response":
            response_legs.append((ended - since) * 1e6)
            state = None
        elif state:
            within[f"{state}: {name}{' (file)' if name in READS | WRITES and role is None else ''}"] += 1
    requests = max(len(request_legs), 1)
    return request_legs, response_legs, {call: count / requests for call, count in within.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=int, default=5, help="upstream latency in ms (with the benchmark's jitter)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=4, help="traced seconds per round and proxy")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-nginx", dest="nginx", action="store_false")
    args = parser.parse_args()
    bench.ensure_tool("wrk", "wrk")
    if args.nginx:
        bench.ensure_tool("nginx", "nginx-light")
    if not shutil.which("perf"):
        sys.exit("legs.py needs perf (apt-get install linux-perf)")
    tollgate_bin, mock_bin = bench.build()
    names = syscall_names()
    results = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as workdir:
        body = bench.write_body(workdir, False)
        mock, mock_address = bench.start_mock(
            mock_bin, args.latency, jitter_ms=bench.JITTER_MS if args.latency else 0)
        upstream_port = int(mock_address.rsplit(":", 1)[1])
        gateway = bench.start_gateway(tollgate_bin, mock_address, workdir, 4480)
        proxies = {"gateway": (4480, gateway.pid, bench.MASTER_KEY)}
        nginx = None
        if args.nginx:
            nginx, worker = bench.start_nginx(mock_address, workdir, 4580)
            proxies["nginx"] = (4580, worker, None)
        try:
            for name, (port, pid, auth) in proxies.items():
                bench.wrk(f"http://127.0.0.1:{port}/v1/chat/completions", body, args.concurrency, 2, auth)
            for round_ in range(args.rounds):
                for name, (port, pid, auth) in proxies.items():
                    calls, roles = record_calls(
                        pid, f"http://127.0.0.1:{port}/v1/chat/completions", body, auth,
                        args.concurrency, args.seconds, port, upstream_port, names)
                    request_legs, response_legs, within = legs(calls, roles)
                    row = (statistics.median(request_legs), statistics.median(response_legs), within)
                    results[name].append(row)
                    print(f"round {round_ + 1} {name:8s} request leg {row[0]:6.1f} us  response leg {row[1]:6.1f} us  "
                          f"({len(request_legs)} requests)", file=sys.stderr)
        finally:
            bench.stop(gateway, nginx, mock)
    print(f"\nMedians of {args.rounds} rounds, upstream {args.latency} ms, concurrency {args.concurrency}:")
    print("| Proxy | Request leg (µs) | Response leg (µs) | Both (µs) |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        request = statistics.median(row[0] for row in rows)
        response = statistics.median(row[1] for row in rows)
        print(f"| {name} | {request:.0f} | {response:.0f} | {request + response:.0f} |")
    for name, rows in results.items():
        within = rows[-1][2]
        listed = ", ".join(f"{call} {count:.2f}" for call, count in sorted(within.items(), key=lambda x: -x[1]) if count >= 0.05)
        print(f"{name}: other system calls a request, last round: {listed or 'none'}")


if __name__ == "__main__":
    main()
