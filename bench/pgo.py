#!/usr/bin/env python3
"""The profile-guided (PGO) release build of the gateway: the binary to run in production and
the one the benchmark measures with --pgo.

    python3 bench/pgo.py        # prints the binary's path: target/pgo/<host>/release/tollgate

Three steps, about twice a plain release build's time:
1. an instrumented build (`-Cprofile-generate`) in target/pgo-generate;
2. a training run: that binary in front of the benchmark's mock providers, on the paths a
   production gateway spends its time in (OpenAI passthrough and Anthropic translation, JSON
   and streams, the master key and virtual keys with limits and budgets, concurrency 1 and 32),
   then stopped with SIGTERM so it writes its profile;
3. the final build (`-Cprofile-use`) in target/pgo, optimised for what the training ran: hot
   paths laid out together, cold ones out of the way.

Why: the gateway's cost a request is spread thin over hyper, tokio, axum, serde and its own
pipeline, with no single hot spot, and at realistic rates (50 ms providers) it runs with cold
caches, so code layout matters more than any one function. llvm-profdata comes from rustup's
llvm-tools component, installed here when missing. The builds pass `--target` so the flags reach
only the gateway's code, not build scripts and proc macros.
"""

import glob
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

TRAINING_SECONDS = 3


def host_triple():
    for line in subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout.splitlines():
        if line.startswith("host: "):
            return line.removeprefix("host: ")
    raise RuntimeError("rustc -vV names no host")


def llvm_profdata():
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], check=True, capture_output=True, text=True).stdout.strip()
    path = os.path.join(sysroot, "lib", "rustlib", host_triple(), "bin", "llvm-profdata")
    if not os.path.exists(path):
        print("installing rustup's llvm-tools component (for llvm-profdata) ...", file=sys.stderr)
        bench.sh("rustup", "component", "add", "llvm-tools")
    return path


def cargo_build(target_dir, rustflags):
    """The gateway built with `rustflags` added to the project's own; returns the binary."""
    triple = host_triple()
    env = dict(os.environ, RUSTFLAGS=" ".join(filter(None, [os.environ.get("RUSTFLAGS"), rustflags])))
    bench.sh("cargo", "build", "--release", "--locked", "-p", "tollgate", "--target", triple,
             "--target-dir", target_dir, cwd=bench.ROOT, env=env)
    return os.path.join(target_dir, triple, "release", "tollgate")


def train(instrumented, mock_bin, workdir):
    """Runs the instrumented gateway through the training load; its profile lands in
    `workdir`/profiles."""
    openai_mock, openai_address = bench.start_mock(mock_bin, 0)
    anthropic_mock, anthropic_address = bench.start_mock(mock_bin, 0, "anthropic")
    gateway_dir = os.path.join(workdir, "keyed")
    os.makedirs(gateway_dir)
    port = 4470
    env_before = os.environ.get("LLVM_PROFILE_FILE")
    os.environ["LLVM_PROFILE_FILE"] = os.path.join(workdir, "profiles", "tollgate-%p.profraw")
    gateway = None
    try:
        # Started once for its migrations, then filled with the benchmark's keys and teams.
        first = bench.start_gateway(instrumented, openai_address, gateway_dir, port)
        bench.stop(first)
        bench.fill_store(os.path.join(gateway_dir, "tollgate.db"))
        gateway = bench.start_gateway(instrumented, openai_address, gateway_dir, port, anthropic_address)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        loads = []
        for stream in (False, True):
            for key in ("master", "virtual", "budgeted"):
                loads.append(("bench-model", stream, key, 32))
            loads.append(("bench-model", stream, "master", 1))
            loads.append(("bench-claude", stream, "virtual", 32))
        keys = {"master": bench.MASTER_KEY, "virtual": bench.VIRTUAL_KEY, "budgeted": bench.BUDGETED_KEY}
        for model, stream, key, concurrency in loads:
            body = bench.write_body(workdir, stream, model)
            result = bench.measure_once(url, body, concurrency, TRAINING_SECONDS, keys[key])
            print(f"trained: {model}, {'stream' if stream else 'JSON'}, {key} key, concurrency {concurrency}: "
                  f"{result['requests']} requests", file=sys.stderr)
        gateway.send_signal(signal.SIGTERM)
        if gateway.wait(timeout=60) != 0:
            raise RuntimeError(f"the instrumented gateway exited with {gateway.returncode}")
        gateway = None
    finally:
        if env_before is None:
            os.environ.pop("LLVM_PROFILE_FILE", None)
        else:
            os.environ["LLVM_PROFILE_FILE"] = env_before
        bench.stop(gateway, openai_mock, anthropic_mock)


def build_pgo(mock_bin):
    """Builds the profile-guided binary (instrument, train, rebuild); returns its path."""
    profdata_tool = llvm_profdata()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(bench.ROOT, "target"))
    with tempfile.TemporaryDirectory() as workdir:
        # A fixed path keeps RUSTFLAGS, and so cargo's cache of this build, the same from run to
        # run; the training run writes its profile where LLVM_PROFILE_FILE says.
        generate_dir = os.path.join(target, "pgo-generate")
        instrumented = cargo_build(generate_dir, f"-Cprofile-generate={generate_dir}/profiles")
        train(instrumented, mock_bin, workdir)
        profiles = glob.glob(os.path.join(workdir, "profiles", "*.profraw"))
        if not profiles:
            raise RuntimeError("the training run wrote no profile")
        merged_unnamed = os.path.join(workdir, "merged.profdata")
        bench.sh(profdata_tool, "merge", "-o", merged_unnamed, *profiles)
        # Named by content: cargo rebuilds when RUSTFLAGS change, not when a file they name does.
        with open(merged_unnamed, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        merged = os.path.join(target, f"pgo-{digest}.profdata")
        for earlier in glob.glob(os.path.join(target, "pgo-*.profdata")):
            os.remove(earlier)
        shutil.copyfile(merged_unnamed, merged)
    # Functions the training never ran are compiled for size, not dropped: no warning each.
    return cargo_build(os.path.join(target, "pgo"),
                       f"-Cprofile-use={merged} -Cllvm-args=-pgo-warn-missing-function=false")


def main():
    _, mock_bin = bench.build()
    print(build_pgo(mock_bin))


if __name__ == "__main__":
    main()
