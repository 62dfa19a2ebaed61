//! Time kept in DynamoDB strings and numbers.
//!
//! DynamoDB has no time type: tables keep time as ISO-8601 strings
//! (`"2025-11-30T08:15:00Z"`, `"2026-11-30"`), as epoch numbers
//! (`1764490500`, the TTL attribute) or in a pattern of their own. A
//! [`TimeFormat`] says which, so that a column can be a `Timestamp` (UTC) or a
//! `Date32` while the item keeps its DynamoDB form. Each format parses the
//! stored value into the column's unit, renders a value back, and tells
//! whether its byte or numeric order is time order (what pushdown needs).
//!
//! ```
//! use dynamo_datafusion::schema::TimeFormat;
//! use aws_sdk_dynamodb::types::AttributeValue;
//!
//! let format: TimeFormat = "iso_seconds".parse().unwrap();
//! let seconds = format.decode(&AttributeValue::S("2025-11-30T08:15:00Z".into())).unwrap();
//! assert_eq!(seconds, 1_764_490_500);
//! assert_eq!(format.encode(seconds), Some(AttributeValue::S("2025-11-30T08:15:00Z".into())));
//! ```

use std::fmt;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use datafusion::arrow::datatypes::{DataType, TimeUnit};

use crate::value::number::{ExactNumber, fast_i64};

/// The time zone of every timestamp column: values are instants, shown in UTC.
pub const UTC: &str = "UTC";

/// Nanoseconds in a day.
pub(crate) const NANOS_PER_DAY: i128 = 86_400 * 1_000_000_000;

/// How an attribute keeps time.
///
/// Written as text (in options, `\d` and field metadata) by its name:
///
/// | name | stored as | column |
/// |---|---|---|
/// | `iso_seconds`, `iso_millis`, `iso_micros`, `iso_nanos` | `S`: `2025-11-30T08:15:00Z`, `Z` and exactly 0, 3, 6 or 9 fraction digits | `Timestamp(unit, UTC)` |
/// | `iso` (or `rfc3339`) | `S`: any RFC 3339 timestamp, any fraction, `Z` or an offset | `Timestamp(ns, UTC)` |
/// | `date` | `S`: `2026-11-30` | `Date32` |
/// | `epoch_seconds`, `epoch_millis`, `epoch_micros`, `epoch_nanos` | `N`: whole units since 1970-01-01 UTC | `Timestamp(unit, UTC)` |
/// | a `chrono` pattern, optionally `@ zone` | `S`: `%d/%m/%Y %H:%M @ Europe/Paris` | `Timestamp` or `Date32` |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeFormat {
    /// RFC 3339 in UTC (`Z`), fixed width: the fraction has exactly the
    /// unit's digits (none for seconds).
    IsoUtc(TimeUnit),
    /// Any RFC 3339 timestamp: a fraction of any length or none, `Z` or an
    /// offset such as `+05:30`.
    Iso,
    /// An ISO calendar date, `YYYY-MM-DD`.
    Date,
    /// A whole number of units since 1970-01-01T00:00:00Z, in an `N` attribute.
    Epoch(TimeUnit),
    /// A `chrono` pattern in a time zone.
    Pattern(Pattern),
}

/// A `chrono` strftime pattern (`%d/%m/%Y %H:%M`) and the zone its local
/// times are in (UTC unless given; ignored when the pattern has an offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    zone: Zone,
    /// True when the pattern has no time of day: a `Date32` column.
    date_only: bool,
    /// True when the pattern has an offset (`%z`, `%:z`).
    has_offset: bool,
    /// True when the pattern has a fraction of a second.
    fraction: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Zone {
    Fixed(FixedOffset),
    Named(Tz),
}

/// The order DynamoDB keeps values of a format in, compared with time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sortable {
    /// Numbers or fixed-width dates: DynamoDB's order is time order, and a
    /// literal renders exactly.
    Exactly,
    /// UTC strings whose fractions may differ in length: order is time
    /// order to the second; bounds are rendered as prefixes (a superset).
    BySecond,
    /// RFC 3339 with offsets: the text's date is within a day of the UTC
    /// date; bounds are dates a day wider (a superset).
    ByDay,
    /// Text order says nothing about time.
    Not,
}

impl TimeFormat {
    /// The Arrow type of a column in this format.
    pub fn data_type(&self) -> DataType {
        let ts = |unit| DataType::Timestamp(unit, Some(UTC.into()));
        match self {
            TimeFormat::IsoUtc(unit) | TimeFormat::Epoch(unit) => ts(*unit),
            TimeFormat::Iso => ts(TimeUnit::Nanosecond),
            TimeFormat::Date => DataType::Date32,
            TimeFormat::Pattern(p) if p.date_only => DataType::Date32,
            TimeFormat::Pattern(p) if p.fraction => ts(TimeUnit::Nanosecond),
            TimeFormat::Pattern(_) => ts(TimeUnit::Second),
        }
    }

    /// True when the attribute is a number (`N`); otherwise a string (`S`).
    pub fn is_number(&self) -> bool {
        matches!(self, TimeFormat::Epoch(_))
    }

    /// Nanoseconds in one unit of the column (a day for dates).
    pub(crate) fn unit_nanos(&self) -> i128 {
        match self.data_type() {
            DataType::Timestamp(unit, _) => nanos_per(unit),
            _ => NANOS_PER_DAY,
        }
    }

    /// How DynamoDB's order of stored values relates to time order.
    pub(crate) fn sortable(&self) -> Sortable {
        match self {
            TimeFormat::Epoch(_) | TimeFormat::Date => Sortable::Exactly,
            TimeFormat::IsoUtc(_) => Sortable::BySecond,
            TimeFormat::Iso => Sortable::ByDay,
            TimeFormat::Pattern(_) => Sortable::Not,
        }
    }

    /// The column value (units of [`data_type`](Self::data_type) since the
    /// epoch; days for dates) of a stored attribute, or `None` when it is not
    /// in this format.
    pub fn decode(&self, value: &AttributeValue) -> Option<i64> {
        match value {
            AttributeValue::S(s) => self.decode_str(s),
            AttributeValue::N(n) => self.decode_number(n),
            _ => None,
        }
    }

    /// [`decode`](Self::decode) of an `S` value.
    pub(crate) fn decode_str(&self, s: &str) -> Option<i64> {
        match self {
            TimeFormat::IsoUtc(unit) => {
                let p = parse_iso(s)?;
                let canonical = p.utc_z && p.upper_t && p.fraction_digits == fraction_digits(*unit);
                canonical.then(|| to_unit(p.nanos, *unit))?
            }
            TimeFormat::Iso => to_unit(parse_iso(s)?.nanos, TimeUnit::Nanosecond),
            TimeFormat::Date => parse_date(s.as_bytes()).map(i64::from),
            TimeFormat::Pattern(p) => p.decode(s),
            TimeFormat::Epoch(_) => None,
        }
    }

    /// [`decode`](Self::decode) of an `N` value: whole numbers only.
    pub(crate) fn decode_number(&self, n: &str) -> Option<i64> {
        match self {
            TimeFormat::Epoch(_) => fast_i64(n).or_else(|| ExactNumber::parse(n).ok()?.to_i64()),
            _ => None,
        }
    }

    /// The attribute that stores column value `v` in this format, or `None`
    /// when the format cannot show it (a year beyond 0–9999 in a string).
    pub fn encode(&self, v: i64) -> Option<AttributeValue> {
        let nanos = i128::from(v) * self.unit_nanos();
        match self {
            TimeFormat::Epoch(_) => Some(AttributeValue::N(v.to_string())),
            TimeFormat::IsoUtc(unit) => {
                render_iso(nanos, fraction_digits(*unit)).map(AttributeValue::S)
            }
            TimeFormat::Iso => render_iso_trimmed(nanos).map(AttributeValue::S),
            TimeFormat::Date => render_date(i32::try_from(v).ok()?).map(AttributeValue::S),
            TimeFormat::Pattern(p) => p.encode(nanos).map(AttributeValue::S),
        }
    }

    /// The format every value of a sample shows, if they all are canonical
    /// ISO text: UTC timestamps of one precision, or dates.
    pub(crate) fn detect(s: &str) -> Option<Shape> {
        if parse_date(s.as_bytes()).is_some() {
            return Some(Shape::Date);
        }
        let p = parse_iso(s)?;
        if !(p.utc_z && p.upper_t) {
            return Some(Shape::Offset);
        }
        Some(match p.fraction_digits {
            digits @ (0 | 3 | 6 | 9) => Shape::Utc(digits),
            _ => Shape::UtcMixed,
        })
    }
}

/// What one sampled string shows of time: its [`TimeFormat`] if it is ISO
/// text. Shapes of a column's values merge; the column is temporal when
/// every value has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Shape {
    Date,
    /// `Z`, `T`, and a fraction of exactly this many digits (0, 3, 6 or 9).
    Utc(u8),
    /// `Z` and `T`, fractions of different lengths.
    UtcMixed,
    /// RFC 3339 with an offset (or lowercase letters).
    Offset,
}

impl Shape {
    /// The shape of two values together (`None`: no time format holds both).
    pub(crate) fn merge(self, other: Shape) -> Option<Shape> {
        use Shape::*;
        Some(match (self, other) {
            (a, b) if a == b => a,
            (Date, _) | (_, Date) => return None,
            (Offset, _) | (_, Offset) => Offset,
            _ => UtcMixed,
        })
    }

    /// The format of a column of such values.
    pub(crate) fn format(self) -> Option<TimeFormat> {
        match self {
            Shape::Date => Some(TimeFormat::Date),
            Shape::Utc(digits) => Some(TimeFormat::IsoUtc(match digits {
                0 => TimeUnit::Second,
                3 => TimeUnit::Millisecond,
                6 => TimeUnit::Microsecond,
                _ => TimeUnit::Nanosecond,
            })),
            // UTC text whose fractions differ in length: any RFC 3339.
            Shape::UtcMixed => Some(TimeFormat::Iso),
            // Offsets are left as text unless the column is declared.
            Shape::Offset => None,
        }
    }

    /// The format a column declared temporal (but not how) takes.
    pub(crate) fn declared_format(self) -> TimeFormat {
        self.format().unwrap_or(TimeFormat::Iso)
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = |u: &TimeUnit| match u {
            TimeUnit::Second => "seconds",
            TimeUnit::Millisecond => "millis",
            TimeUnit::Microsecond => "micros",
            TimeUnit::Nanosecond => "nanos",
        };
        match self {
            TimeFormat::IsoUtc(u) => write!(f, "iso_{}", unit(u)),
            TimeFormat::Iso => f.write_str("iso"),
            TimeFormat::Date => f.write_str("date"),
            TimeFormat::Epoch(u) => write!(f, "epoch_{}", unit(u)),
            TimeFormat::Pattern(p) => match &p.zone {
                Zone::Fixed(z) if z.local_minus_utc() == 0 => f.write_str(&p.text),
                Zone::Fixed(z) => write!(f, "{} @ {z}", p.text),
                Zone::Named(tz) => write!(f, "{} @ {}", p.text, tz.name()),
            },
        }
    }
}

impl FromStr for TimeFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let unit = |name: &str| match name {
            "seconds" | "s" => Some(TimeUnit::Second),
            "millis" | "ms" => Some(TimeUnit::Millisecond),
            "micros" | "us" => Some(TimeUnit::Microsecond),
            "nanos" | "ns" => Some(TimeUnit::Nanosecond),
            _ => None,
        };
        if t.contains('%') {
            return Pattern::parse(t).map(TimeFormat::Pattern);
        }
        let lower = t.to_ascii_lowercase();
        let known = match lower.as_str() {
            "iso" | "rfc3339" | "iso8601" => Some(TimeFormat::Iso),
            "date" => Some(TimeFormat::Date),
            other => other
                .strip_prefix("iso_")
                .and_then(unit)
                .map(TimeFormat::IsoUtc)
                .or_else(|| {
                    other
                        .strip_prefix("epoch_")
                        .and_then(unit)
                        .map(TimeFormat::Epoch)
                }),
        };
        known.ok_or_else(|| {
            format!(
                "'{t}' is not a time format: give iso, iso_seconds, iso_millis, iso_micros, \
                 iso_nanos, date, epoch_seconds, epoch_millis, epoch_micros, epoch_nanos, \
                 or a chrono pattern such as '%d/%m/%Y %H:%M @ Europe/Paris'"
            )
        })
    }
}

impl serde::Serialize for TimeFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TimeFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Pattern {
    fn parse(spec: &str) -> Result<Self, String> {
        let (text, zone) = match spec.rsplit_once(" @ ") {
            Some((text, zone)) => (text.trim(), parse_zone(zone.trim())?),
            None => (spec.trim(), Zone::Fixed(Utc.fix())),
        };
        let has = |specs: &[&str]| specs.iter().any(|s| text.contains(s));
        // Reject what chrono cannot read, naming the pattern.
        if chrono::format::StrftimeItems::new(text)
            .any(|i| matches!(i, chrono::format::Item::Error))
        {
            return Err(format!("'{text}' is not a valid chrono pattern"));
        }
        let time_of_day = has(&[
            "%H", "%I", "%k", "%l", "%M", "%S", "%T", "%R", "%r", "%p", "%P", "%s", "%c", "%+",
            "%f", "%.f",
        ]);
        Ok(Pattern {
            text: text.to_string(),
            zone,
            date_only: !time_of_day,
            has_offset: has(&["%z", "%:z", "%::z", "%#z", "%+"]),
            fraction: has(&["%f", "%.f", "%3f", "%6f", "%9f", "%.3f", "%.6f", "%.9f"]),
        })
    }

    fn decode(&self, s: &str) -> Option<i64> {
        if self.date_only {
            let date = NaiveDate::parse_from_str(s, &self.text).ok()?;
            return i64::from(days_from_civil(
                chrono::Datelike::year(&date),
                chrono::Datelike::month(&date),
                chrono::Datelike::day(&date),
            ))
            .into();
        }
        let instant: DateTime<Utc> = if self.has_offset {
            DateTime::parse_from_str(s, &self.text)
                .ok()?
                .with_timezone(&Utc)
        } else {
            let local = NaiveDateTime::parse_from_str(s, &self.text).ok()?;
            match &self.zone {
                Zone::Fixed(z) => single(z.from_local_datetime(&local))?.with_timezone(&Utc),
                Zone::Named(tz) => single(tz.from_local_datetime(&local))?.with_timezone(&Utc),
            }
        };
        if self.fraction {
            instant.timestamp_nanos_opt()
        } else {
            Some(instant.timestamp())
        }
    }

    fn encode(&self, nanos: i128) -> Option<String> {
        if self.date_only {
            let days = i32::try_from(nanos.div_euclid(NANOS_PER_DAY)).ok()?;
            let date = NaiveDate::from_num_days_from_ce_opt(days.checked_add(719_163)?)?;
            return Some(date.format(&self.text).to_string());
        }
        let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
        let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
        let utc = DateTime::<Utc>::from_timestamp(secs, sub)?;
        Some(match &self.zone {
            Zone::Fixed(z) => utc.with_timezone(z).format(&self.text).to_string(),
            Zone::Named(tz) => utc.with_timezone(tz).format(&self.text).to_string(),
        })
    }
}

/// A local time that names one instant; a time a DST change skips or
/// repeats is no instant.
fn single<T: TimeZone>(r: LocalResult<DateTime<T>>) -> Option<DateTime<T>> {
    match r {
        LocalResult::Single(t) => Some(t),
        _ => None,
    }
}

fn parse_zone(zone: &str) -> Result<Zone, String> {
    if zone.eq_ignore_ascii_case("utc") || zone == "Z" {
        return Ok(Zone::Fixed(Utc.fix()));
    }
    if let Some(offset) = parse_offset(zone.as_bytes()) {
        return FixedOffset::east_opt(offset)
            .map(Zone::Fixed)
            .ok_or_else(|| format!("'{zone}' is not a valid offset"));
    }
    zone.parse::<Tz>().map(Zone::Named).map_err(|_| {
        format!("'{zone}' is not a time zone (an IANA name such as Europe/Paris, or +05:30)")
    })
}

/// Seconds east of UTC of `+HH:MM` / `-HH:MM`.
fn parse_offset(b: &[u8]) -> Option<i32> {
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = (two(&b[1..3])?, two(&b[4..6])?);
    (h <= 23 && m <= 59).then(|| sign * (h as i32 * 3600 + m as i32 * 60))
}

/// Nanoseconds in one `unit`.
pub(crate) fn nanos_per(unit: TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

fn fraction_digits(unit: TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

/// `nanos` in whole `unit`s, when exact and within `i64`.
fn to_unit(nanos: i128, unit: TimeUnit) -> Option<i64> {
    let per = nanos_per(unit);
    (nanos % per == 0)
        .then(|| i64::try_from(nanos / per).ok())
        .flatten()
}

/// A parsed RFC 3339 timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IsoParts {
    /// Nanoseconds since the epoch, UTC.
    pub nanos: i128,
    pub fraction_digits: u8,
    /// Ends in an uppercase `Z`.
    pub utc_z: bool,
    /// Date and time are separated by an uppercase `T`.
    pub upper_t: bool,
}

fn two(b: &[u8]) -> Option<u32> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => None,
    }
}

/// `YYYY-MM-DD` as days since 1970-01-01.
fn parse_date(b: &[u8]) -> Option<i32> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = two(&b[0..2])? * 100 + two(&b[2..4])?;
    let (month, day) = (two(&b[5..7])?, two(&b[8..10])?);
    let year = i32::try_from(year).ok()?;
    ((1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day))
        .then(|| days_from_civil(year, month, day))
}

/// `YYYY-MM-DDTHH:MM:SS[.f…]` then `Z` or `±HH:MM` (RFC 3339; `t`, `z` and a
/// space separator accepted; no leap second).
pub(crate) fn parse_iso(s: &str) -> Option<IsoParts> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let days = parse_date(&b[..10])?;
    let upper_t = b[10] == b'T';
    if !(upper_t || b[10] == b't' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, sec) = (two(&b[11..13])?, two(&b[14..16])?, two(&b[17..19])?);
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut fraction: i128 = 0;
    let mut fraction_digits = 0u8;
    if b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            if fraction_digits == 9 {
                return None;
            }
            fraction = fraction * 10 + i128::from(b[i] - b'0');
            fraction_digits += 1;
            i += 1;
        }
        if fraction_digits == 0 {
            return None;
        }
        fraction *= 10i128.pow(u32::from(9 - fraction_digits));
    }
    let rest = &b[i..];
    let (offset, utc_z) = match rest {
        b"Z" => (0, true),
        b"z" => (0, false),
        _ => (parse_offset(rest)?, false),
    };
    let secs = i128::from(days) * 86_400 + i128::from(h * 3600 + m * 60 + sec) - i128::from(offset);
    Some(IsoParts {
        nanos: secs * 1_000_000_000 + fraction,
        fraction_digits,
        utc_z,
        upper_t,
    })
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// The date of a day number (days since 1970-01-01).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD` of a day number, for years 0–9999.
pub(crate) fn render_date(days: i32) -> Option<String> {
    let (y, m, d) = civil_from_days(i64::from(days));
    (0..=9999)
        .contains(&y)
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

/// `YYYY-MM-DDTHH:MM:SS` of the second holding `nanos` (floored), for years 0–9999.
pub(crate) fn render_second(nanos: i128) -> Option<String> {
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let date = render_date(i32::try_from(days).ok()?)?;
    Some(format!(
        "{date}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// The fraction digits of `nanos`' second (nine, or fewer when `trim`
/// drops trailing zeros; empty for a whole second when trimmed).
pub(crate) fn fraction_text(nanos: i128, digits: u8, trim: bool) -> String {
    let frac = nanos.rem_euclid(1_000_000_000);
    let mut text = format!("{frac:09}");
    text.truncate(usize::from(digits));
    if trim {
        while text.ends_with('0') {
            text.pop();
        }
    }
    text
}

/// Canonical UTC text with exactly `digits` fraction digits (the instant must
/// be a whole number of such units).
fn render_iso(nanos: i128, digits: u8) -> Option<String> {
    let second = render_second(nanos)?;
    Some(if digits == 0 {
        format!("{second}Z")
    } else {
        format!("{second}.{}Z", fraction_text(nanos, digits, false))
    })
}

/// UTC text with as many fraction digits as the instant needs.
fn render_iso_trimmed(nanos: i128) -> Option<String> {
    let second = render_second(nanos)?;
    let frac = fraction_text(nanos, 9, true);
    Some(if frac.is_empty() {
        format!("{second}Z")
    } else {
        format!("{second}.{frac}Z")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn f(name: &str) -> TimeFormat {
        name.parse().expect("a format")
    }

    #[test]
    fn names_round_trip_and_bad_names_say_what_is_accepted() {
        for name in [
            "iso",
            "iso_seconds",
            "iso_millis",
            "iso_micros",
            "iso_nanos",
            "date",
            "epoch_seconds",
            "epoch_millis",
            "epoch_micros",
            "epoch_nanos",
            "%d/%m/%Y %H:%M",
            "%d/%m/%Y %H:%M @ Europe/Paris",
            "%d/%m/%Y @ +05:30",
        ] {
            assert_eq!(f(name).to_string(), name);
        }
        assert_eq!(f("RFC3339"), TimeFormat::Iso);
        let err = "epoch_weeks".parse::<TimeFormat>().expect_err("unknown");
        assert!(
            err.contains("epoch_seconds") && err.contains("chrono"),
            "{err}"
        );
        assert!("%d @ Mars/Olympus".parse::<TimeFormat>().is_err());
        assert!("%Q".parse::<TimeFormat>().is_err());
    }

    #[test]
    fn iso_utc_formats_are_strict_about_their_precision() {
        let millis = f("iso_millis");
        assert_eq!(
            millis.decode(&s("2025-11-30T08:15:00.250Z")),
            Some(1_764_490_500_250)
        );
        assert_eq!(millis.decode(&s("2025-11-30T08:15:00Z")), None);
        assert_eq!(millis.decode(&s("2025-11-30T08:15:00.25Z")), None);
        assert_eq!(millis.decode(&s("2025-11-30T08:15:00.250+00:00")), None);
        assert_eq!(millis.decode(&AttributeValue::N("1".into())), None);
        assert_eq!(
            millis.encode(1_764_490_500_250),
            Some(s("2025-11-30T08:15:00.250Z"))
        );
        let secs = f("iso_seconds");
        assert_eq!(secs.decode(&s("1969-12-31T23:59:59Z")), Some(-1));
        assert_eq!(secs.encode(-1), Some(s("1969-12-31T23:59:59Z")));
        // Years beyond four digits have no fixed-width text.
        assert_eq!(secs.encode(i64::MAX / 2), None);
    }

    #[test]
    fn general_iso_takes_offsets_and_any_fraction() {
        let iso = TimeFormat::Iso;
        let at = |v: &str| iso.decode(&s(v));
        assert_eq!(at("2025-11-30T13:45:00+05:30"), at("2025-11-30T08:15:00Z"));
        assert_eq!(
            at("2025-11-30T08:15:00.5Z"),
            Some(1_764_490_500_500_000_000)
        );
        assert_eq!(
            at("2025-11-30 08:15:00.123456789z"),
            Some(1_764_490_500_123_456_789)
        );
        for bad in [
            "2026-11-30",
            "2025-11-30T08:15:00",
            "2026-11-30T24:00:00Z",
            "2026-11-30T23:59:60Z",
            "2026-02-29T00:00:00Z",
            "2025-11-30T08:15:00.Z",
            "2025-11-30T08:15:00.1234567891Z",
            "2025-11-30T08:15:00+5:30",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        assert_eq!(
            at("2024-02-29T00:00:00Z").map(|n| n % 86_400_000_000_000),
            Some(0)
        );
    }

    #[test]
    fn dates_and_epochs() {
        let date = f("date");
        assert_eq!(date.decode(&s("1970-01-02")), Some(1));
        assert_eq!(date.decode(&s("2024-02-29")), Some(19_782));
        assert_eq!(date.decode(&s("2023-02-29")), None);
        assert_eq!(date.decode(&s("2024-2-29")), None);
        assert_eq!(date.encode(19_782), Some(s("2024-02-29")));
        assert_eq!(date.encode(-719_529), None, "year -1");
        let secs = f("epoch_seconds");
        assert_eq!(
            secs.decode(&AttributeValue::N("1764490500".into())),
            Some(1_764_490_500)
        );
        assert_eq!(
            secs.decode(&AttributeValue::N("1.7644905E+9".into())),
            Some(1_764_490_500)
        );
        assert_eq!(secs.decode(&AttributeValue::N("1764490500.5".into())), None);
        assert_eq!(secs.decode(&s("1764490500")), None);
        assert_eq!(secs.encode(-5), Some(AttributeValue::N("-5".into())));
        assert_eq!(
            f("epoch_millis").data_type(),
            DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
        );
    }

    #[test]
    fn patterns_read_in_their_zone() {
        let paris = f("%d/%m/%Y %H:%M @ Europe/Paris");
        // 09:15 in Paris in winter is 08:15 UTC.
        assert_eq!(paris.decode(&s("30/11/2025 09:15")), Some(1_764_490_500));
        assert_eq!(paris.encode(1_764_490_500), Some(s("30/11/2025 09:15")));
        // 02:30 on the morning clocks go forward does not exist.
        assert_eq!(paris.decode(&s("29/03/2026 02:30")), None);
        let day = f("%d.%m.%Y");
        assert_eq!(day.data_type(), DataType::Date32);
        assert_eq!(day.decode(&s("02.01.1970")), Some(1));
        let with_offset = f("%Y-%m-%d %H:%M:%S%.f %z");
        assert_eq!(
            with_offset.decode(&s("2025-11-30 09:15:00.5 +0100")),
            Some(1_764_490_500_500_000_000)
        );
    }

    #[test]
    fn civil_dates_round_trip_over_centuries() {
        for days in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(i64::from(days));
            assert_eq!(days_from_civil(y as i32, m, d), days);
        }
    }

    #[test]
    fn detection_sees_canonical_shapes_only() {
        assert_eq!(TimeFormat::detect("2026-11-30"), Some(Shape::Date));
        assert_eq!(
            TimeFormat::detect("2025-11-30T08:15:00.123Z"),
            Some(Shape::Utc(3))
        );
        assert_eq!(
            TimeFormat::detect("2025-11-30T08:15:00.1Z"),
            Some(Shape::UtcMixed)
        );
        assert_eq!(
            TimeFormat::detect("2025-11-30T08:15:00+01:00"),
            Some(Shape::Offset)
        );
        assert_eq!(TimeFormat::detect("hello"), None);
        assert_eq!(TimeFormat::detect("20261130"), None);
        let secs = Shape::Utc(0);
        assert_eq!(secs.merge(secs), Some(secs));
        assert_eq!(secs.merge(Shape::Utc(3)), Some(Shape::UtcMixed));
        assert_eq!(secs.merge(Shape::Date), None);
        assert_eq!(secs.format(), Some(TimeFormat::IsoUtc(TimeUnit::Second)));
        assert_eq!(Shape::UtcMixed.format(), Some(TimeFormat::Iso));
        assert_eq!(Shape::Offset.format(), None);
        assert_eq!(Shape::Offset.declared_format(), TimeFormat::Iso);
    }
}
