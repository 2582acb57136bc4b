"""The official OpenAI Python SDK's Responses API (`client.responses`), unchanged, against the
built tollgate binary: bridged onto chat for an Anthropic provider and a chat-only
OpenAI-compatible server, relayed natively to an OpenAI deployment; streams, a function call
round trip through `previous_response_id`, retrieve and delete."""

import json
import unittest

import openai

from harness import MASTER_KEY, Gateway, Mock

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
BRIDGED = ("bridged-claude", "bridged-chat")


class ResponsesSdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.anthropic_mock = Mock("anthropic")
        cls.openai_mock = Mock("openai")
        cls.gateway = Gateway([
            ("bridged-claude", "anthropic/claude-sonnet-4-5", cls.anthropic_mock),
            ("bridged-chat", "hosted_vllm/qwen3", cls.openai_mock),
            ("native", "openai/gpt-4.1", cls.openai_mock, {"responses_api": True}),
        ])
        cls.client = openai.OpenAI(api_key=MASTER_KEY, base_url=cls.gateway.url + "/v1", max_retries=0)

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()
        cls.anthropic_mock.stop()
        cls.openai_mock.stop()

    def test_create_and_continue(self):
        for model in BRIDGED + ("native",):
            with self.subTest(model=model):
                first = self.client.responses.create(model=model, instructions="be brief", input="hello responses")
                self.assertEqual(first.status, "completed")
                self.assertEqual(first.output_text, "hello responses")
                self.assertGreater(first.usage.total_tokens, 0)

                second = self.client.responses.create(model=model, previous_response_id=first.id, input="and more")
                self.assertEqual(second.previous_response_id, first.id)
                self.assertEqual(second.output_text, "and more")

                fetched = self.client.responses.retrieve(second.id)
                self.assertEqual(fetched.id, second.id)
                self.assertEqual(fetched.output_text, "and more")
                self.client.responses.delete(second.id)
                with self.assertRaises(openai.NotFoundError):
                    self.client.responses.retrieve(second.id)

    def test_stream(self):
        for model in BRIDGED + ("native",):
            with self.subTest(model=model):
                events = list(self.client.responses.create(model=model, input="a streamed response", stream=True))
                kinds = [event.type for event in events]
                self.assertEqual(kinds[0], "response.created")
                self.assertEqual(kinds[-1], "response.completed")
                text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
                self.assertEqual(text, "a streamed response")
                completed = events[-1].response
                self.assertEqual(completed.output_text, "a streamed response")
                self.assertGreater(completed.usage.output_tokens, 0)
                numbers = [event.sequence_number for event in events]
                self.assertEqual(numbers, sorted(numbers))

    def test_function_call_round_trip(self):
        for model in BRIDGED:
            with self.subTest(model=model):
                first = self.client.responses.create(model=model, tools=[WEATHER_TOOL], input="Oslo")
                calls = [item for item in first.output if item.type == "function_call"]
                self.assertEqual(len(calls), 1, first.output)
                self.assertEqual(calls[0].name, "get_weather")
                self.assertEqual(json.loads(calls[0].arguments), {"echo": "Oslo"})

                answer = self.client.responses.create(
                    model=model, tools=[WEATHER_TOOL], previous_response_id=first.id,
                    input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "-3C, snow"}],
                )
                self.assertEqual(answer.output_text, "done")

    def test_streamed_function_call(self):
        for model in BRIDGED:
            with self.subTest(model=model):
                with self.client.responses.stream(model=model, tools=[WEATHER_TOOL], input="Bergen") as stream:
                    deltas = "".join(
                        event.delta for event in stream if event.type == "response.function_call_arguments.delta"
                    )
                    final = stream.get_final_response()
                self.assertEqual(json.loads(deltas), {"echo": "Bergen"})
                call = next(item for item in final.output if item.type == "function_call")
                self.assertEqual(json.loads(call.arguments), {"echo": "Bergen"})


if __name__ == "__main__":
    unittest.main()
