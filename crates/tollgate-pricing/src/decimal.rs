//! Exact parsing of decimal text (`12.5`, `0.000002`, `2.5e-06`) into scaled integers.

/// `text` × 10^`scale`, rounded half up; `None` for anything but a non-negative decimal
/// number (an exponent allowed) or a result beyond `u128`.
pub(crate) fn parse_scaled(text: &str, scale: u32) -> Option<u128> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // All the digits as one integer, and where the decimal point sits relative to `scale`.
    let digits = whole.bytes().chain(fraction.bytes());
    let shift = i64::from(scale) + i64::from(exponent) - fraction.len() as i64;
    let mut value: u128 = 0;
    let mut dropped: Vec<u8> = Vec::new();
    let kept = digits.clone().count() as i64 + shift.min(0);
    for (index, digit) in digits.enumerate() {
        if (index as i64) < kept {
            value = value
                .checked_mul(10)?
                .checked_add(u128::from(digit - b'0'))?;
        } else {
            dropped.push(digit);
        }
    }
    if shift > 0 {
        value = value.checked_mul(10u128.checked_pow(u32::try_from(shift).ok()?)?)?;
    }
    // Digits below the scale: round half up on the first one dropped. (When the point sits
    // further left than every digit, the first dropped digit is an implied zero.)
    let first_dropped = if kept < 0 {
        0
    } else {
        dropped.first().copied().map_or(0, |d| d - b'0')
    };
    if first_dropped >= 5 {
        value = value.checked_add(1)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::parse_scaled;

    #[test]
    fn decimals_scale_exactly() {
        assert_eq!(parse_scaled("12.5", 9), Some(12_500_000_000));
        assert_eq!(parse_scaled("0.000002", 12), Some(2_000_000));
        assert_eq!(parse_scaled("2.5e-06", 12), Some(2_500_000));
        assert_eq!(parse_scaled("2.5E+2", 0), Some(250));
        assert_eq!(parse_scaled("3", 6), Some(3_000_000));
        assert_eq!(parse_scaled(".5", 1), Some(5));
        assert_eq!(parse_scaled("7.", 1), Some(70));
    }

    #[test]
    fn digits_below_the_scale_round_half_up() {
        assert_eq!(parse_scaled("0.0000000015", 9), Some(2));
        assert_eq!(parse_scaled("0.0000000014999", 9), Some(1));
        assert_eq!(parse_scaled("1.4999999999999999e-07", 12), Some(150_000));
        assert_eq!(parse_scaled("4e-13", 12), Some(0));
        assert_eq!(parse_scaled("0.0000000000000009", 12), Some(0));
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "", "-1", "1.2.3", "abc", "1e", "e5", ".", "1,5", "NaN", "inf",
        ] {
            assert_eq!(parse_scaled(text, 9), None, "{text}");
        }
        assert_eq!(parse_scaled("1e40", 9), None);
    }
}
