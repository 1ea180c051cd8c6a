//! An order as `POST /api/v1/events` receives it: checked and converted to whole cents, so sums in
//! `spent(..)` are exact. Pure; the store keeps it and the audience module re-evaluates tags.

use chrono::{DateTime, Datelike, Utc};

use super::expr::MAX_AMOUNT_CENTS;

/// Longest accepted order id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest accepted openid, in bytes (WeChat's are 28).
pub const MAX_OPENID_BYTES: usize = 64;
/// WeChat Official Accounts' tagging began well after this; an older order is a wrong clock or
/// a unit error (milliseconds read as seconds), and it would sit in every `orders(all)` forever.
const EARLIEST_ORDER_YEAR: i32 = 2010;
/// Shops' clocks drift and time zones get mixed up, but an order more than a day ahead is an
/// error: it would count as "recent" in every window until that day comes.
const MAX_FUTURE: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Why an incoming order was refused: the field at fault and what it held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("`id` must be 1 to {MAX_ID_BYTES} bytes without control characters")]
    BadId { id: String },
    #[error("`openid` must be 1 to {MAX_OPENID_BYTES} bytes without control characters")]
    BadOpenid { openid: String },
    #[error("`amount`: {0}")]
    Amount(#[source] YuanError),
    #[error(
        "`occurred_at` {occurred_at} is before {EARLIEST_ORDER_YEAR}; send the time the order was placed, in RFC 3339"
    )]
    TooOld { occurred_at: DateTime<Utc> },
    #[error("`occurred_at` {occurred_at} is more than a day after now ({now}); check the shop's clock and time zone")]
    InFuture { occurred_at: DateTime<Utc>, now: DateTime<Utc> },
}

/// Why an amount in yuan was refused; `text` is the amount as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YuanError {
    /// Not digits with an optional sign and decimal point (an exponent, a bare `.`, words).
    #[error("这里应是以元为单位的金额，如 500 或 499.5，却是 {text}")]
    Malformed { text: String },
    /// Fractions of a fen.
    #[error("{text} 超过 2 位小数：金额以元为单位，精确到分")]
    TooPrecise { text: String },
    #[error("{text} 太大：金额最多 {} 元", MAX_AMOUNT_CENTS / 100)]
    TooLarge { text: String },
}

/// A checked order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The shop's id for it; a second order with the same id is a duplicate.
    pub id: String,
    pub openid: String,
    /// 分; negative for a refund.
    pub amount_cents: i64,
    pub occurred_at: DateTime<Utc>,
}

impl Order {
    /// Checks the fields of an incoming order; `amount` is the JSON number in yuan as written
    /// (at most two decimals; negative for a refund).
    ///
    /// `now` bounds `occurred_at`: from 2010 to a day ahead of it.
    ///
    /// # Errors
    /// [`OrderError`], naming the field at fault.
    pub fn new(
        id: String,
        openid: String,
        amount: &str,
        occurred_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, OrderError> {
        if id.trim().is_empty() || id.len() > MAX_ID_BYTES || has_control(&id) {
            return Err(OrderError::BadId { id });
        }
        if openid.trim().is_empty() || openid.len() > MAX_OPENID_BYTES || has_control(&openid) {
            return Err(OrderError::BadOpenid { openid });
        }
        let amount_cents = parse_yuan(amount).map_err(OrderError::Amount)?;
        if occurred_at.year() < EARLIEST_ORDER_YEAR {
            return Err(OrderError::TooOld { occurred_at });
        }
        if occurred_at > now + MAX_FUTURE {
            return Err(OrderError::InFuture { occurred_at, now });
        }
        Ok(Self { id, openid, amount_cents, occurred_at })
    }
}

/// NUL cannot be stored in PostgreSQL text at all, and other control characters in an id or
/// openid are never legitimate: refusing them keeps one bad order from failing its batch with a 500.
fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Yuan with at most two decimals, as cents: `199.9` → 19990, `-5` → -500. Up to
/// [`MAX_AMOUNT_CENTS`] either way.
///
/// # Errors
/// [`YuanError`]: more than two decimals, an exponent, or too large.
pub fn parse_yuan(text: &str) -> Result<i64, YuanError> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !is_digits(whole) || !is_digits(frac) || (digits.contains('.') && frac.is_empty()) {
        return Err(YuanError::Malformed { text: text.to_owned() });
    }
    if frac.len() > 2 {
        return Err(YuanError::TooPrecise { text: text.to_owned() });
    }
    let too_large = || YuanError::TooLarge { text: text.to_owned() };
    let yuan: i64 = whole.parse().map_err(|_| too_large())?;
    let cents: i64 = format!("{frac:0<2}").parse().expect("two ASCII digits");
    let total = yuan.checked_mul(100).and_then(|c| c.checked_add(cents)).ok_or_else(too_large)?;
    if total > MAX_AMOUNT_CENTS {
        return Err(too_large());
    }
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_become_whole_cents() {
        assert_eq!(parse_yuan("199"), Ok(19_900));
        assert_eq!(parse_yuan("199.9"), Ok(19_990));
        assert_eq!(parse_yuan("0.05"), Ok(5));
        assert_eq!(parse_yuan("-5"), Ok(-500));
        assert_eq!(parse_yuan("1000000000"), Ok(MAX_AMOUNT_CENTS));
    }

    #[test]
    fn fractions_of_a_fen_and_nonsense_are_refused() {
        for bad in ["1.999", "1e3", "", "-", "1.", ".5", "abc", "1000000000.01", "99999999999999999999"] {
            assert!(parse_yuan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn yuan_errors_name_the_problem_and_keep_the_text() {
        assert_eq!(parse_yuan("1e3"), Err(YuanError::Malformed { text: "1e3".into() }));
        assert_eq!(parse_yuan("1.999"), Err(YuanError::TooPrecise { text: "1.999".into() }));
        assert_eq!(parse_yuan("1000000000.01"), Err(YuanError::TooLarge { text: "1000000000.01".into() }));
        assert_eq!(parse_yuan("1.999").unwrap_err().to_string(), "1.999 超过 2 位小数：金额以元为单位，精确到分");
        assert_eq!(
            parse_yuan("99999999999999999999").unwrap_err().to_string(),
            "99999999999999999999 太大：金额最多 1000000000 元"
        );
    }

    #[test]
    fn order_errors_carry_the_field_and_keep_the_amount_as_source() {
        let now = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().to_utc();
        let order = |id: &str, openid: &str, amount: &str, at| Order::new(id.into(), openid.into(), amount, at, now);
        assert_eq!(order(" ", "o1", "1", now), Err(OrderError::BadId { id: " ".into() }));
        assert_eq!(order("a", "o\u{0}", "1", now), Err(OrderError::BadOpenid { openid: "o\u{0}".into() }));
        let error = order("a", "o1", "1.001", now).unwrap_err();
        assert_eq!(error, OrderError::Amount(YuanError::TooPrecise { text: "1.001".into() }));
        assert_eq!(error.to_string(), format!("`amount`: {}", YuanError::TooPrecise { text: "1.001".into() }));
        assert!(std::error::Error::source(&error).is_some());
        let old = DateTime::parse_from_rfc3339("2009-12-31T23:59:59Z").unwrap().to_utc();
        assert_eq!(order("a", "o1", "1", old), Err(OrderError::TooOld { occurred_at: old }));
        let later = now + chrono::TimeDelta::days(2);
        let error = order("a", "o1", "1", later).unwrap_err();
        assert_eq!(error, OrderError::InFuture { occurred_at: later, now });
        assert_eq!(
            error.to_string(),
            "`occurred_at` 2026-01-04 03:04:05 UTC is more than a day after now (2026-01-02 03:04:05 UTC); \
             check the shop's clock and time zone"
        );
    }
}
