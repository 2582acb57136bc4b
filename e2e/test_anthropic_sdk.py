"""The official Anthropic Python SDK, unchanged, against the built tollgate binary's
`/v1/messages`: routed to an Anthropic provider (passthrough) and to an OpenAI-format provider
(translation), streaming and not, with tools."""

import unittest

import anthropic

from harness import MASTER_KEY, Gateway, Mock

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class AnthropicSdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.anthropic_mock = Mock("anthropic")
        cls.openai_mock = Mock("openai")
        cls.gateway = Gateway([
            ("claude-native", "anthropic/claude-sonnet-4-5", cls.anthropic_mock.root),
            ("claude-on-openai", "openai/gpt-4o", f"{cls.openai_mock.root}/v1"),
        ])
        cls.client = anthropic.Anthropic(api_key=MASTER_KEY, base_url=cls.gateway.url, max_retries=0)

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()
        cls.anthropic_mock.stop()
        cls.openai_mock.stop()

    def test_messages_on_both_kinds_of_provider(self):
        for model in ("claude-native", "claude-on-openai"):
            with self.subTest(model=model):
                message = self.client.messages.create(
                    model=model, max_tokens=64, system="be brief",
                    messages=[{"role": "user", "content": "hello from anthropic"}],
                )
                self.assertEqual(message.role, "assistant")
                self.assertEqual(message.content[0].type, "text")
                self.assertEqual(message.content[0].text, "hello from anthropic")
                self.assertEqual(message.stop_reason, "end_turn")
                self.assertGreater(message.usage.output_tokens, 0)

    def test_streaming_on_both_kinds_of_provider(self):
        for model in ("claude-native", "claude-on-openai"):
            with self.subTest(model=model):
                with self.client.messages.stream(
                    model=model, max_tokens=64,
                    messages=[{"role": "user", "content": "stream four words please"}],
                ) as stream:
                    text = "".join(stream.text_stream)
                    final = stream.get_final_message()
                self.assertEqual(text, "stream four words please")
                self.assertEqual(final.stop_reason, "end_turn")
                self.assertEqual(final.usage.output_tokens, 4)

    def test_tool_use_on_both_kinds_of_provider(self):
        for model in ("claude-native", "claude-on-openai"):
            with self.subTest(model=model):
                message = self.client.messages.create(
                    model=model, max_tokens=64, tools=[WEATHER_TOOL], tool_choice={"type": "any"},
                    messages=[{"role": "user", "content": "Lisbon"}],
                )
                self.assertEqual(message.stop_reason, "tool_use")
                call = next(block for block in message.content if block.type == "tool_use")
                self.assertEqual(call.name, "get_weather")
                self.assertEqual(call.input, {"echo": "Lisbon"})

                follow_up = self.client.messages.create(
                    model=model, max_tokens=64, tools=[WEATHER_TOOL],
                    messages=[
                        {"role": "user", "content": "Lisbon"},
                        {"role": "assistant", "content": [block.model_dump() for block in message.content]},
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22C"}]},
                    ],
                )
                self.assertEqual(follow_up.content[-1].type, "text")

    def test_streamed_tool_use(self):
        for model in ("claude-native", "claude-on-openai"):
            with self.subTest(model=model):
                with self.client.messages.stream(
                    model=model, max_tokens=64, tools=[WEATHER_TOOL],
                    messages=[{"role": "user", "content": "Porto"}],
                ) as stream:
                    final = stream.get_final_message()
                call = next(block for block in final.content if block.type == "tool_use")
                self.assertEqual(call.input, {"echo": "Porto"})
                self.assertEqual(final.stop_reason, "tool_use")

    def test_errors_are_the_sdk_error_classes(self):
        bad_key = anthropic.Anthropic(api_key="sk-wrong", base_url=self.gateway.url, max_retries=0)
        with self.assertRaises(anthropic.AuthenticationError):
            bad_key.messages.create(model="claude-native", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        with self.assertRaises(anthropic.NotFoundError):
            self.client.messages.create(model="missing", max_tokens=5, messages=[{"role": "user", "content": "hi"}])

    def test_count_tokens(self):
        count = self.client.messages.count_tokens(
            model="claude-native", messages=[{"role": "user", "content": "count these four words"}],
        )
        self.assertEqual(count.input_tokens, 4)


if __name__ == "__main__":
    unittest.main()
