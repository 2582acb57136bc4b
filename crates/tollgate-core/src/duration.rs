//! Human durations as config writes them: `250ms`, `30s`, `5m`, `1h`, `30d`, or a bare number
//! of seconds (LiteLLM's `timeout: 600`).

use std::time::Duration;

/// Parses `"30s"`, `"1.5h"`, `"250ms"`, `"600"`. Returns a message naming what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration (expected e.g. `30s`, `5m`, `1h`, `30d`)")
    })?;
    let seconds_per_unit = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        other => {
            return Err(format!(
                "`{text}` has an unknown unit `{other}` (use ms, s, m, h, d or w)"
            ));
        }
    };
    seconds(value * seconds_per_unit).ok_or_else(|| format!("`{text}` is out of range"))
}

/// A non-negative, finite number of seconds as a `Duration`.
pub fn seconds(value: f64) -> Option<Duration> {
    (0.0..1e12)
        .contains(&value)
        .then(|| Duration::from_secs_f64(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_bare_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(
            parse_duration("5 fortnights")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("-5s").is_err());
    }
}
