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
    """Runs the instrumented gateway (its store and bodies in `workdir`) through the training
    load, then stops it with SIGTERM so that it writes its profile."""
    openai_mock, openai_address = bench.start_mock(mock_bin, 0)
    anthropic_mock, anthropic_address = bench.start_mock(mock_bin, 0, "anthropic")
    gateway = None
    try:
        port = 4470
        gateway = bench.start_keyed_gateway(instrumented, openai_address, workdir, port,
                                            anthropic_address=anthropic_address)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        keys = {"master": bench.MASTER_KEY, "virtual": bench.VIRTUAL_KEY, "budgeted": bench.BUDGETED_KEY}
        loads = [("bench-model", "master", 32), ("bench-model", "virtual", 32), ("bench-model", "budgeted", 32),
                 ("bench-model", "master", 1), ("bench-claude", "virtual", 32)]
        for stream in (False, True):
            for model, key_name, concurrency in loads:
                body = bench.write_body(workdir, stream, model)
                result = bench.measure_once(url, body, concurrency, TRAINING_SECONDS, keys[key_name])
                print(f"trained: {model}, {'stream' if stream else 'JSON'}, {key_name} key, "
                      f"concurrency {concurrency}: {result['requests']} requests", file=sys.stderr)
        gateway.send_signal(signal.SIGTERM)
        if gateway.wait(timeout=60) != 0:
            raise RuntimeError(f"the instrumented gateway exited with {gateway.returncode}")
        gateway = None
    finally:
        bench.stop(gateway, openai_mock, anthropic_mock)


def build_pgo(mock_bin):
    """Builds the profile-guided binary (instrument, train, rebuild); returns its path."""
    profdata_tool = llvm_profdata()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(bench.ROOT, "target"))
    generate_dir = os.path.join(target, "pgo-generate")
    # The instrumented binary writes its profile here (a fixed path, so that RUSTFLAGS, and
    # with them cargo's cache of this build, stay the same from run to run).
    profiles_dir = os.path.join(generate_dir, "profiles")
    instrumented = cargo_build(generate_dir, f"-Cprofile-generate={profiles_dir}")
    shutil.rmtree(profiles_dir, ignore_errors=True)
    with tempfile.TemporaryDirectory() as workdir:
        train(instrumented, mock_bin, workdir)
    profiles = glob.glob(os.path.join(profiles_dir, "*.profraw"))
    if not profiles:
        raise RuntimeError("the training run wrote no profile")
    merged = os.path.join(generate_dir, "merged.profdata")
    bench.sh(profdata_tool, "merge", "-o", merged, *profiles)
    # Named by content: cargo rebuilds when RUSTFLAGS change, not when a file they name does.
    with open(merged, "rb") as f:
        named = os.path.join(target, f"pgo-{hashlib.sha256(f.read()).hexdigest()[:16]}.profdata")
    for earlier in glob.glob(os.path.join(target, "pgo-*.profdata")):
        os.remove(earlier)
    os.replace(merged, named)
    # Functions the training never ran are compiled for size, not dropped: no warning each.
    return cargo_build(os.path.join(target, "pgo"),
                       f"-Cprofile-use={named} -Cllvm-args=-pgo-warn-missing-function=false")


def main():
    _, mock_bin = bench.build()
    print(build_pgo(mock_bin))


if __name__ == "__main__":
    main()
