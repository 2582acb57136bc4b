"""The official OpenAI Python SDK against models served by providers with other wire formats
(Anthropic, Gemini, Vertex AI, Bedrock Converse, Cohere), through the built tollgate binary:
chat, streams and tools are translated both ways."""

import json
import unittest

import openai

from harness import MASTER_KEY, Gateway, Mock

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


class OpenAiSdkOnOtherProvidersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mocks = {name: Mock(name) for name in ("anthropic", "gemini", "vertex", "bedrock", "cohere")}
        deployments = {
            "anthropic": "anthropic/claude-sonnet-4-5",
            "gemini": "gemini/gemini-2.5-flash",
            "vertex": "vertex_ai/gemini-2.5-flash",
            "bedrock": "bedrock/converse/us.amazon.nova-pro-v1:0",
            "cohere": "cohere/command-a-03-2025",
        }
        cls.models = {name: f"model-on-{name}" for name in deployments}
        cls.gateway = Gateway([
            (cls.models[name], model, cls.mocks[name]) for name, model in deployments.items()
        ])
        cls.client = openai.OpenAI(api_key=MASTER_KEY, base_url=cls.gateway.url + "/v1", max_retries=0)

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()
        for mock in cls.mocks.values():
            mock.stop()

    def test_chat(self):
        for provider, model in self.models.items():
            with self.subTest(provider=provider):
                reply = self.client.chat.completions.create(
                    model=model,
                    messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello translated"}],
                )
                self.assertEqual(reply.choices[0].message.content, "hello translated")
                self.assertEqual(reply.choices[0].finish_reason, "stop")
                self.assertGreater(reply.usage.total_tokens, 0)

    def test_stream(self):
        for provider, model in self.models.items():
            with self.subTest(provider=provider):
                stream = self.client.chat.completions.create(
                    model=model, stream=True, stream_options={"include_usage": True},
                    messages=[{"role": "user", "content": "a streamed answer"}],
                )
                chunks = list(stream)
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                self.assertEqual(text, "a streamed answer")
                self.assertEqual(chunks[-1].usage.completion_tokens, 3)

    def test_tools(self):
        for provider, model in self.models.items():
            with self.subTest(provider=provider):
                reply = self.client.chat.completions.create(
                    model=model, tools=TOOLS, messages=[{"role": "user", "content": "Madrid"}],
                )
                call = reply.choices[0].message.tool_calls[0]
                self.assertEqual(call.function.name, "get_weather")
                self.assertEqual(json.loads(call.function.arguments), {"echo": "Madrid"})

                stream = self.client.chat.completions.create(
                    model=model, tools=TOOLS, stream=True, messages=[{"role": "user", "content": "Madrid"}],
                )
                arguments = ""
                for chunk in stream:
                    for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                        arguments += delta.function.arguments or ""
                self.assertEqual(json.loads(arguments), {"echo": "Madrid"})


if __name__ == "__main__":
    unittest.main()
