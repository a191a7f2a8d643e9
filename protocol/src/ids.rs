//! Identifiers. Every id is a newtype over a UUID so that a seat id can never be
//! passed where a session id is expected. Ids are made by the server (this crate
//! has no randomness); clients make only [`CommandId`]s, their idempotency keys.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID made elsewhere (by the server, or a client for command ids).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A clinic: the tenant that owns staff accounts and sessions.
    ClinicId
);
id_type!(
    /// One group dosing session.
    SessionId
);
id_type!(
    /// A participant's seat ("nest") in one session. A participant is known to
    /// the session only through their seat.
    SeatId
);
id_type!(
    /// A staff account (admin, facilitator or medical).
    StaffId
);
id_type!(
    /// A client-made idempotency key: the same key sent twice is one command.
    CommandId
);

/// Position of an event in its session's log; together with the [`SessionId`]
/// it identifies an event. Assigned by the session's task: gap-free, starting at 1.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// Before the first event.
    pub const ZERO: Seq = Seq(0);

    /// The sequence number that follows this one.
    pub const fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A point in time: milliseconds since the Unix epoch (UTC). `protocol` never
/// reads a clock; whoever calls it passes the time in.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// This time plus `ms` milliseconds.
    pub const fn plus_ms(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is later).
    pub const fn ms_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The time in UTC as records carry it: "2026-12-05T19:31:41.020Z".
    pub fn utc(self) -> String {
        let (days, ms) = (self.0.div_euclid(86_400_000), self.0.rem_euclid(86_400_000));
        let (year, month, day) = civil_date(days);
        let s = ms / 1000;
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            s / 3600,
            s / 60 % 60,
            s % 60,
            ms % 1000
        )
    }
}

/// Days since 1970-01-01 as a civil date (year, month 1–12, day 1–31), in
/// the proleptic Gregorian calendar (H. Hinnant's algorithm).
pub fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Milliseconds in one minute, for readable arithmetic on [`Timestamp`]s.
pub const MINUTE_MS: i64 = 60_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_across_a_leap_day_and_before_1970() {
        assert_eq!(Timestamp(0).utc(), "1970-01-01T00:00:00.000Z");
        // 2028-02-29 23:59:59.999, then the first of March.
        let leap = Timestamp(1_835_481_599_999);
        assert_eq!(leap.utc(), "2028-02-29T23:59:59.999Z");
        assert_eq!(leap.plus_ms(1).utc(), "2028-03-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_796_499_101_020).utc(),
            "2026-12-05T19:31:41.020Z"
        );
        assert_eq!(Timestamp(-1).utc(), "1969-12-31T23:59:59.999Z");
    }
}
