"""The official OpenAI Python SDK, unchanged, against the built tollgate binary.

The gateway runs as a process in front of the mock OpenAI provider (also a process). Started
by scripts/test with TOLLGATE_BIN and MOCK_PROVIDER_BIN pointing at the built binaries.
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import openai

MASTER_KEY = "sk-e2e-master"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mock():
    process = subprocess.Popen(
        [os.environ["MOCK_PROVIDER_BIN"]],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"mock provider did not start: {line!r}")
    return process, line.removeprefix("listening on ")


def wait_ready(url, process, log_path, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            with open(log_path) as log:
                raise RuntimeError(f"tollgate exited early:\n{log.read()}")
        try:
            with urllib.request.urlopen(url + "/health/readiness", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("tollgate did not become ready")


class OpenAiSdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock, mock_address = start_mock()
        base = f"http://{mock_address}/v1"
        cls.workdir = tempfile.TemporaryDirectory()
        config_path = os.path.join(cls.workdir.name, "config.yaml")
        models = [
            ("gpt-4o", "gpt-4o"),
            ("text-embedding-3-small", "text-embedding-3-small"),
            ("gpt-3.5-turbo-instruct", "gpt-3.5-turbo-instruct"),
            ("rate-limited", "error-429"),
            ("broken", "error-500"),
        ]
        with open(config_path, "w") as config:
            config.write("model_list:\n")
            for name, upstream in models:
                config.write(
                    f"  - model_name: {name}\n"
                    f"    litellm_params:\n"
                    f"      model: openai/{upstream}\n"
                    f"      api_base: {base}\n"
                    f"      api_key: os.environ/E2E_PROVIDER_KEY\n"
                )
            config.write(f"general_settings:\n  master_key: {MASTER_KEY}\n")
        port = free_port()
        cls.gateway_url = f"http://127.0.0.1:{port}"
        cls.log_path = os.path.join(cls.workdir.name, "tollgate.log")
        cls.log = open(cls.log_path, "w")
        env = dict(os.environ, E2E_PROVIDER_KEY="sk-e2e-provider-secret")
        cls.gateway = subprocess.Popen(
            [os.environ["TOLLGATE_BIN"], "serve", "--config", config_path,
             "--host", "127.0.0.1", "--port", str(port), "--log-format", "json"],
            stdout=cls.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_ready(cls.gateway_url, cls.gateway, cls.log_path)
        # No SDK retries: each test sees the gateway's own answer.
        cls.client = openai.OpenAI(api_key=MASTER_KEY, base_url=cls.gateway_url + "/v1", max_retries=0)

    @classmethod
    def tearDownClass(cls):
        cls.gateway.terminate()
        exit_code = cls.gateway.wait(timeout=30)
        cls.mock.kill()
        cls.mock.wait()
        cls.log.close()
        with open(cls.log_path) as log:
            cls.log_text = log.read()
        cls.workdir.cleanup()
        if exit_code != 0:
            raise AssertionError(f"tollgate exited with {exit_code} on SIGTERM:\n{cls.log_text}")
        if "sk-e2e-provider-secret" in cls.log_text:
            raise AssertionError("the provider key appeared in the gateway's log")

    def test_chat_completion(self):
        reply = self.client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello from the sdk"}],
            temperature=0.2,
        )
        self.assertEqual(reply.choices[0].message.content, "hello from the sdk")
        self.assertEqual(reply.choices[0].finish_reason, "stop")
        self.assertEqual(reply.usage.completion_tokens, 4)

    def test_streaming_chat(self):
        stream = self.client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "stream these five words"}],
            stream=True,
        )
        chunks = list(stream)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
        self.assertEqual(text, "stream these five words")
        self.assertTrue(all(chunk.choices for chunk in chunks), "the injected usage chunk is hidden")
        self.assertEqual(chunks[-1].choices[0].finish_reason, "stop")

    def test_streaming_chat_with_usage_requested(self):
        stream = self.client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "count me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        self.assertEqual(chunks[-1].choices, [])
        self.assertEqual(chunks[-1].usage.completion_tokens, 2)

    def test_tool_calls_pass_through(self):
        tools = [{
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }]
        reply = self.client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Oslo"}], tools=tools, tool_choice="auto",
        )
        call = reply.choices[0].message.tool_calls[0]
        self.assertEqual(call.function.name, "get_weather")
        self.assertEqual(json.loads(call.function.arguments), {"echo": "Oslo"})

        stream = self.client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Oslo"}], tools=tools, stream=True,
        )
        arguments = ""
        for chunk in stream:
            for delta in chunk.choices[0].delta.tool_calls or []:
                arguments += delta.function.arguments or ""
        self.assertEqual(json.loads(arguments), {"echo": "Oslo"})

    def test_embeddings(self):
        # The SDK asks for base64 by default and decodes it itself.
        embedded = self.client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], dimensions=3)
        self.assertEqual(len(embedded.data), 2)
        self.assertEqual(embedded.data[0].embedding, [0.375, 0.5, -0.25])
        as_floats = self.client.embeddings.create(
            model="text-embedding-3-small", input="alpha", dimensions=3, encoding_format="float",
        )
        self.assertEqual(as_floats.data[0].embedding, [0.375, 0.5, -0.25])

    def test_completions(self):
        reply = self.client.completions.create(model="gpt-3.5-turbo-instruct", prompt="echo this prompt")
        self.assertEqual(reply.choices[0].text, "echo this prompt")

    def test_models(self):
        ids = [model.id for model in self.client.models.list()]
        self.assertIn("gpt-4o", ids)
        self.assertEqual(self.client.models.retrieve("gpt-4o").id, "gpt-4o")

    def test_wrong_key_is_an_authentication_error(self):
        client = openai.OpenAI(api_key="sk-wrong", base_url=self.gateway_url + "/v1", max_retries=0)
        with self.assertRaises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        self.assertEqual(caught.exception.status_code, 401)

    def test_unknown_model_is_not_found(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            self.client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
        self.assertIn("no-such-model", caught.exception.message)

    def test_upstream_429_is_a_rate_limit_error(self):
        with self.assertRaises(openai.RateLimitError) as caught:
            self.client.chat.completions.create(model="rate-limited", messages=[{"role": "user", "content": "hi"}])
        self.assertEqual(caught.exception.response.headers.get("retry-after"), "7")
        self.assertEqual(caught.exception.code, "rate_limit_exceeded")

    def test_upstream_500_is_an_internal_server_error(self):
        with self.assertRaises(openai.InternalServerError) as caught:
            self.client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "hi"}])
        self.assertEqual(caught.exception.status_code, 500)

    def test_bad_request_names_the_parameter(self):
        with self.assertRaises(openai.BadRequestError) as caught:
            self.client.chat.completions.create(model="gpt-4o", messages="not a list")
        self.assertEqual(caught.exception.param, "messages")


if __name__ == "__main__":
    unittest.main()
