//! What a request consumed, in the units providers bill.

/// Token counts in one shape for every provider. `input` counts every prompt token, cached
/// ones included (OpenAI's `prompt_tokens`); `output` counts every generated token,
/// reasoning included (OpenAI's `completion_tokens`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    /// Prompt tokens read from the provider's cache.
    pub cache_read: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: u64,
    /// Of `cache_write`, those written for an hour rather than five minutes (Anthropic).
    pub cache_write_1h: u64,
    /// Output tokens spent on reasoning.
    pub reasoning: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.input + self.output
    }
}
