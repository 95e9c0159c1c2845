//! oneM2M timestamps (`YYYYMMDDTHHMMSS,ffffff`, UTC), converted from and to microseconds since the Unix epoch.
//! Pure: the caller supplies the time.

/// Days since 1970-01-01 for a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats microseconds since the epoch as a oneM2M timestamp.
pub fn format(unix_micros: i64) -> String {
    let secs = unix_micros.div_euclid(1_000_000);
    let micros = unix_micros.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02},{micros:06}", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// Parses a oneM2M timestamp (`YYYYMMDDTHHMMSS` with an optional `,fraction`) to microseconds since the epoch.
pub fn parse(s: &str) -> Option<i64> {
    let (main, frac) = match s.split_once(',') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let b = main.as_bytes();
    if b.len() != 15 || b[8] != b'T' || !main.is_char_boundary(8) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = main.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let micros = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|c| c.is_ascii_digit()) => {
            f.parse::<i64>().ok()? * 10i64.pow(6 - u32::try_from(f.len()).ok()?)
        }
        Some(_) => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400) + h * 3600 + mi * 60 + se) * 1_000_000 + micros)
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
