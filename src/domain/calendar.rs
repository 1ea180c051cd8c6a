//! WeChat's calendar: Beijing time (UTC+8, no daylight saving), so its days and months start at
//! 16:00 UTC. The subscription account's daily send, the monthly receipt counts, datacube's
//! days and every time the admin pages show follow it. The mock of WeChat keeps its own copy,
//! since it may only use `wechat`.

use chrono::{DateTime, Datelike as _, Duration, FixedOffset, NaiveDate, NaiveDateTime, Utc};

/// Beijing's offset from UTC.
pub const BEIJING_OFFSET_SECS: i32 = 8 * 3600;

/// `at` on Beijing's clock.
pub fn beijing(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&FixedOffset::east_opt(BEIJING_OFFSET_SECS).expect("UTC+8 is a valid offset"))
}

/// A Beijing wall-clock time (a form's `datetime-local`) as the instant it names.
pub fn from_beijing(local: NaiveDateTime) -> DateTime<Utc> {
    local.and_utc() - Duration::seconds(i64::from(BEIJING_OFFSET_SECS))
}

/// `at`'s Beijing calendar day.
pub fn beijing_date(at: DateTime<Utc>) -> NaiveDate {
    beijing(at).date_naive()
}

/// The first day of `at`'s Beijing calendar month.
pub fn beijing_month(at: DateTime<Utc>) -> NaiveDate {
    let local = beijing_date(at);
    local.with_day0(0).unwrap_or(local)
}

/// The start of `at`'s Beijing day, in UTC.
pub fn beijing_day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    from_beijing(beijing_date(at).and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// How the admin pages show a time: Beijing time, to the minute.
pub fn beijing_minute(at: DateTime<Utc>) -> String {
    beijing(at).format("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn beijing_days_and_months_start_at_sixteen_utc() {
        assert_eq!(beijing_day_start(at("2026-03-31T16:30:00Z")), at("2026-03-31T16:00:00Z"));
        assert_eq!(beijing_day_start(at("2026-03-31T15:59:00Z")), at("2026-03-30T16:00:00Z"));
        assert_eq!(beijing_month(at("2026-03-31T16:30:00Z")), date(2026, 4, 1));
        assert_eq!(beijing_month(at("2026-03-31T15:30:00Z")), date(2026, 3, 1));
    }

    #[test]
    fn the_year_turns_at_sixteen_utc_on_new_years_eve() {
        let turn = at("2026-12-31T16:00:00Z");
        assert_eq!(beijing_date(turn), date(2027, 1, 1));
        assert_eq!(beijing_month(turn), date(2027, 1, 1));
        assert_eq!(beijing_day_start(turn), turn);
        assert_eq!(beijing_minute(turn), "2027-01-01 00:00");
        let before = turn - Duration::seconds(1);
        assert_eq!(beijing_date(before), date(2026, 12, 31));
        assert_eq!(beijing_month(before), date(2026, 12, 1));
        assert_eq!(beijing_day_start(before), at("2026-12-30T16:00:00Z"));
    }

    #[test]
    fn a_beijing_wall_clock_time_is_eight_hours_ahead() {
        let local = NaiveDateTime::parse_from_str("2027-01-01 09:30", "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(from_beijing(local), at("2027-01-01T01:30:00Z"));
        assert_eq!(beijing_minute(from_beijing(local)), "2027-01-01 09:30");
    }
}
