"""The official OpenAI Python SDK against a model group whose only deployment is dead
(connection refused): the gateway falls back to another group, served by another provider
(Anthropic), and the SDK gets a normal answer, streamed and not."""

import unittest

import openai

from harness import MASTER_KEY, Gateway, Mock, free_port


class OpenAiSdkFallbackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.anthropic = Mock("anthropic")
        dead = f"http://127.0.0.1:{free_port()}/v1"
        cls.gateway = Gateway(
            [
                ("primary", "openai/gpt-4o", dead),
                ("backup", "anthropic/claude-sonnet-4-5", cls.anthropic),
            ],
            router_settings={"num_retries": 1, "fallbacks": [{"primary": ["backup"]}]},
        )
        cls.client = openai.OpenAI(api_key=MASTER_KEY, base_url=cls.gateway.url + "/v1", max_retries=0)

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()
        cls.anthropic.stop()

    def test_chat_falls_back_to_the_backup_group(self):
        raw = self.client.chat.completions.with_raw_response.create(
            model="primary",
            messages=[{"role": "user", "content": "Say hello"}],
        )
        self.assertEqual(raw.headers["x-tollgate-model-group"], "backup")
        self.assertEqual(raw.headers["x-litellm-attempted-fallbacks"], "1")
        self.assertEqual(raw.headers["x-tollgate-attempted-retries"], "1")
        completion = raw.parse()
        self.assertEqual(completion.choices[0].message.content, "Say hello")
        self.assertEqual(completion.choices[0].finish_reason, "stop")
        self.assertGreater(completion.usage.total_tokens, 0)

    def test_stream_falls_back_before_the_first_byte(self):
        stream = self.client.chat.completions.create(
            model="primary",
            messages=[{"role": "user", "content": "Stream hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = ""
        usage = None
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage:
                usage = chunk.usage
        self.assertEqual(text, "Stream hello")
        self.assertIsNotNone(usage)


if __name__ == "__main__":
    unittest.main()
