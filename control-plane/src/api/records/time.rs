//! Timestamps in query parameters: RFC 3339 or Unix milliseconds in, RFC 3339 out. Our
//! own few lines of calendar arithmetic (days from a civil date and back, proleptic
//! Gregorian, UTC) rather than a date crate for two conversions.

/// What a timestamp parameter accepts, for error messages.
pub const EXPECTED: &str = "an RFC 3339 time such as 2026-11-23T08:00:00Z or \
    2026-11-23T15:00:00+07:00, a date such as 2026-11-23 (midnight UTC), or Unix milliseconds";

/// Parses Unix milliseconds (digits only), an RFC 3339 date-time (`T` or a space between
/// date and time, fractions of a second, `Z` or a `+hh:mm`/`-hh:mm` offset), or a bare
/// date (midnight UTC). In a URL query `+` decodes to a space, so a space where the
/// offset's sign belongs is read as `+`.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| "is too large for Unix milliseconds".into());
    }
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = b
            .get(from..from + len)
            .filter(|p| p.iter().all(u8::is_ascii_digit))
            .ok_or_else(|| format!("is not a time: expected digits at position {}", from + 1))?;
        Ok(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, want: &[u8]| -> Result<(), String> {
        match b.get(at) {
            Some(c) if want.contains(c) => Ok(()),
            _ => Err(format!(
                "is not a time: expected {:?} at position {}",
                char::from(want[0]),
                at + 1
            )),
        }
    };
    let year = num(0, 4)?;
    sep(4, b"-")?;
    let month = num(5, 2)?;
    sep(7, b"-")?;
    let day = num(8, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(format!("has no such date {year:04}-{month:02}-{day:02}"));
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return to_ms(days * 86_400_000);
    }
    sep(10, b"Tt ")?;
    let hour = num(11, 2)?;
    sep(13, b":")?;
    let minute = num(14, 2)?;
    sep(16, b":")?;
    // 60 for a leap second, counted as the next second's start.
    let second = num(17, 2)?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!(
            "has no such time of day {hour:02}:{minute:02}:{second:02}"
        ));
    }
    let mut at = 19;
    let mut millis = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return Err("is not a time: expected digits after the decimal point".into());
        }
        for _ in (at - start)..3 {
            millis *= 10;
        }
    }
    let offset_secs = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-' | b' ')) if at + 6 == b.len() => {
            let oh = num(at + 1, 2)?;
            sep(at + 3, b":")?;
            let om = num(at + 4, 2)?;
            if oh > 23 || om > 59 {
                return Err(format!("has no such offset {oh:02}:{om:02}"));
            }
            let sign = if c == b'-' { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => {
            return Err(
                "is not a time: expected Z or an offset such as +07:00 after the time".into(),
            );
        }
    };
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    to_ms(secs * 1000 + millis)
}

fn to_ms(ms: i64) -> Result<u64, String> {
    u64::try_from(ms).map_err(|_| "is before 1970-01-01T00:00:00Z".into())
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds) of Unix milliseconds.
pub fn format_time(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let (y, m, d) = civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (400-year eras of 146,097 days, years starting
/// in March so the leap day is last).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms_agree() {
        let t = 1_795_507_200_000; // 2026-11-24T08:00:00Z
        assert_eq!(parse_time("2026-11-24T08:00:00Z"), Ok(t));
        assert_eq!(parse_time("2026-11-24t08:00:00z"), Ok(t));
        assert_eq!(parse_time("2026-11-24 08:00:00Z"), Ok(t));
        assert_eq!(parse_time("2026-11-24T15:00:00+07:00"), Ok(t));
        assert_eq!(
            parse_time("2026-11-24T15:00:00 07:00"),
            Ok(t),
            "+ decoded as space"
        );
        assert_eq!(parse_time("2026-11-24T03:30:00-04:30"), Ok(t));
        assert_eq!(parse_time("2026-11-24T08:00:00.5Z"), Ok(t + 500));
        assert_eq!(parse_time("2026-11-24T08:00:00.123456Z"), Ok(t + 123));
        assert_eq!(parse_time("2026-11-24"), Ok(t - 8 * 3_600_000));
        assert_eq!(parse_time(&t.to_string()), Ok(t));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
    }

    #[test]
    fn bad_times_say_why() {
        for (bad, why) in [
            ("", "empty"),
            ("yesterday", "expected digits"),
            ("2026-13-01", "no such date"),
            ("2025-02-29", "no such date"),
            ("2026-11-24T25:00:00Z", "no such time"),
            ("2026-11-24T08:00:00", "expected Z"),
            ("2026-11-24T08:00:00+7", "expected Z"),
            ("2026-11-24T08:00Z", "expected ':'"),
            ("2026-11-24T08:00:00.Z", "after the decimal point"),
            ("1969-12-31T23:59:59Z", "before 1970"),
            ("99999999999999999999999", "too large"),
        ] {
            let e = parse_time(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn format_round_trips() {
        for t in [0, 1_795_507_200_000, 1_709_164_800_000, 951_782_400_000] {
            assert_eq!(parse_time(&format_time(t)), Ok(t));
        }
        assert_eq!(format_time(1_795_507_261_999), "2026-11-24T08:01:01Z");
        // Every day of four centuries converts back and forth.
        for days in (-1000..150_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
