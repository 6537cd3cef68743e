//! A point in time as the service keeps it: UTC, whole microseconds.

use std::fmt;

use arrayvec::ArrayString;
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use serde::{Serialize, Serializer};

/// A point in time in UTC with microsecond precision (what MySQL keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(NaiveDateTime);

impl Timestamp {
    /// Truncates (never rounds) to whole microseconds.
    pub fn from_utc(t: DateTime<Utc>) -> Self {
        let nanos = t.nanosecond().min(999_999_999);
        let naive = t.naive_utc();
        Timestamp(naive.with_nanosecond(nanos / 1000 * 1000).unwrap_or(naive))
    }

    pub fn from_naive_utc(t: NaiveDateTime) -> Self {
        Timestamp(t)
    }

    pub fn naive_utc(self) -> NaiveDateTime {
        self.0
    }
}

impl Timestamp {
    /// Writes `2026-01-31<sep>12:00:00.123456`, digit by digit: this runs
    /// per stored row and per answered sale, and `write!` with padded
    /// fields cost about 2,000 instructions a call.
    pub fn write_to(self, out: &mut impl fmt::Write, sep: u8) -> fmt::Result {
        let t = self.0;
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999);
        let Some(year) = year.filter(|_| t.nanosecond() < 1_000_000_000) else {
            // Outside what a DATETIME holds, or a leap second: exact all the same.
            let (date, time) = (t.format("%Y-%m-%d"), t.format("%H:%M:%S%.6f"));
            return write!(out, "{date}{}{time}", char::from(sep));
        };
        let mut buf = *b"0000-00-00 00:00:00.000000";
        put_digits(&mut buf[0..4], year);
        put_digits(&mut buf[5..7], t.month());
        put_digits(&mut buf[8..10], t.day());
        buf[10] = sep;
        put_digits(&mut buf[11..13], t.hour());
        put_digits(&mut buf[14..16], t.minute());
        put_digits(&mut buf[17..19], t.second());
        put_digits(&mut buf[20..26], t.nanosecond() / 1000);
        out.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

/// `n` as decimal digits filling `out`, zero-padded (higher digits that do
/// not fit are dropped: callers pass fields that fit).
fn put_digits(out: &mut [u8], mut n: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f, b'T')?;
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    /// Through a stack buffer: `collect_str` goes through `fmt::write`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = ArrayString::<48>::new();
        if self.write_to(&mut text, b'T').is_ok() && text.try_push('Z').is_ok() {
            s.serialize_str(&text)
        } else {
            s.collect_str(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn timestamps_are_written_as_chrono_writes_them(
            secs in -70_000_000_000i64..260_000_000_000,
            micros in 0u32..1_000_000,
        ) {
            let t = DateTime::from_timestamp(secs, micros * 1000).expect("in range").naive_utc();
            let mut sql = String::new();
            Timestamp(t).write_to(&mut sql, b' ').expect("writes");
            prop_assert_eq!(sql, t.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
            prop_assert_eq!(
                Timestamp(t).to_string(),
                t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
            );
        }
    }
}
