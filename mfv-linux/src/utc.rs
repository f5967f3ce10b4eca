//! Seconds since the Unix epoch as a UTC calendar date and time of day, for the places that
//! print wall-clock time (the audit log's RFC 3339 stamps, the remote log's RFC 5424 ones).
//! Kept once because the date arithmetic is easy to get subtly wrong and the image carries no
//! time zone data anyway: every stamp the host writes is UTC.

/// A moment in UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// Proleptic Gregorian year (may be below 1970 or above 9999).
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59 (the clock has no leap seconds).
    pub second: u32,
}

impl UtcTime {
    /// The moment `seconds` after 1970-01-01T00:00:00Z (before it when negative).
    pub fn from_unix_seconds(seconds: i64) -> UtcTime {
        let days = seconds.div_euclid(86_400);
        // 0..86_400: fits every field below.
        let second_of_day = seconds.rem_euclid(86_400) as u32;
        // Civil date from days since the epoch (Howard Hinnant's `civil_from_days`).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        // 1..=31 and 1..=12 by construction.
        let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        } as u32;
        UtcTime {
            year: year_of_era + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: second_of_day / 3600,
            minute: second_of_day / 60 % 60,
            second: second_of_day % 60,
        }
    }

    /// `2026-11-26T04:53:00`: RFC 3339 without the offset, for the caller to add fractions
    /// of a second and `Z`.
    pub fn rfc3339_seconds(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_across_leap_years_and_before_the_epoch() {
        for (seconds, expected) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (1_795_668_780, "2026-11-26T04:53:00"),
            (4_102_444_799, "2099-12-31T23:59:59"),
            (-1, "1969-12-31T23:59:59"),
        ] {
            assert_eq!(
                UtcTime::from_unix_seconds(seconds).rfc3339_seconds(),
                expected,
                "{seconds}"
            );
        }
        let time = UtcTime::from_unix_seconds(1_795_668_781);
        assert_eq!(
            (
                time.year,
                time.month,
                time.day,
                time.hour,
                time.minute,
                time.second
            ),
            (2026, 11, 26, 4, 53, 1)
        );
    }
}
