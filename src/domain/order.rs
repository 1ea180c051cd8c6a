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
    /// A sentence naming the field at fault.
    pub fn new(
        id: String,
        openid: String,
        amount: &str,
        occurred_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, String> {
        if id.trim().is_empty() || id.len() > MAX_ID_BYTES || has_control(&id) {
            return Err(format!("`id` must be 1 to {MAX_ID_BYTES} bytes without control characters"));
        }
        if openid.trim().is_empty() || openid.len() > MAX_OPENID_BYTES || has_control(&openid) {
            return Err(format!("`openid` must be 1 to {MAX_OPENID_BYTES} bytes without control characters"));
        }
        let amount_cents = parse_yuan(amount).map_err(|e| format!("`amount`: {e}"))?;
        if occurred_at.year() < EARLIEST_ORDER_YEAR {
            return Err(format!(
                "`occurred_at` {occurred_at} is before {EARLIEST_ORDER_YEAR}; send the time the order was placed, in RFC 3339"
            ));
        }
        if occurred_at > now + MAX_FUTURE {
            return Err(format!(
                "`occurred_at` {occurred_at} is more than a day after now ({now}); check the shop's clock and time zone"
            ));
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
/// More than two decimals, an exponent, or too large.
pub fn parse_yuan(text: &str) -> Result<i64, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !is_digits(whole) || !is_digits(frac) || (digits.contains('.') && frac.is_empty()) {
        return Err(format!("expected an amount in yuan like `500` or `499.5`, found `{text}`"));
    }
    if frac.len() > 2 {
        return Err(format!("`{text}` has more than 2 decimal places; amounts are in yuan to the cent (分)"));
    }
    let too_large = || format!("`{text}` is too large; amounts go up to {} yuan", MAX_AMOUNT_CENTS / 100);
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
}
