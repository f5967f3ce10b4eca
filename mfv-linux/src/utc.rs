//! Seconds since the Unix epoch as a UTC calendar date and time of day, for the places that
//! print wall-clock time (the audit log's RFC 3339 stamps, the remote log's RFC 5424 ones),
//! and RFC 3339 stamps read back (the API's time ranges).
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

    /// The seconds since 1970-01-01T00:00:00Z of this moment.
    pub fn unix_seconds(&self) -> i64 {
        // Days since the epoch from the civil date (Howard Hinnant's `days_from_civil`).
        let year = self.year - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year.rem_euclid(400);
        let month = i64::from(self.month);
        let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5
            + i64::from(self.day)
            - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The seconds since the epoch of an RFC 3339 stamp (`2026-11-26T04:53:00Z`,
    /// `2026-11-26t05:53:00.25+01:00`); fractions of a second are dropped, a leap second is
    /// taken as the second before it.
    pub fn parse_rfc3339(text: &str) -> Result<i64, Rfc3339Error> {
        let bytes = text.as_bytes();
        let invalid = || Rfc3339Error::Form {
            text: text.to_owned(),
        };
        // YYYY-MM-DDTHH:MM:SS, then fractions, then the offset.
        if bytes.len() < 20 || !text.is_ascii() {
            return Err(invalid());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u32, Rfc3339Error> {
            let digits = &text[range];
            if digits.bytes().all(|byte| byte.is_ascii_digit()) {
                digits.parse().map_err(|_| invalid())
            } else {
                Err(invalid())
            }
        };
        let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
        if separators.iter().any(|&(at, byte)| bytes[at] != byte)
            || !matches!(bytes[10], b'T' | b't' | b' ')
        {
            return Err(invalid());
        }
        let time = UtcTime {
            year: i64::from(number(0..4)?),
            month: number(5..7)?,
            day: number(8..10)?,
            hour: number(11..13)?,
            minute: number(14..16)?,
            second: number(17..19)?,
        };
        let mut rest = &text[19..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid());
            }
            rest = &fraction[digits..];
        }
        let offset_seconds = match rest {
            "Z" | "z" => 0,
            _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
                let sign = match rest.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return Err(invalid()),
                };
                let hours = number(text.len() - 5..text.len() - 3)?;
                let minutes = number(text.len() - 2..text.len())?;
                if hours > 23 || minutes > 59 {
                    return Err(Rfc3339Error::OutOfRange {
                        text: text.to_owned(),
                    });
                }
                sign * i64::from(hours * 3600 + minutes * 60)
            }
            _ => return Err(invalid()),
        };
        let days_in_month = match time.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if time.year % 4 == 0 && (time.year % 100 != 0 || time.year % 400 == 0) => 29,
            2 => 28,
            _ => 0,
        };
        if time.day == 0
            || time.day > days_in_month
            || time.hour > 23
            || time.minute > 59
            || time.second > 60
        {
            return Err(Rfc3339Error::OutOfRange {
                text: text.to_owned(),
            });
        }
        let time = UtcTime {
            second: time.second.min(59),
            ..time
        };
        Ok(time.unix_seconds() - offset_seconds)
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

/// A stamp that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rfc3339Error {
    /// Not of the form `2026-11-26T04:53:00Z` (or with an offset such as `+01:00`).
    #[error("{text:?} is not an RFC 3339 date and time such as 2026-11-26T04:53:00Z")]
    Form {
        /// The text as given.
        text: String,
    },
    /// Of the form, but no such date or time (`2026-02-30`, `25:00`).
    #[error("{text:?} names no date and time that exists")]
    OutOfRange {
        /// The text as given.
        text: String,
    },
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

    #[test]
    fn rfc3339_stamps_are_read_back_with_their_offsets() {
        for (text, expected) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2026-11-26T04:53:00Z", 1_795_668_780),
            ("2026-11-26t05:53:00+01:00", 1_795_668_780),
            ("2026-11-25 23:23:00-05:30", 1_795_668_780),
            ("2026-11-26T04:53:00.999Z", 1_795_668_780),
            ("2000-02-29T00:00:00Z", 951_782_400),
            ("2016-12-31T23:59:60Z", 1_483_228_799),
            ("1969-12-31T23:59:59Z", -1),
        ] {
            assert_eq!(UtcTime::parse_rfc3339(text), Ok(expected), "{text}");
        }
        for seconds in [
            0,
            951_782_400,
            1_795_668_780,
            4_102_444_799,
            -1,
            -86_400 * 400,
        ] {
            assert_eq!(
                UtcTime::from_unix_seconds(seconds).unix_seconds(),
                seconds,
                "{seconds}"
            );
        }
    }

    #[test]
    fn stamps_that_are_not_rfc3339_are_refused_saying_why() {
        for text in [
            "",
            "yesterday",
            "2026-11-26",
            "2026-11-26T04:53Z",
            "2026-11-26T04:53:00",
            "2026-11-26T04:53:00+0100",
            "2026-11-26T04:53:00.Z",
            "2026/11/26T04:53:00Z",
            "2026-11-26T04:53:0xZ",
            "1795668780",
            "2026-11-26T04:53:00ZZ",
            "２０２６-11-26T04:53:00Z",
        ] {
            assert!(
                matches!(UtcTime::parse_rfc3339(text), Err(Rfc3339Error::Form { .. })),
                "{text}"
            );
        }
        for text in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T23:60:00Z",
            "2026-11-26T23:00:61Z",
            "2026-11-26T23:00:00+24:00",
        ] {
            let error = UtcTime::parse_rfc3339(text).unwrap_err();
            assert!(
                matches!(error, Rfc3339Error::OutOfRange { .. }),
                "{text}: {error}"
            );
        }
        assert_eq!(
            UtcTime::parse_rfc3339("soon").unwrap_err().to_string(),
            "\"soon\" is not an RFC 3339 date and time such as 2026-11-26T04:53:00Z"
        );
    }
}
