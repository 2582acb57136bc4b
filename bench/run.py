#!/usr/bin/env python3
"""Tollgate's overhead benchmark: the same load against the mock provider directly and through
the gateway, in one run, so the difference is what the gateway adds.

    python3 bench/run.py                 # full matrix: 3 runs of 5 s per point (~12 min)
    python3 bench/run.py --repeats 1     # quicker, noisier
    python3 bench/run.py --pgo           # the profile-guided build (bench/pgo.py), as shipped

Matrix: upstream latency 0 / 50 ms x non-streaming / 5-chunk stream x concurrency 1 / 32 / 128,
each against (a) the mock provider directly and (b) Tollgate in front of it.

Upstream latency varies as a provider's does: at 50 ms, each answer takes 50 ms +- 5 ms
(uniformly; --jitter-ms), timed by the kernel's high-resolution timer (a timerfd), so answers
leave the mock at the instants drawn rather than on tokio's 1 ms ticks, which bunched them into
small bursts no provider sends. The latencies are drawn in blocks of 1,024 that each hold every
step of the spread once, shuffled, so the direct and proxied runs of a point see the same
latencies and their medians differ by what sits in between, not by the draw (independent draws
moved a 3,000-answer median by about 0.1 ms). With every answer taking exactly 50 ms, requests
that arrive together (wrk opens its 32 connections at once) come back together 50 ms later,
round after round: the connections stay in lock-step, and whatever sits in front of the mock
serves bursts of 32 at once, so its added latency is the burst's CPU time rather than its own
hop. That case is measured too (skip with --no-lockstep): 50 ms exactly, concurrency 32,
against nginx in the same place.

Group size (skip with --no-group): at 0 ms, the same gateway serving a one-deployment group
beside a group of 100 deployments (all on the mock), JSON, concurrency 1 and 32: choosing a
deployment must not grow with the group.

Translation (skip with --no-translation): at 0 ms, the gateway's CPU per request for an OpenAI
client served by an Anthropic-format mock (request, response and stream translated) beside the
OpenAI-to-OpenAI passthrough, JSON and stream, concurrency 1 and 32.

Virtual keys (skip with --no-keys): at 0 ms, a second gateway whose store holds 100,000 virtual
keys and 1,000 teams, JSON, concurrency 1 and 32: the master key against a virtual key whose key
and team have rpm, tpm and max_parallel_requests limits (set high enough never to refuse), so
every request is authenticated, its model checked and its limits counted; and a third key that
also has a budget, as has its team, so each request's worst case is reserved and settled. Its
idle RSS is reported beside the keyless gateway's. The spend journal's own throughput (appends,
and drains into SQLite) is measured after.

Shared through Redis (with --keys, when the Redis at TOLLGATE_BENCH_REDIS_URL, default
redis://127.0.0.1:6379, answers; skip with --no-redis): the same store on a gateway whose
limits and budgets are counted in Redis, as replicas share them — the virtual and budgeted keys
again, so each request's admission (and reservation) is a Redis round trip. Redis runs
unpinned, as it comes; its own CPU is not the gateway's.

For reference, nginx as a plain reverse proxy (keep-alive upstream, no buffering, access log
on) is measured in the gateway's place at every point (skip with --no-nginx).

Placement on a 2-core machine: the gateway alone on core 1 (`taskset -c 1`, so its runtime
runs one worker thread); the mock provider and the load generator (wrk) share core 0. The
direct runs use the same placement, so the comparison is like for like.

Reported: requests/s, p50/p99 latency, added latency (gateway - direct, same point), gateway
CPU time per request (the gateway's CPU time from /proc over the measured window, divided by
requests: per-thread schedstat nanoseconds, cross-checked against utime+stime), gateway RSS
idle and peak (VmRSS before load, VmHWM at the end).
"""

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import socket
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MASTER_KEY = "sk-bench"


def sh(*args, **kwargs):
    return subprocess.run(args, check=True, **kwargs)


def ensure_tool(binary, package):
    if shutil.which(binary) or os.path.exists(f"/usr/sbin/{binary}"):
        return
    print(f"installing {package} (Debian package) ...", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    sh(*sudo, "apt-get", "install", "-y", "--no-install-recommends", package, stdout=subprocess.DEVNULL)


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log {dir}/nginx-access.log;
  client_body_temp_path {dir}/nginx-body;
  proxy_temp_path {dir}/nginx-proxy;
  upstream mock {{ server {mock}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


def start_nginx(mock_address, workdir, port):
    """nginx as a plain reverse proxy (keep-alive upstream, no buffering, access log on), in
    the gateway's place: the reference for what a proxy costs on this machine."""
    config = os.path.join(workdir, "nginx.conf")
    with open(config, "w") as f:
        f.write(NGINX_CONF.format(dir=workdir, mock=mock_address, port=port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen(["taskset", "-c", "1", nginx, "-c", config], stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/v1/models", process)
    for _ in range(50):
        workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        if workers:
            return process, int(workers[0])
        time.sleep(0.1)
    raise RuntimeError("nginx started no worker")


def stop(*processes):
    """Stops each process given (None: none started) and waits for it."""
    for process in processes:
        if process:
            process.terminate()
            process.wait()


def build():
    sh("cargo", "build", "--release", "--locked", "-p", "tollgate", "-p", "tollgate-testkit", cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "tollgate"), os.path.join(target, "release", "tollgate-mock-provider")


def cpu_seconds(pid):
    """The process's CPU time: utime + stime from /proc/PID/stat (clock-tick resolution), and
    the sum of its threads' run time from /proc/PID/task/*/schedstat (nanoseconds). The precise
    one is reported; the two agree to within a tick."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    nanos = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
                nanos += int(schedstat.read().split()[0])
        except OSError:
            pass  # a thread that just exited
    return ticks, nanos / 1e9


def memory_kb(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def wait_http(url, process, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


# How much a provider's answers vary at a non-zero upstream latency: +- this many ms.
JITTER_MS = 5


def start_mock(mock_bin, latency_ms, wire_format="openai", jitter_ms=0):
    process = subprocess.Popen(
        ["taskset", "-c", "0", mock_bin, "--format", wire_format, "--fixed", "--chunks", "5", "--threads", "1",
         "--latency-ms", str(latency_ms), "--jitter-ms", str(jitter_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline().strip()
    return process, line.removeprefix("listening on ")


GROUP_SIZE = 100


def start_gateway(tollgate_bin, mock_address, workdir, port, anthropic_address=None, extra=""):
    """The gateway, its store (an empty SQLite file) beside its config in `workdir`; `extra`:
    more YAML for its config."""
    config = os.path.join(workdir, "bench.yaml")
    with open(config, "w") as f:
        f.write(
            "model_list:\n"
            "  - model_name: bench-model\n"
            "    litellm_params:\n"
            "      model: openai/gpt-4o-mini\n"
            f"      api_base: http://{mock_address}/v1\n"
            "      api_key: sk-provider-bench\n"
        )
        for index in range(GROUP_SIZE):
            f.write(
                "  - model_name: bench-group\n"
                "    litellm_params:\n"
                "      model: openai/gpt-4o-mini\n"
                f"      api_base: http://{mock_address}/v1\n"
                "      api_key: sk-provider-bench\n"
                f"    model_info: {{id: group-member-{index}}}\n"
            )
        if anthropic_address:
            f.write(
                "  - model_name: bench-claude\n"
                "    litellm_params:\n"
                "      model: anthropic/claude-sonnet-4-5\n"
                f"      api_base: http://{anthropic_address}\n"
                "      api_key: sk-ant-bench\n"
            )
        f.write(f"general_settings:\n  master_key: {MASTER_KEY}\n{extra}")
    log = open(os.path.join(workdir, "gateway.log"), "w")
    process = subprocess.Popen(
        ["taskset", "-c", "1", tollgate_bin, "serve", "--config", config, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", process)
    return process


KEYS = 100_000
TEAMS = 1_000
VIRTUAL_KEY = "sk-bench-virtual-key-0000000000"
BUDGETED_KEY = "sk-bench-budgeted-key-000000000"
HIGH_LIMITS = {"rpm_limit": 10**9, "tpm_limit": 10**12, "max_parallel_requests": 10**6}
# Never reached, so every request is reserved and settled but none refused.
HIGH_BUDGET = {"max_budget": 10.0**9, "budget_duration": "30d"}


def fill_store(database):
    """KEYS virtual keys over TEAMS teams, written straight into the gateway's SQLite store (the
    schema made by its own migrations). VIRTUAL_KEY is the first; it and its team carry
    limits. BUDGETED_KEY is the second; it and its team carry the same limits and budgets."""
    now = int(time.time() * 1000)
    db = sqlite3.connect(database)
    with db:
        for index in range(TEAMS):
            team = {"team_id": f"team-{index}", "team_alias": f"Team {index}", "models": [],
                    "members_with_roles": [], "metadata": {}, "blocked": False,
                    "created_at": now, "updated_at": now, **HIGH_LIMITS,
                    **(HIGH_BUDGET if index == 1 else {})}
            db.execute("INSERT INTO tollgate_teams (id, body, updated_at) VALUES (?, ?, ?)",
                       (team["team_id"], json.dumps(team), now))
        rows = []
        for index in range(KEYS):
            key = {0: VIRTUAL_KEY, 1: BUDGETED_KEY}.get(index, f"sk-bench-{index:026d}")
            limits = HIGH_LIMITS if index < 2 else {"rpm_limit": None, "tpm_limit": None, "max_parallel_requests": None}
            budget = HIGH_BUDGET if index == 1 else {"max_budget": None, "budget_duration": None}
            rows.append((
                hashlib.sha256(key.encode()).hexdigest(), f"sk-...{key[-4:]}", f"bench-key-{index}",
                f"bench-user-{index % 5000}", f"team-{index % TEAMS}", None, "[]", "{}", "{}", "[]", "{}",
                limits["tpm_limit"], limits["rpm_limit"], limits["max_parallel_requests"], 0, None, now, now,
                "bench", budget["max_budget"], budget["budget_duration"],
            ))
        db.executemany(
            "INSERT INTO tollgate_keys (token, key_name, key_alias, user_id, team_id, organization_id, models, "
            "aliases, metadata, tags, permissions, tpm_limit, rpm_limit, max_parallel_requests, blocked, "
            "expires_at, created_at, updated_at, created_by, max_budget, budget_duration) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    db.close()


def start_keyed_gateway(tollgate_bin, mock_address, workdir, port, extra="", anthropic_address=None):
    """A gateway whose store holds KEYS keys and TEAMS teams: started once for its migrations,
    filled, started again (it loads the store at start-up). Started again later (`extra`: more
    config), it finds the store filled."""
    keyed_dir = os.path.join(workdir, "keyed")
    database = os.path.join(keyed_dir, "tollgate.db")
    if not os.path.exists(database):
        os.makedirs(keyed_dir, exist_ok=True)
        first = start_gateway(tollgate_bin, mock_address, keyed_dir, port)
        stop(first)
        fill_store(database)
    return start_gateway(tollgate_bin, mock_address, keyed_dir, port, anthropic_address, extra)


def redis_url():
    """The Redis to share limits and budgets through, if it answers a PING."""
    url = os.environ.get("TOLLGATE_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
    parsed = urllib.parse.urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(64).startswith(b"+PONG"):
                return url
    except OSError as err:
        print(f"no Redis at {url} ({err}): the shared-through-Redis comparison is skipped", file=sys.stderr)
    return None


def request_body(stream, model="bench-model"):
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
            {"role": "user", "content": "Write one sentence about a quick brown fox jumping over a lazy dog."},
        ],
        "max_tokens": 64,
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":"))


def write_body(workdir, stream, model="bench-model"):
    """The request body for wrk, as a file in `workdir`; returns its path."""
    path = os.path.join(workdir, f"body-{model}-{stream}.json")
    with open(path, "w") as f:
        f.write(request_body(stream, model))
    return path


def wrk_command(url, body_file, concurrency, duration, auth):
    """wrk's command line and environment: one thread on core 0, posting `body_file`."""
    env = dict(os.environ, BENCH_BODY_FILE=body_file, BENCH_AUTH=auth or "")
    command = ["taskset", "-c", "0", "wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s",
               "-s", os.path.join(ROOT, "bench", "request.lua"), url]
    return command, env


def wrk(url, body_file, concurrency, duration, auth):
    command, env = wrk_command(url, body_file, concurrency, duration, auth)
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")


def measure_once(url, body_file, concurrency, duration, auth, pid=None):
    before = cpu_seconds(pid) if pid else None
    result = wrk(url, body_file, concurrency, duration, auth)
    if pid:
        after = cpu_seconds(pid)
        requests = max(result["requests"], 1)
        result["cpu_ms_per_request"] = (after[1] - before[1]) * 1000.0 / requests
        result["cpu_ms_per_request_ticks"] = (after[0] - before[0]) * 1000.0 / requests
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    errors = sum(v for k, v in result.items() if k.startswith("errors_"))
    if errors:
        raise RuntimeError(f"{url}: {errors} errors during the run: {result}")
    return result


def median_of(runs):
    """Each figure is the median over the repeats: this machine's noise moves single runs by
    tens of percent."""
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))]
    return {k: statistics.median(run[k] for run in runs) for k in keys}


def measure_proxies(label, latency_ms, mock_address, gateway, nginx, bodies, stream, concurrency, args):
    """One point: the mock (answering after `latency_ms`) directly, the gateway (port, pid) and
    nginx (port, worker pid; None: not measured) in front of it, the same load. Prints the
    point's line."""
    targets = {
        "direct": (f"http://{mock_address}/v1/chat/completions", None, None),
        "gateway": (f"http://127.0.0.1:{gateway[0]}/v1/chat/completions", MASTER_KEY, gateway[1]),
    }
    if nginx:
        targets["nginx"] = (f"http://127.0.0.1:{nginx[0]}/v1/chat/completions", None, nginx[1])
    row = measure_point(targets, bodies[stream], concurrency, args.duration, args.repeats)
    row.update({"latency_ms": latency_ms, "stream": stream, "concurrency": concurrency})
    direct, through = row["direct"], row["gateway"]
    print(f"{label}  {'stream' if stream else 'json  '}  c={concurrency:<3}  "
          f"direct p50 {direct['p50_us'] / 1000:7.3f} ms  gateway p50 {through['p50_us'] / 1000:7.3f} ms  "
          f"added p50 {(through['p50_us'] - direct['p50_us']) / 1000:+.3f} ms  "
          f"p99 {(through['p99_us'] - direct['p99_us']) / 1000:+.3f} ms  "
          f"cpu {through['cpu_ms_per_request']:.4f} ms/req", file=sys.stderr)
    return row


def interleaved(names, repeats):
    """`names` over and over, `repeats` times, each round starting one further along: whatever
    a run inherits from the run before it then falls on every name in turn, not always on the
    same one."""
    names = list(names)
    for repeat in range(repeats):
        shift = repeat % len(names)
        yield from names[shift:] + names[:shift]


def measure_runs(loads, concurrency, duration, repeats):
    """loads: name -> (url, body_file, auth, pid). Warms each up, then measures them
    interleaved, so slow drift of the machine hits all alike; each one's runs."""
    for url, body_file, auth, _ in loads.values():
        wrk(url, body_file, concurrency, 2, auth)
    runs = {name: [] for name in loads}
    for name in interleaved(loads, repeats):
        url, body_file, auth, pid = loads[name]
        runs[name].append(measure_once(url, body_file, concurrency, duration, auth, pid))
    return runs


def medians(runs):
    """runs: name -> its runs; name -> the median of its runs."""
    return {name: median_of(results) for name, results in runs.items()}


def measure_interleaved(loads, concurrency, duration, repeats):
    """measure_runs, the median of each one's runs."""
    return medians(measure_runs(loads, concurrency, duration, repeats))


def point_loads(targets, body_file):
    """targets: name -> (url, auth, pid), all sent `body_file`; as measure_runs takes them."""
    return {name: (url, body_file, auth, pid) for name, (url, auth, pid) in targets.items()}


def measure_point(targets, body_file, concurrency, duration, repeats):
    """targets: name -> (url, auth, pid), all sent `body_file`."""
    return measure_interleaved(point_loads(targets, body_file), concurrency, duration, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per point; medians are reported")
    parser.add_argument("--latencies", default="0,50", help="upstream latencies in ms")
    parser.add_argument("--concurrency", default="1,32,128")
    parser.add_argument("--jitter-ms", type=int, default=JITTER_MS,
                        help="at a non-zero upstream latency, each answer takes the latency +- this (uniformly)")
    parser.add_argument("--no-lockstep", dest="lockstep", action="store_false",
                        help="skip the exactly-50-ms (lock-step) points")
    parser.add_argument("--no-nginx", dest="nginx", action="store_false", help="skip the nginx reference")
    parser.add_argument("--no-translation", dest="translation", action="store_false",
                        help="skip the OpenAI-client-to-Anthropic-provider comparison")
    parser.add_argument("--no-keys", dest="keys", action="store_false",
                        help="skip the master key against virtual key (100,000 keys stored) comparison")
    parser.add_argument("--no-group", dest="group", action="store_false",
                        help="skip the one-deployment against 100-deployment group comparison")
    parser.add_argument("--no-redis", dest="redis", action="store_false",
                        help="skip the keys again with limits and budgets shared through Redis")
    parser.add_argument("--pgo", action="store_true",
                        help="measure the profile-guided build (bench/pgo.py) instead of the plain release build")
    args = parser.parse_args()

    ensure_tool("wrk", "wrk")
    if args.nginx:
        ensure_tool("nginx", "nginx-light")
    tollgate_bin, mock_bin = build()
    if args.pgo:
        import pgo
        tollgate_bin = pgo.build_pgo(mock_bin)
    rows = []
    translation_rows = []
    group_rows = []
    key_rows = []
    redis_rows = []
    lockstep_rows = []
    memory = {}
    with tempfile.TemporaryDirectory() as workdir:
        bodies = {}
        claude_bodies = {}
        group_body = write_body(workdir, False, "bench-group")
        for stream in (False, True):
            for model, paths in (("bench-model", bodies), ("bench-claude", claude_bodies)):
                paths[stream] = write_body(workdir, stream, model)
        for latency in [int(x) for x in args.latencies.split(",")]:
            mock, mock_address = start_mock(mock_bin, latency, jitter_ms=args.jitter_ms if latency else 0)
            translating = args.translation and latency == 0
            anthropic_mock, anthropic_address = start_mock(mock_bin, 0, "anthropic") if translating else (None, None)
            port = 4400 + latency
            gateway = start_gateway(tollgate_bin, mock_address, workdir, port, anthropic_address)
            nginx, nginx_worker = start_nginx(mock_address, workdir, port + 100) if args.nginx else (None, None)
            time.sleep(0.5)
            memory.setdefault("idle_rss_mb", memory_kb(gateway.pid, "VmRSS") / 1024)
            try:
                for stream in (False, True):
                    for concurrency in [int(x) for x in args.concurrency.split(",")]:
                        rows.append(measure_proxies(
                            f"latency {latency:>2} ms", latency, mock_address, (port, gateway.pid),
                            (port + 100, nginx_worker) if nginx else None, bodies, stream, concurrency, args))
                if args.group and latency == 0:
                    group_rows += measure_group(
                        f"http://127.0.0.1:{port}/v1/chat/completions", gateway.pid, bodies[False], group_body, args)
                if args.keys and latency == 0:
                    keyed = start_keyed_gateway(tollgate_bin, mock_address, workdir, port + 200)
                    try:
                        time.sleep(0.5)
                        memory["keyed_idle_rss_mb"] = memory_kb(keyed.pid, "VmRSS") / 1024
                        key_rows += measure_keys(
                            f"http://127.0.0.1:{port + 200}/v1/chat/completions", keyed.pid, bodies[False], args)
                    finally:
                        stop(keyed)
                    shared_redis = redis_url() if args.redis else None
                    if shared_redis:
                        prefix = f"tollgate-bench-{os.getpid()}-{int(time.time())}"
                        shared = start_keyed_gateway(
                            tollgate_bin, mock_address, workdir, port + 200,
                            extra=f"router_settings:\n  redis_url: {shared_redis}\n"
                                  f"tollgate_settings:\n  redis_key_prefix: {prefix}\n")
                        try:
                            time.sleep(0.5)
                            redis_rows += measure_shared(
                                f"http://127.0.0.1:{port + 200}/v1/chat/completions", shared.pid, bodies[False], args)
                        finally:
                            stop(shared)
                if translating:
                    translation_rows += measure_translation(
                        f"http://127.0.0.1:{port}/v1/chat/completions", gateway.pid, bodies, claude_bodies, args)
                memory["peak_rss_mb"] = max(memory.get("peak_rss_mb", 0), memory_kb(gateway.pid, "VmHWM") / 1024)
            finally:
                stop(anthropic_mock, gateway, nginx, mock)
        slow = max((int(x) for x in args.latencies.split(",")), default=0)
        if args.lockstep and slow and args.jitter_ms:
            lockstep_rows = measure_lockstep(tollgate_bin, mock_bin, workdir, bodies, slow, args)

    os.makedirs(RESULTS, exist_ok=True)
    journal = measure_journal() if args.keys else None
    report = render(rows, lockstep_rows, translation_rows, group_rows, key_rows, redis_rows, journal, memory, args)
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write(report)
    with open(os.path.join(RESULTS, "latest.json"), "w") as f:
        json.dump({"rows": rows, "lockstep": lockstep_rows, "translation": translation_rows, "group": group_rows, "keys": key_rows,
                   "redis": redis_rows, "journal": journal,
                   "memory": memory,
                   "args": vars(args)}, f, indent=1)
    print(report)


def compare_bodies(url, gateway_pid, files, concurrency, args, auths=None):
    """The same gateway at the same URL, one body (and key: `auths`, else the master key) per
    name."""
    auths = auths or {name: MASTER_KEY for name in files}
    loads = {name: (url, file, auths[name], gateway_pid) for name, file in files.items()}
    return measure_interleaved(loads, concurrency, args.duration, args.repeats)


def measure_keys(url, gateway_pid, body, args):
    """The master key against a limited virtual key and a limited, budgeted one, on a gateway
    holding KEYS keys."""
    rows = []
    for concurrency in (1, 32):
        row = compare_bodies(url, gateway_pid, {"master": body, "virtual": body, "budgeted": body},
                             concurrency, args,
                             auths={"master": MASTER_KEY, "virtual": VIRTUAL_KEY, "budgeted": BUDGETED_KEY})
        row["concurrency"] = concurrency
        rows.append(row)
        print(f"virtual keys json    c={concurrency:<3}  " + "  ".join(
            f"{name} cpu {row[name]['cpu_ms_per_request']:.4f} ms/req p50 {row[name]['p50_us'] / 1000:.3f} ms"
            for name in ("master", "virtual", "budgeted")), file=sys.stderr)
    return rows


def measure_shared(url, gateway_pid, body, args):
    """The limited and the budgeted key on a gateway counting them in Redis."""
    rows = []
    for concurrency in (1, 32):
        row = compare_bodies(url, gateway_pid, {"virtual": body, "budgeted": body}, concurrency, args,
                             auths={"virtual": VIRTUAL_KEY, "budgeted": BUDGETED_KEY})
        row["concurrency"] = concurrency
        rows.append(row)
        print(f"shared via redis     c={concurrency:<3}  " + "  ".join(
            f"{name} cpu {row[name]['cpu_ms_per_request']:.4f} ms/req p50 {row[name]['p50_us'] / 1000:.3f} ms"
            for name in ("virtual", "budgeted")), file=sys.stderr)
    return rows


def measure_journal():
    """The spend journal alone: appends per second from two threads, and drains per second into
    SQLite (and PostgreSQL, when TOLLGATE_BENCH_POSTGRES_URL names a fresh database)."""
    output = subprocess.run(
        ["cargo", "run", "--quiet", "--release", "-p", "tollgate-store", "--example", "journal_throughput", "200000"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    print(f"spend journal        appends {result['append_per_second']:,.0f}/s  "
          f"drain to SQLite {result['drain_to_sqlite_per_second']:,.0f}/s", file=sys.stderr)
    return result


def measure_group(url, gateway_pid, single_body, group_body, args):
    """A one-deployment group against a 100-deployment group, same gateway, same mock."""
    rows = []
    for concurrency in (1, 32):
        row = compare_bodies(url, gateway_pid, {"single": single_body, "group": group_body}, concurrency, args)
        row["concurrency"] = concurrency
        rows.append(row)
        print(f"group of {GROUP_SIZE}  json    c={concurrency:<3}  "
              f"1 deployment cpu {row['single']['cpu_ms_per_request']:.4f} ms/req p50 {row['single']['p50_us'] / 1000:.3f} ms  "
              f"{GROUP_SIZE} deployments cpu {row['group']['cpu_ms_per_request']:.4f} ms/req "
              f"p50 {row['group']['p50_us'] / 1000:.3f} ms", file=sys.stderr)
    return rows


def measure_translation(url, gateway_pid, bodies, claude_bodies, args):
    """The same gateway, the same client request: passthrough to the OpenAI mock against
    translation to the Anthropic mock."""
    rows = []
    for stream in (False, True):
        for concurrency in (1, 32):
            files = {"passthrough": bodies[stream], "translated": claude_bodies[stream]}
            row = compare_bodies(url, gateway_pid, files, concurrency, args)
            row.update({"stream": stream, "concurrency": concurrency})
            rows.append(row)
            ratio = row["translated"]["cpu_ms_per_request"] / row["passthrough"]["cpu_ms_per_request"]
            print(f"translation  {'stream' if stream else 'json  '}  c={concurrency:<3}  "
                  f"passthrough cpu {row['passthrough']['cpu_ms_per_request']:.4f} ms/req  "
                  f"translated cpu {row['translated']['cpu_ms_per_request']:.4f} ms/req  ratio {ratio:.2f}",
                  file=sys.stderr)
    return rows


LOCKSTEP_CONCURRENCY = 32


def measure_lockstep(tollgate_bin, mock_bin, workdir, bodies, latency, args):
    """The points where every answer takes exactly `latency`: the connections move in lock-step
    and the gateway, like nginx in its place, serves bursts of LOCKSTEP_CONCURRENCY requests."""
    mock, mock_address = start_mock(mock_bin, latency)
    port = 4700
    gateway = start_gateway(tollgate_bin, mock_address, workdir, port)
    nginx, nginx_worker = start_nginx(mock_address, workdir, port + 100) if args.nginx else (None, None)
    rows = []
    try:
        time.sleep(0.5)
        for stream in (False, True):
            rows.append(measure_proxies(
                f"lock-step {latency} ms", latency, mock_address, (port, gateway.pid),
                (port + 100, nginx_worker) if nginx else None, bodies, stream, LOCKSTEP_CONCURRENCY, args))
    finally:
        stop(gateway, nginx, mock)
    return rows


def render(rows, lockstep_rows, translation_rows, group_rows, key_rows, redis_rows, journal, memory, args):
    machine = subprocess.run(["uname", "-srm"], capture_output=True, text=True).stdout.strip()
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    lines = [
        f"Command: `python3 bench/run.py --duration {args.duration} --repeats {args.repeats}"
        f"{'' if args.latencies == '0,50' else ' --latencies ' + args.latencies}"
        f"{'' if args.concurrency == '1,32,128' else ' --concurrency ' + args.concurrency}"
        f"{'' if args.jitter_ms == JITTER_MS else f' --jitter-ms {args.jitter_ms}'}"
        f"{' --pgo' if args.pgo else ''}` on {os.cpu_count()} cores ({cpu}; {machine}).",
        "The gateway: " + ("the profile-guided build (bench/pgo.py)." if args.pgo else "the plain release build (cargo build --release)."),
        "Each figure is the median of the repeats; the runs of a point are interleaved (direct, gateway, nginx, then gateway, nginx, direct, ...: each repeat starts one target further along).",
        "Gateway (and the nginx reference) pinned to core 1; mock provider and wrk share core 0. Latency in ms; added = gateway - direct.",
        f"At a non-zero upstream latency each answer takes the latency +- {args.jitter_ms} ms (uniformly, on a timerfd; every step of the spread once per 1,024 answers).",
        "",
        "| upstream | mode | conc. | direct req/s | gateway req/s | direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | added p99 | gateway CPU ms/req | nginx added p50 | nginx CPU ms/req |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        d, g = row["direct"], row["gateway"]
        lines.append(
            f"| {row['latency_ms']} ms | {'stream (5 chunks)' if row['stream'] else 'JSON'} | {row['concurrency']} "
            f"| {d['rps']:,.0f} | {g['rps']:,.0f} "
            f"| {d['p50_us'] / 1000:.3f} | {g['p50_us'] / 1000:.3f} | {(g['p50_us'] - d['p50_us']) / 1000:+.3f} "
            f"| {d['p99_us'] / 1000:.3f} | {g['p99_us'] / 1000:.3f} | {(g['p99_us'] - d['p99_us']) / 1000:+.3f} "
            f"| {g['cpu_ms_per_request']:.4f} "
            + (f"| {(row['nginx']['p50_us'] - d['p50_us']) / 1000:+.3f} | {row['nginx']['cpu_ms_per_request']:.4f} |"
               if "nginx" in row else "| - | - |")
        )
    if lockstep_rows:
        lines += [
            "",
            f"Lock-step, every answer exactly {lockstep_rows[0]['latency_ms']} ms, concurrency {LOCKSTEP_CONCURRENCY}: requests that arrive together",
            f"(wrk opens its connections at once) come back together, round after round, so the proxy in front serves bursts of {LOCKSTEP_CONCURRENCY};",
            "its added latency is the burst's CPU time (the gateway's, or nginx's in its place).",
            "",
            "| mode | direct p50 | direct p99 | gateway added p50 | gateway added p99 | gateway CPU ms/req | nginx added p50 | nginx added p99 | nginx CPU ms/req |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in lockstep_rows:
            d, g = row["direct"], row["gateway"]
            n = row.get("nginx")
            lines.append(
                f"| {'stream (5 chunks)' if row['stream'] else 'JSON'} | {d['p50_us'] / 1000:.3f} | {d['p99_us'] / 1000:.3f} "
                f"| {(g['p50_us'] - d['p50_us']) / 1000:+.3f} | {(g['p99_us'] - d['p99_us']) / 1000:+.3f} "
                f"| {g['cpu_ms_per_request']:.4f} "
                + (f"| {(n['p50_us'] - d['p50_us']) / 1000:+.3f} | {(n['p99_us'] - d['p99_us']) / 1000:+.3f} "
                   f"| {n['cpu_ms_per_request']:.4f} |" if n else "| - | - | - |")
            )
    if translation_rows:
        lines += [
            "",
            "Translation, 0 ms upstream: one gateway, an OpenAI client; `passthrough` goes to the OpenAI-format mock,",
            "`translated` to the Anthropic-format mock (request, response and stream translated). CPU is the gateway's.",
            "",
            "| mode | conc. | passthrough p50 | translated p50 | passthrough CPU ms/req | translated CPU ms/req | CPU ratio |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in translation_rows:
            p, t = row["passthrough"], row["translated"]
            lines.append(
                f"| {'stream (5 chunks)' if row['stream'] else 'JSON'} | {row['concurrency']} "
                f"| {p['p50_us'] / 1000:.3f} | {t['p50_us'] / 1000:.3f} "
                f"| {p['cpu_ms_per_request']:.4f} | {t['cpu_ms_per_request']:.4f} "
                f"| {t['cpu_ms_per_request'] / p['cpu_ms_per_request']:.2f} |"
            )
    if group_rows:
        lines += [
            "",
            f"Group size, 0 ms upstream, JSON: one gateway; `1` is a one-deployment group, `{GROUP_SIZE}` a group of",
            f"{GROUP_SIZE} deployments on the same mock (simple-shuffle). CPU is the gateway's.",
            "",
            f"| conc. | 1: p50 | {GROUP_SIZE}: p50 | 1: CPU ms/req | {GROUP_SIZE}: CPU ms/req |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in group_rows:
            one, many = row["single"], row["group"]
            lines.append(
                f"| {row['concurrency']} | {one['p50_us'] / 1000:.3f} | {many['p50_us'] / 1000:.3f} "
                f"| {one['cpu_ms_per_request']:.4f} | {many['cpu_ms_per_request']:.4f} |"
            )
    if key_rows:
        lines += [
            "",
            f"Virtual keys, 0 ms upstream, JSON: one gateway whose store holds {KEYS:,} keys and {TEAMS:,} teams;",
            "`master` calls with the master key, `virtual` with a key whose key and team both have rpm, tpm and",
            "max_parallel_requests limits (never reached). CPU is the gateway's.",
            "",
            "`budgeted` with a key that also has a budget, as has its team (never reached): each request's",
            "worst case is reserved against both, then settled. Every request's spend record is journaled",
            "and stored in all three.",
            "",
            "| conc. | master p50 | virtual p50 | budgeted p50 | master CPU ms/req | virtual CPU ms/req | budgeted CPU ms/req | budgeted / virtual CPU |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in key_rows:
            m, v, b = row["master"], row["virtual"], row["budgeted"]
            lines.append(
                f"| {row['concurrency']} | {m['p50_us'] / 1000:.3f} | {v['p50_us'] / 1000:.3f} | {b['p50_us'] / 1000:.3f} "
                f"| {m['cpu_ms_per_request']:.4f} | {v['cpu_ms_per_request']:.4f} | {b['cpu_ms_per_request']:.4f} "
                f"| {b['cpu_ms_per_request'] / v['cpu_ms_per_request']:.2f} |"
            )
    if redis_rows:
        in_memory = {row["concurrency"]: row for row in key_rows}
        lines += [
            "",
            "Shared through Redis, 0 ms upstream, JSON: the same store on a gateway whose limits and budgets are",
            "counted in Redis (`router_settings.redis_url`), as replicas share them; `in memory` is the row above.",
            "Every request is admitted by one Lua script and, with a budget, reserved by another, sent together",
            "(one round trip), then ended and settled after the answer. CPU is the gateway's (Redis's own is not",
            "counted; Redis runs unpinned).",
            "",
            "| conc. | virtual p50: in memory / Redis | budgeted p50: in memory / Redis | virtual CPU ms/req: in memory / Redis | budgeted CPU ms/req: in memory / Redis |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in redis_rows:
            here = in_memory.get(row["concurrency"])
            if not here:
                continue
            lines.append(
                f"| {row['concurrency']} "
                f"| {here['virtual']['p50_us'] / 1000:.3f} / {row['virtual']['p50_us'] / 1000:.3f} "
                f"| {here['budgeted']['p50_us'] / 1000:.3f} / {row['budgeted']['p50_us'] / 1000:.3f} "
                f"| {here['virtual']['cpu_ms_per_request']:.4f} / {row['virtual']['cpu_ms_per_request']:.4f} "
                f"| {here['budgeted']['cpu_ms_per_request']:.4f} / {row['budgeted']['cpu_ms_per_request']:.4f} |"
            )
    if journal:
        lines += ["", f"Spend journal: {journal['append_per_second']:,.0f} records/s appended (two threads), "
                      f"{journal['drain_to_sqlite_per_second']:,.0f} records/s drained into SQLite"
                      + (f", {journal['insert_to_postgres_per_second']:,.0f} into PostgreSQL"
                         if journal.get("insert_to_postgres_per_second") else "")
                      + f"; {journal['bytes_per_record']} bytes a record."]
    lines += ["", f"Gateway memory: {memory.get('idle_rss_mb', 0):.1f} MB RSS idle, {memory.get('peak_rss_mb', 0):.1f} MB peak under load."]
    if "keyed_idle_rss_mb" in memory:
        lines.append(f"With {KEYS:,} keys and {TEAMS:,} teams loaded: {memory['keyed_idle_rss_mb']:.1f} MB RSS idle.")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
