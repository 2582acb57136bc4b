"""The official OpenAI Python SDK, unchanged, against the built tollgate binary.

The gateway runs as a process in front of the mock OpenAI provider (also a process). Started
by scripts/test with TOLLGATE_BIN and MOCK_PROVIDER_BIN pointing at the built binaries.
"""

import json
import unittest
import urllib.request

import openai

from harness import MASTER_KEY, Gateway, Mock


class OpenAiSdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock("openai")
        base = f"{cls.mock.root}/v1"
        cls.gateway = Gateway([
            ("gpt-4o", "openai/gpt-4o", base),
            ("text-embedding-3-small", "openai/text-embedding-3-small", base),
            ("gpt-3.5-turbo-instruct", "openai/gpt-3.5-turbo-instruct", base),
            ("rate-limited", "openai/error-429", base),
            ("broken", "openai/error-500", base),
        ], router_settings={"num_retries": 0})  # each error test sees the provider's answer at once
        cls.gateway_url = cls.gateway.url
        # No SDK retries: each test sees the gateway's own answer.
        cls.client = openai.OpenAI(api_key=MASTER_KEY, base_url=cls.gateway_url + "/v1", max_retries=0)

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()
        cls.mock.stop()

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

    def test_a_virtual_key_is_limited_to_its_models_and_rate(self):
        request = urllib.request.Request(
            self.gateway_url + "/key/generate",
            data=json.dumps({"models": ["gpt-4o"], "rpm_limit": 2}).encode(),
            headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            key = json.load(response)["key"]
        client = openai.OpenAI(api_key=key, base_url=self.gateway_url + "/v1", max_retries=0)
        hi = [{"role": "user", "content": "hi"}]
        self.assertEqual(client.chat.completions.create(model="gpt-4o", messages=hi).choices[0].message.content, "hi")
        with self.assertRaises(openai.PermissionDeniedError) as caught:
            client.chat.completions.create(model="gpt-3.5-turbo-instruct", messages=hi)
        self.assertEqual(caught.exception.status_code, 403)
        self.assertIn("gpt-4o", caught.exception.message)
        self.assertEqual([model.id for model in client.models.list()], ["gpt-4o"])
        client.chat.completions.create(model="gpt-4o", messages=hi)
        with self.assertRaises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o", messages=hi)
        headers = caught.exception.response.headers
        self.assertEqual(headers.get("x-ratelimit-limit-requests"), "2")
        self.assertEqual(headers.get("x-ratelimit-remaining-requests"), "0")
        self.assertGreaterEqual(int(headers.get("retry-after")), 1)

    def test_bad_request_names_the_parameter(self):
        with self.assertRaises(openai.BadRequestError) as caught:
            self.client.chat.completions.create(model="gpt-4o", messages="not a list")
        self.assertEqual(caught.exception.param, "messages")


if __name__ == "__main__":
    unittest.main()
