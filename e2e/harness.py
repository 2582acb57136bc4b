"""Starts the built binaries for the SDK suites: mock providers and a tollgate gateway.

TOLLGATE_BIN and MOCK_PROVIDER_BIN point at the built binaries (scripts/test sets them).
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

MASTER_KEY = "sk-e2e-master"
PROVIDER_KEY = "sk-e2e-provider-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mock:
    """A mock provider process speaking `wire_format` (openai, anthropic, gemini, vertex,
    bedrock or cohere). `litellm_params` is what a deployment needs to reach it: its address
    and, for providers whose mocks check them, the credentials they accept."""

    def __init__(self, wire_format="openai"):
        self.process = subprocess.Popen(
            [os.environ["MOCK_PROVIDER_BIN"], "--format", wire_format],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.process.kill()
            raise RuntimeError(f"mock provider did not start: {line!r}")
        self.address = line.removeprefix("listening on ")
        params = self.process.stdout.readline().strip()
        self.litellm_params = json.loads(params.removeprefix("litellm_params "))

    @property
    def root(self):
        return f"http://{self.address}"

    def stop(self):
        self.process.kill()
        self.process.wait()


class Gateway:
    """A tollgate process serving `models`: (model_name, litellm model, target[, extra params])
    where the target is an api_base (the provider key is E2E_PROVIDER_KEY) or a Mock;
    `router_settings` (a dict) is written as is."""

    def __init__(self, models, router_settings=None):
        self.workdir = tempfile.TemporaryDirectory()
        config_path = os.path.join(self.workdir.name, "config.yaml")
        with open(config_path, "w") as config:
            config.write("model_list:\n")
            for name, model, target, *extra in models:
                if isinstance(target, Mock):
                    params = dict(target.litellm_params)
                    if not params.keys() & {"api_key", "aws_access_key_id", "vertex_credentials"}:
                        params["api_key"] = "os.environ/E2E_PROVIDER_KEY"
                else:
                    params = {"api_base": target, "api_key": "os.environ/E2E_PROVIDER_KEY"}
                for more in extra:
                    params.update(more)
                config.write(f"  - model_name: {name}\n    litellm_params:\n      model: {model}\n")
                for key, value in params.items():
                    # JSON scalars are YAML too, so values with any characters stay intact.
                    config.write(f"      {key}: {json.dumps(value)}\n")
            config.write(f"general_settings:\n  master_key: {MASTER_KEY}\n")
            if router_settings:
                config.write(f"router_settings: {json.dumps(router_settings)}\n")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = os.path.join(self.workdir.name, "tollgate.log")
        self.log = open(self.log_path, "w")
        env = dict(os.environ, E2E_PROVIDER_KEY=PROVIDER_KEY)
        self.process = subprocess.Popen(
            [os.environ["TOLLGATE_BIN"], "serve", "--config", config_path,
             "--host", "127.0.0.1", "--port", str(port), "--log-format", "json"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._wait_ready()

    def _wait_ready(self, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tollgate exited early:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health/readiness", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("tollgate did not become ready")

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as log:
            return log.read()

    def stop(self):
        """SIGTERM; checks the gateway exits 0 and never logged the provider key."""
        self.process.terminate()
        exit_code = self.process.wait(timeout=30)
        self.log.close()
        text = self.log_text()
        self.workdir.cleanup()
        if exit_code != 0:
            raise AssertionError(f"tollgate exited with {exit_code} on SIGTERM:\n{text}")
        if PROVIDER_KEY in text:
            raise AssertionError("the provider key appeared in the gateway's log")
