//! UTC calendar arithmetic on milliseconds since the Unix epoch (proleptic Gregorian, Howard
//! Hinnant's days-from-civil algorithms): dates for logs, days for spend aggregates, and the
//! calendar boundaries budgets reset at.

use std::sync::atomic::{AtomicI64, Ordering};

pub const MS_PER_DAY: i64 = 86_400_000;

/// Wall-clock time in milliseconds since the Unix epoch: the system's, or one a test moves.
pub trait WallClock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64)
    }
}

/// A clock that stands still until told otherwise (budget resets in tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(ms))
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl WallClock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Days since 1970-01-01 to (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01; `None` for a month or day out of range.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// The first millisecond of a `YYYY-MM-DD` day.
pub fn day_start_ms(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    Some(days_from_civil(year, month, day)? * MS_PER_DAY)
}

/// `2026-11-21`: the UTC day `ms` falls on.
pub fn utc_day(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    format!("{year:04}-{month:02}-{day:02}")
}

/// `2026-11-21T09:30:00.000Z`.
pub fn iso8601(ms: i64) -> String {
    let ms_of_day = ms.rem_euclid(MS_PER_DAY);
    let seconds = ms_of_day / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        utc_day(ms),
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        ms_of_day % 1000
    )
}

/// Reads what [`iso8601`] writes, with or without the fraction (`2026-11-21T09:30:00Z`), or a
/// bare date (its first millisecond).
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let day = day_start_ms(date)?;
    let Some(time) = time else {
        return Some(day);
    };
    let time = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix("+00:00"))
        .unwrap_or(time);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut fields = clock.splitn(3, ':');
    let hours: i64 = fields.next()?.parse().ok()?;
    let minutes: i64 = fields.next()?.parse().ok()?;
    let seconds: i64 = fields.next().map_or(Some(0), |s| s.parse().ok())?;
    if hours > 23 || minutes > 59 || seconds > 60 {
        return None;
    }
    let millis: i64 = match fraction {
        "" => 0,
        digits if digits.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{digits:0<3}")[..3].parse().ok()?
        }
        _ => return None,
    };
    Some(day + ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

/// How often a budget starts again, as LiteLLM writes it (`45s`, `30m`, `1h`, `1d`, `7d`,
/// `30d`, `1mo`), and the calendar periods that means, all in UTC: `7d` (or `1w`) is a week
/// from Monday 00:00, `30d` and `Nmo` are calendar months from the 1st, other lengths are
/// counted from the Unix epoch — so `1d` ends at midnight and `1h` on the hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    Every { ms: i64 },
    Week,
    Months(u32),
}

impl BudgetPeriod {
    pub fn parse(text: &str) -> Option<BudgetPeriod> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (count, unit) = text.split_at(split);
        let count: i64 = count.parse().ok().filter(|n| *n > 0)?;
        let unit_ms = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" if count == 7 => return Some(BudgetPeriod::Week),
            "d" if count == 30 => return Some(BudgetPeriod::Months(1)),
            "d" => MS_PER_DAY,
            "w" if count == 1 => return Some(BudgetPeriod::Week),
            "w" => 7 * MS_PER_DAY,
            "mo" => return u32::try_from(count).ok().map(BudgetPeriod::Months),
            _ => return None,
        };
        Some(BudgetPeriod::Every {
            ms: count.checked_mul(unit_ms)?,
        })
    }

    /// The period `now_ms` falls in: its first millisecond and the first of the next.
    pub fn current(&self, now_ms: i64) -> (i64, i64) {
        match *self {
            BudgetPeriod::Every { ms } => {
                let start = now_ms.div_euclid(ms) * ms;
                (start, start + ms)
            }
            BudgetPeriod::Week => {
                let days = now_ms.div_euclid(MS_PER_DAY);
                // 1970-01-01 was a Thursday: Monday is three days on.
                let monday = days - (days + 3).rem_euclid(7);
                (monday * MS_PER_DAY, (monday + 7) * MS_PER_DAY)
            }
            BudgetPeriod::Months(months) => {
                let (year, month, _) = civil_from_days(now_ms.div_euclid(MS_PER_DAY));
                let index = year * 12 + i64::from(month) - 1;
                let first = index - index.rem_euclid(i64::from(months));
                let start_of = |index: i64| {
                    days_from_civil(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
                        .expect("the 1st of a month is a date")
                        * MS_PER_DAY
                };
                (start_of(first), start_of(first + i64::from(months)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_iso8601(text).unwrap()
    }

    #[test]
    fn budget_periods_follow_the_calendar() {
        let now = at("2026-11-21T10:10:45Z"); // a Saturday
        let day = BudgetPeriod::parse("1d").unwrap();
        assert_eq!(day.current(now), (at("2026-11-21"), at("2026-11-22")));
        let week = BudgetPeriod::parse("7d").unwrap();
        assert_eq!(week.current(now), (at("2026-11-16"), at("2026-11-23")));
        assert_eq!(
            week.current(at("2026-11-23")).0,
            at("2026-11-23"),
            "Monday starts one"
        );
        for month in ["30d", "1mo"] {
            let period = BudgetPeriod::parse(month).unwrap();
            assert_eq!(period.current(now), (at("2026-11-01"), at("2026-12-01")));
        }
        let december = BudgetPeriod::parse("1mo")
            .unwrap()
            .current(at("2026-12-31T23:59:59Z"));
        assert_eq!(december, (at("2026-12-01"), at("2027-01-01")));
        let hour = BudgetPeriod::parse("1h").unwrap();
        assert_eq!(
            hour.current(now),
            (at("2026-11-21T10:00:00Z"), at("2026-11-21T11:00:00Z"))
        );
        let quarter = BudgetPeriod::parse("3mo").unwrap();
        assert_eq!(quarter.current(now), (at("2026-10-01"), at("2027-01-01")));
    }

    #[test]
    fn budget_periods_that_mean_nothing_are_refused() {
        for text in ["", "d", "0d", "-1d", "5y", "1.5d", "abc"] {
            assert_eq!(BudgetPeriod::parse(text), None, "{text}");
        }
    }

    #[test]
    fn calendar_dates_from_day_numbers() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_778), (2026, 11, 21));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for days in [-1, 0, 19_782, 20_778, 100_000] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), Some(days));
        }
    }

    #[test]
    fn times_are_iso_8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_255_845_123), "2026-11-21T10:10:45.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for ms in [0, 951_782_400_000, 1_795_219_200_000] {
            assert_eq!(day_start_ms(&iso8601(ms)[..10]), Some(ms));
        }
        assert_eq!(day_start_ms("2026-13-01"), None);
        assert_eq!(day_start_ms("yesterday"), None);
    }

    #[test]
    fn iso_8601_reads_back() {
        for ms in [0, 1_795_255_845_123, 951_782_400_000] {
            assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms));
        }
        assert_eq!(
            parse_iso8601("2026-11-21T10:10:45Z"),
            Some(1_795_255_845_000)
        );
        assert_eq!(parse_iso8601("2026-11-21"), Some(1_795_219_200_000));
        assert_eq!(parse_iso8601("2026-11-21T25:00:00Z"), None);
    }
}
