//! oneM2M timestamps (`YYYYMMDDTHHMMSS,ffffff`, UTC: ISO 8601 basic format), converted from and to microseconds
//! since the Unix epoch. The calendar (field ranges, month lengths, leap years) is the `time` crate's.
//! Pure: the caller supplies the time.

use std::borrow::Cow;

use time::format_description::BorrowedFormatItem;
use time::macros::{datetime, format_description};
use time::{OffsetDateTime, PrimitiveDateTime};

/// `YYYYMMDDTHHMMSS` and an optional `,fraction`.
const BASIC: &[BorrowedFormatItem<'_>] =
    format_description!("[year][month][day]T[hour][minute][second][optional [,[subsecond]]]");

/// The first and last instants a oneM2M timestamp (four-digit year) can name.
const FIRST: OffsetDateTime = datetime!(0000-01-01 00:00:00 UTC);
const LAST: OffsetDateTime = datetime!(9999-12-31 23:59:59.999_999 UTC);

/// Formats microseconds since the epoch as a oneM2M timestamp. Instants before year 0 or after year 9999 are
/// written as the first or last instant a timestamp can name.
pub fn format(unix_micros: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_micros) * 1000)
        .map_or(if unix_micros < 0 { FIRST } else { LAST }, |t| t.clamp(FIRST, LAST));
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02},{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Parses a oneM2M timestamp (`YYYYMMDDTHHMMSS` with an optional `,fraction` of 1 to 6 digits) to microseconds
/// since the epoch. `None` for anything else, including dates that do not exist (`20230229`). A leap second
/// (`60`, as ISO 8601 allows) counts as the next minute's first.
pub fn parse(s: &str) -> Option<i64> {
    // `[year]` would take a sign; the fraction would take up to 9 digits.
    if !s.starts_with(|c: char| c.is_ascii_digit()) || s.split_once(',').is_some_and(|(_, f)| f.len() > 6) {
        return None;
    }
    // `time` has no leap seconds: read `60` as `59` plus one second.
    let (s, leap): (Cow<'_, str>, i64) = match s.get(13..15) {
        Some("60") => (Cow::Owned(format!("{}59{}", s.get(..13)?, s.get(15..)?)), 1_000_000),
        _ => (Cow::Borrowed(s), 0),
    };
    let t = PrimitiveDateTime::parse(&s, BASIC).ok()?.assume_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()?.checked_add(leap)
}

/// Parses an XML Schema / ISO 8601 duration as oneM2M uses for attributes such as `bn.dur`: `P`, then optional
/// weeks (`nW`), days (`nD`), and after `T` hours, minutes and seconds (`nH`, `nM`, `n[.f]S`), to microseconds.
/// Years and months (no fixed length) and negative durations are refused, as are durations of 2^63 µs or more.
pub fn parse_duration(s: &str) -> Option<u64> {
    const S: u64 = 1_000_000;
    fn digits(t: &str) -> Option<&str> {
        t.bytes().all(|c| c.is_ascii_digit()).then_some(t)
    }
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((_, "")) => return None,
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    if date.is_empty() && time.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    for (part, mut units) in [
        (date, &[('W', 7 * 86_400 * S), ('D', 86_400 * S)][..]),
        (time, &[('H', 3600 * S), ('M', 60 * S), ('S', S)][..]),
    ] {
        // Pieces "<digits>[.<fraction>]<unit>", units in their order, each at most once.
        for piece in part.split_inclusive(|c: char| c.is_ascii_alphabetic()) {
            let (at, unit) = piece.char_indices().last()?;
            let i = units.iter().position(|(u, _)| *u == unit)?;
            let scale = units[i].1;
            units = &units[i + 1..];
            let (int, frac) = piece[..at].split_once('.').unwrap_or((&piece[..at], ""));
            let frac_ok = frac.len() <= 6 && (unit == 'S' || !piece.contains('.'));
            if int.is_empty() || !frac_ok || piece[..at].ends_with('.') {
                return None;
            }
            let whole = digits(int)?.parse::<u64>().ok()?.checked_mul(scale)?;
            let frac_us = match digits(frac)? {
                "" => 0,
                f => f.parse::<u64>().ok()? * 10u64.pow(6 - u32::try_from(f.len()).ok()?),
            };
            total = total.checked_add(whole)?.checked_add(frac_us)?;
        }
    }
    (total < 1 << 63).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT5S"), Some(5_000_000));
        assert_eq!(parse_duration("PT1.5S"), Some(1_500_000));
        assert_eq!(parse_duration("PT1M30S"), Some(90_000_000));
        assert_eq!(parse_duration("P1DT1H"), Some((86_400 + 3600) * 1_000_000));
        assert_eq!(parse_duration("P2W"), Some(14 * 86_400 * 1_000_000));
        assert_eq!(parse_duration("PT0S"), Some(0));
        for bad in [
            "",
            "P",
            "PT",
            "5S",
            "PT5",
            "PTS",
            "P1Y",
            "P1M",
            "PT1S1M",
            "PT1H1H",
            "-PT1S",
            "PT1.S",
            "P1.5D",
            "PT1.1234567S",
            "PT99999999999999999999S",
            "PT5é",
            "PT1.2.3S",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
