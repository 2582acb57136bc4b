#!/usr/bin/env python3
"""Gateway binaries side by side at one point of the benchmark: a diagnostic for deciding
whether a change to the request path helps, not part of the benchmark's report.

    cp target/release/tollgate /tmp/tollgate-before    # build, keep, change, build again
    python3 bench/ab.py /tmp/tollgate-before target/release/tollgate
    python3 bench/ab.py --latency 0 --concurrency 32 A B

Each binary runs as its own gateway (the benchmark's config, its own empty store), all in front
of one mock provider, beside nginx in the same place; the point's runs go direct, each gateway,
nginx, in turn, `--repeats` times, each repeat starting one target further along, so the
machine's drift between runs (tens of percent on this one) hits every binary alike. Two
benchmark runs made an hour apart cannot tell a 0.05 ms change at 50 ms from noise; this can,
in a few runs. Prints each target's added p50 and p99 and CPU a request (the median over the
repeats, then every run's, lowest to highest: whether a target holds in every run, not only in
the median) and peak RSS.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="+", help="tollgate binaries to compare")
    parser.add_argument("--latency", type=int, default=50, help="upstream latency in ms (with the benchmark's jitter)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--stream", action="store_true", help="5-chunk streams instead of JSON")
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bench.ensure_tool("wrk", "wrk")
    bench.ensure_tool("nginx", "nginx-light")
    _, mock_bin = bench.build()
    gateways, nginx, mock = [], None, None
    with tempfile.TemporaryDirectory() as workdir:
        body = bench.write_body(workdir, args.stream)
        try:
            mock, mock_address = bench.start_mock(
                mock_bin, args.latency, jitter_ms=bench.JITTER_MS if args.latency else 0)
            targets = {"direct": (f"http://{mock_address}/v1/chat/completions", None, None)}
            for index, binary in enumerate(args.binaries):
                name = f"{index + 1}: {binary}"
                gateway_dir = os.path.join(workdir, str(index))
                os.makedirs(gateway_dir)
                port = 4480 + index
                gateways.append((name, bench.start_gateway(os.path.abspath(binary), mock_address, gateway_dir, port)))
                targets[name] = (f"http://127.0.0.1:{port}/v1/chat/completions", bench.MASTER_KEY, gateways[-1][1].pid)
            nginx, worker = bench.start_nginx(mock_address, workdir, 4580)
            targets["nginx"] = ("http://127.0.0.1:4580/v1/chat/completions", None, worker)
            runs = bench.measure_runs(bench.point_loads(targets, body), args.concurrency, args.duration, args.repeats)
            peak_mb = {name: bench.memory_kb(process.pid, "VmHWM") / 1024 for name, process in gateways}
        finally:
            bench.stop(*(process for _, process in gateways), nginx, mock)
    row = bench.medians(runs)
    direct = row["direct"]
    print(f"\n{args.latency} ms upstream, concurrency {args.concurrency}, {'stream' if args.stream else 'JSON'}, "
          f"medians of {args.repeats} runs of {args.duration} s (each run's own, lowest to highest, after the "
          f"median; added against the median direct); direct p50 {direct['p50_us'] / 1000:.3f} ms")
    print("| Target | Added p50 (ms) | Added p99 (ms) | CPU ms/req | Peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")

    def figure(name, key, scale=1000, baseline=0.0, form="{:+.3f}"):
        each = sorted((run[key] - baseline) / scale for run in runs[name])
        spread = " ".join(form.format(value) for value in each)
        return f"{form.format((row[name][key] - baseline) / scale)} ({spread})"

    for name in row:
        if name == "direct":
            continue
        peak = f"{peak_mb[name]:.1f}" if name in peak_mb else ""
        print(f"| {name} | {figure(name, 'p50_us', baseline=direct['p50_us'])} | "
              f"{figure(name, 'p99_us', baseline=direct['p99_us'])} | "
              f"{figure(name, 'cpu_ms_per_request', scale=1, form='{:.4f}')} | {peak} |")


if __name__ == "__main__":
    main()
