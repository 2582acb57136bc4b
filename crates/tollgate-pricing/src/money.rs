//! US dollars exact to the nano-dollar, and prices per unit exact to the pico-dollar.

use std::fmt;

use crate::decimal::parse_scaled;

const NANOS_PER_DOLLAR: u64 = 1_000_000_000;
const PICOS_PER_NANO: u128 = 1_000;

/// An amount of US dollars: a cost, a spend total, a budget. Exact to 10⁻⁹ $, so a billion
/// requests can be summed with less than a cent of rounding in all.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(u64);

impl Usd {
    pub const ZERO: Usd = Usd(0);
    pub const MAX: Usd = Usd(u64::MAX);

    pub const fn from_nanos(nanos: u64) -> Usd {
        Usd(nanos)
    }

    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// Decimal dollars as written (`12.5`, `0.0001`, `1e-3`); `None` for negative or
    /// unreadable text.
    pub fn parse(text: &str) -> Option<Usd> {
        parse_scaled(text, 9)
            .and_then(|nanos| u64::try_from(nanos).ok())
            .map(Usd)
    }

    /// A JSON or YAML number, read through its shortest decimal form (so `0.1` is exactly a
    /// tenth of a dollar, not the binary fraction nearest to it).
    pub fn from_f64(value: f64) -> Option<Usd> {
        (value.is_finite() && value >= 0.0)
            .then(|| Usd::parse(&value.to_string()))
            .flatten()
    }

    /// Rounds a pico-dollar amount to the nearest nano-dollar (half up).
    pub(crate) fn from_picos(picos: u128) -> Usd {
        let nanos = (picos + PICOS_PER_NANO / 2) / PICOS_PER_NANO;
        Usd(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// For JSON fields that clients read as floats (LiteLLM's `spend`, `max_budget`).
    pub fn as_f64(self) -> f64 {
        // Whole dollars and the fraction apart, so amounts up to 2⁵³ nanos stay exact.
        (self.0 / NANOS_PER_DOLLAR) as f64 + (self.0 % NANOS_PER_DOLLAR) as f64 / 1e9
    }

    pub fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }

    pub fn saturating_mul(self, times: u64) -> Usd {
        Usd(self.0.saturating_mul(times))
    }

    pub fn checked_add(self, other: Usd) -> Option<Usd> {
        self.0.checked_add(other.0).map(Usd)
    }
}

/// Plain decimal dollars with no trailing zeros: `0.00012`, `3`, `12.5`.
impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / NANOS_PER_DOLLAR;
        let fraction = self.0 % NANOS_PER_DOLLAR;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:09}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// A price per unit (per token, per request…), exact to 10⁻¹² $ — finer than any provider
/// prices (a dollar per trillion tokens).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u64);

impl Rate {
    pub const ZERO: Rate = Rate(0);

    pub const fn from_picos(picos: u64) -> Rate {
        Rate(picos)
    }

    pub const fn picos(self) -> u64 {
        self.0
    }

    /// Dollars per unit as decimal text (LiteLLM's `input_cost_per_token: 2.5e-06`).
    pub fn per_unit(text: &str) -> Option<Rate> {
        parse_scaled(text, 12)
            .and_then(|picos| u64::try_from(picos).ok())
            .map(Rate)
    }

    /// Dollars per unit from a JSON or YAML number, through its shortest decimal form.
    pub fn per_unit_f64(value: f64) -> Option<Rate> {
        (value.is_finite() && value >= 0.0)
            .then(|| Rate::per_unit(&value.to_string()))
            .flatten()
    }

    /// Dollars per million units, as price pages write them (`2.50` per 1M tokens).
    pub fn per_million_f64(value: f64) -> Option<Rate> {
        (value.is_finite() && value >= 0.0)
            .then(|| parse_scaled(&value.to_string(), 6))
            .flatten()
            .and_then(|picos| u64::try_from(picos).ok())
            .map(Rate)
    }

    /// The price of `units`, in pico-dollars.
    pub(crate) fn times(self, units: u64) -> u128 {
        u128::from(self.0) * u128::from(units)
    }

    /// Dollars per unit, for JSON fields clients read as floats.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1e12
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_print_as_plain_decimals() {
        assert_eq!(Usd::parse("0.00012").unwrap().to_string(), "0.00012");
        assert_eq!(Usd::parse("3").unwrap().to_string(), "3");
        assert_eq!(Usd::parse("12.50").unwrap().to_string(), "12.5");
        assert_eq!(Usd::from_nanos(1).to_string(), "0.000000001");
        assert_eq!(Usd::ZERO.to_string(), "0");
    }

    #[test]
    fn floats_are_read_through_their_decimal_form() {
        assert_eq!(Usd::from_f64(0.1), Some(Usd::from_nanos(100_000_000)));
        assert_eq!(Usd::from_f64(-1.0), None);
        assert_eq!(Usd::from_f64(f64::NAN), None);
        assert_eq!(
            Rate::per_unit_f64(2.5e-6),
            Some(Rate::from_picos(2_500_000))
        );
        assert_eq!(
            Rate::per_million_f64(2.5),
            Some(Rate::from_picos(2_500_000))
        );
        assert_eq!(
            Rate::per_million_f64(0.0375),
            Some(Rate::from_picos(37_500))
        );
    }

    #[test]
    fn ten_thousand_small_costs_sum_exactly() {
        // 0.1 + 0.2 != 0.3 in floating point; here the cents come out right.
        let tenth = Usd::parse("0.1").unwrap();
        let fifth = Usd::parse("0.2").unwrap();
        assert_eq!(tenth.saturating_add(fifth), Usd::parse("0.3").unwrap());
        let per_request = Rate::per_million_f64(0.15).unwrap().times(333);
        let total = Usd::from_picos(per_request * 10_000);
        assert_eq!(total.to_string(), "0.4995");
    }

    #[test]
    fn picos_round_to_the_nearest_nano() {
        assert_eq!(Usd::from_picos(1_499), Usd::from_nanos(1));
        assert_eq!(Usd::from_picos(1_500), Usd::from_nanos(2));
        assert_eq!(Usd::from_nanos(1_234_567_891).as_f64(), 1.234567891);
    }
}
