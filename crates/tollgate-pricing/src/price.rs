//! One model's price, and the cost of a request at that price.

use crate::money::{Rate, Usd};
use crate::usage::TokenUsage;

/// What a model is priced for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum PriceMode {
    #[default]
    Chat,
    Embedding,
}

/// A model's price: its rates, a long-context tier, and the limits that bound a request's
/// worst-case cost.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModelPrice {
    pub mode: PriceMode,
    pub rates: Rates,
    /// Rates for every token of a request whose prompt is longer than the tier's threshold
    /// (Gemini 2.5 Pro and Claude above 200k tokens).
    pub long_context: Option<Tier>,
    /// Time-priced deployments (hosted endpoints billed while they work, LiteLLM's
    /// `input_cost_per_second` / `output_cost_per_second`): the side priced by the second
    /// costs the request's duration at that rate instead of its tokens.
    pub per_second: PerSecond,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
}

/// Dollars per second of a request's duration, for its prompt side and its output side.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PerSecond {
    pub input: Option<Rate>,
    pub output: Option<Rate>,
}

impl PerSecond {
    /// `token_picos` (prompt, output) with each side priced by the second replaced by
    /// `duration_ms` at that rate.
    fn apply(&self, (prompt, output): (u128, u128), duration_ms: u64) -> u128 {
        let timed = |rate: Rate| rate.times(duration_ms) / 1_000;
        self.input.map_or(prompt, timed) + self.output.map_or(output, timed)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tier {
    pub above_input_tokens: u64,
    pub rates: Rates,
}

/// Per-token rates. A missing cache or reasoning rate means those tokens cost what plain
/// input (or output) tokens do.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub input: Rate,
    pub output: Rate,
    pub cache_read: Option<Rate>,
    /// Five-minute cache writes, or the only cache-write price a provider has.
    pub cache_write: Option<Rate>,
    pub cache_write_1h: Option<Rate>,
    pub reasoning: Option<Rate>,
}

impl Rates {
    fn cache_write_1h(&self) -> Rate {
        self.cache_write_1h
            .or(self.cache_write)
            .unwrap_or(self.input)
    }

    /// The dearest rate a prompt token can be billed at (a cache write can cost more than
    /// plain input).
    fn dearest_input(&self) -> Rate {
        [self.cache_write, self.cache_write_1h]
            .into_iter()
            .flatten()
            .fold(self.input, Rate::max)
    }

    fn dearest_output(&self) -> Rate {
        self.reasoning.map_or(self.output, |r| r.max(self.output))
    }
}

impl ModelPrice {
    /// The rates that apply to a request with `input_tokens` of prompt.
    pub fn rates_for(&self, input_tokens: u64) -> &Rates {
        match &self.long_context {
            Some(tier) if input_tokens > tier.above_input_tokens => &tier.rates,
            _ => &self.rates,
        }
    }

    /// What a request that consumed `usage` over `duration_ms` costs, rounded once to the
    /// nano-dollar.
    pub fn cost(&self, usage: &TokenUsage, duration_ms: u64) -> Usd {
        let rates = self.rates_for(usage.input);
        // Providers' counts are trusted but not beyond what they add up to.
        let cache_read = usage.cache_read.min(usage.input);
        let cache_write = usage.cache_write.min(usage.input - cache_read);
        let cache_write_1h = usage.cache_write_1h.min(cache_write);
        let plain_input = usage.input - cache_read - cache_write;
        let reasoning = usage.reasoning.min(usage.output);
        let prompt = rates.input.times(plain_input)
            + rates.cache_read.unwrap_or(rates.input).times(cache_read)
            + rates
                .cache_write
                .unwrap_or(rates.input)
                .times(cache_write - cache_write_1h)
            + rates.cache_write_1h().times(cache_write_1h);
        let output = rates.output.times(usage.output - reasoning)
            + rates.reasoning.unwrap_or(rates.output).times(reasoning);
        Usd::from_picos(self.per_second.apply((prompt, output), duration_ms))
    }

    /// The most a request can cost: `prompt_tokens` all billed at the dearest prompt rate,
    /// and `max_output_tokens` at the dearest output rate (long-context rates when the prompt
    /// could reach them); a side priced by the second, for as long as the request may last
    /// (`longest_ms`, its timeout).
    pub fn worst_case(&self, prompt_tokens: u64, max_output_tokens: u64, longest_ms: u64) -> Usd {
        let rates = self.rates_for(prompt_tokens);
        let prompt = rates.dearest_input().times(prompt_tokens);
        let output = rates.dearest_output().times(max_output_tokens);
        Usd::from_picos(self.per_second.apply((prompt, output), longest_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_million(value: f64) -> Rate {
        Rate::per_million_f64(value).unwrap()
    }

    /// Claude Sonnet 4.5's published prices, with its long-context tier.
    fn sonnet() -> ModelPrice {
        ModelPrice {
            rates: Rates {
                input: per_million(3.0),
                output: per_million(15.0),
                cache_read: Some(per_million(0.3)),
                cache_write: Some(per_million(3.75)),
                cache_write_1h: Some(per_million(6.0)),
                reasoning: None,
            },
            long_context: Some(Tier {
                above_input_tokens: 200_000,
                rates: Rates {
                    input: per_million(6.0),
                    output: per_million(22.5),
                    cache_read: Some(per_million(0.6)),
                    cache_write: Some(per_million(7.5)),
                    cache_write_1h: Some(per_million(12.0)),
                    reasoning: None,
                },
            }),
            ..ModelPrice::default()
        }
    }

    fn usage(input: u64, output: u64) -> TokenUsage {
        TokenUsage {
            input,
            output,
            ..TokenUsage::default()
        }
    }

    #[test]
    fn input_and_output_tokens() {
        // 1,000 × $3/M + 500 × $15/M = $0.003 + $0.0075
        assert_eq!(sonnet().cost(&usage(1_000, 500), 0).to_string(), "0.0105");
    }

    #[test]
    fn cached_reads_and_both_cache_write_durations() {
        let usage = TokenUsage {
            input: 10_000,
            output: 0,
            cache_read: 4_000,
            cache_write: 3_000,
            cache_write_1h: 1_000,
            reasoning: 0,
        };
        // 3,000 plain × 3 + 4,000 × 0.3 + 2,000 × 3.75 + 1,000 × 6 (per million)
        assert_eq!(sonnet().cost(&usage, 0).to_string(), "0.0237");
    }

    #[test]
    fn missing_cache_rates_bill_as_plain_input() {
        let mut price = sonnet();
        price.rates.cache_read = None;
        price.rates.cache_write = None;
        price.rates.cache_write_1h = None;
        let cached = TokenUsage {
            cache_read: 600,
            cache_write: 400,
            ..usage(1_000, 0)
        };
        assert_eq!(price.cost(&cached, 0), price.cost(&usage(1_000, 0), 0));
    }

    #[test]
    fn reasoning_tokens_at_their_own_rate_when_priced() {
        let mut price = sonnet();
        let thinking = TokenUsage {
            reasoning: 400,
            ..usage(0, 1_000)
        };
        assert_eq!(price.cost(&thinking, 0), price.cost(&usage(0, 1_000), 0));
        price.rates.reasoning = Some(per_million(10.0));
        // 600 × 15 + 400 × 10 per million
        assert_eq!(price.cost(&thinking, 0).to_string(), "0.013");
    }

    #[test]
    fn long_prompts_bill_every_token_at_the_long_context_rates() {
        let at_threshold = sonnet().cost(&usage(200_000, 1_000), 0);
        assert_eq!(at_threshold.to_string(), "0.615");
        let above = sonnet().cost(&usage(200_001, 1_000), 0);
        // 200,001 × 6 + 1,000 × 22.5 per million
        assert_eq!(above.to_string(), "1.222506");
    }

    #[test]
    fn counts_beyond_the_prompt_are_clamped() {
        let odd = TokenUsage {
            cache_read: 5_000,
            cache_write: 5_000,
            ..usage(1_000, 0)
        };
        assert_eq!(sonnet().cost(&odd, 0).to_string(), "0.0003");
    }

    #[test]
    fn worst_case_takes_the_dearest_rates() {
        // 1,000 prompt tokens at the 1-hour write rate, 2,000 output at $15/M.
        assert_eq!(sonnet().worst_case(1_000, 2_000, 0).to_string(), "0.036");
        let mut price = sonnet();
        price.rates.reasoning = Some(per_million(20.0));
        assert_eq!(price.worst_case(0, 1_000, 0).to_string(), "0.02");
        assert_eq!(
            sonnet().worst_case(300_000, 0, 0).to_string(),
            "3.6",
            "long-context tier applies"
        );
    }

    #[test]
    fn sub_nano_costs_round_half_up_once_per_request() {
        let price = ModelPrice {
            rates: Rates {
                input: Rate::from_picos(400),
                output: Rate::from_picos(100),
                ..Rates::default()
            },
            ..ModelPrice::default()
        };
        // 400 + 100 picos = half a nano-dollar: rounds up; each part alone would round down.
        assert_eq!(price.cost(&usage(1, 1), 0), Usd::from_nanos(1));
    }

    #[test]
    fn a_side_priced_by_the_second_costs_the_duration_not_its_tokens() {
        let mut price = sonnet();
        // $0.000583 a second of output, as a hosted endpoint bills its instance.
        price.per_second.output = Rate::per_unit("0.000583");
        // 1,000 × $3/M for the prompt; 2.5 s × $0.000583 for the output, whatever its tokens.
        assert_eq!(
            price.cost(&usage(1_000, 500), 2_500).to_string(),
            "0.0044575"
        );
        assert_eq!(
            price.cost(&usage(1_000, 50_000), 2_500),
            price.cost(&usage(1_000, 500), 2_500)
        );
        price.per_second.input = Rate::per_unit("0.0001");
        // Both sides by the second: 2.5 s × ($0.0001 + $0.000583).
        assert_eq!(price.cost(&usage(9_999, 1), 2_500).to_string(), "0.0017075");
        // The worst case runs to the timeout.
        assert_eq!(price.worst_case(1_000, 0, 600_000).to_string(), "0.4098");
    }
}
