//! 高潜力客户 (issue 21, point 5): an operator-adjustable definition that compiles to one ordinary
//! expression, the `when` of the dynamic tag [`TAG_PATH`]. Nothing else stores the parameters:
//! they are read back from the tag's `when` ([`Definition::from_expr`]), so the tag is the single
//! truth and a hand-edited `when` is recognised as no longer this definition.
//!
//! The purchase score is always a conjunct at the top: when the model stops being trusted and its
//! scores are dropped, nobody matches, whatever the intent tags say.

use crate::domain::expr::{CmpOp, Expr, SCORE_MODELS, Window};
use crate::domain::tag::TagPath;

/// The built-in dynamic tag.
pub const TAG_PATH: &str = "预测/高潜力客户";
/// Intent tags live under this first level (`意图/咨询价格`).
pub const INTENT_PREFIX: &str = "意图/";
/// Default probability threshold, in thousandths (0.3).
pub const DEFAULT_MILLI: i64 = 300;
/// Default engagement window, in days.
pub const DEFAULT_DAYS: u32 = 14;
/// Longest engagement window the form accepts.
pub const MAX_DAYS: u32 = 365;

/// How the chosen intent tags combine with recent engagement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentJoin {
    /// An intent tag counts as engagement: score AND (active OR any intent).
    Either,
    /// An intent tag is needed as well: score AND active AND (any intent).
    Required,
}

/// The parameters of 高潜力客户.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// Purchase probability threshold in thousandths, 1..=1000.
    pub milli: i64,
    /// Interaction within this many days, 1..=[`MAX_DAYS`].
    pub days: u32,
    /// Intent tags (under [`INTENT_PREFIX`]); none by default.
    pub intents: Vec<TagPath>,
    pub join: IntentJoin,
}

impl Default for Definition {
    fn default() -> Self {
        Self { milli: DEFAULT_MILLI, days: DEFAULT_DAYS, intents: Vec::new(), join: IntentJoin::Either }
    }
}

/// The model the definition reads.
fn model() -> String {
    SCORE_MODELS[0].0.to_owned()
}

fn any_of(paths: &[TagPath]) -> Option<Expr> {
    paths.iter().map(|p| Expr::Tag(p.clone())).reduce(|a, b| Expr::Or(Box::new(a), Box::new(b)))
}

impl Definition {
    /// Reads the form: probability as typed (`0.3`), days, the chosen intent paths and the join
    /// (`either` / `required`). Errors are the operator's words.
    ///
    /// # Errors
    /// A probability outside (0, 1] or with more than three decimals, days outside 1..=365, or an
    /// intent path that is not a tag under `意图/`.
    pub fn from_form(probability: &str, days: &str, intents: &[String], join: &str) -> Result<Self, String> {
        let probability = probability.trim();
        let milli = probability
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite())
            .map(|p| p * 1000.0)
            .filter(|m| (m - m.round()).abs() < 1e-6)
            .map(|m| m.round() as i64)
            .filter(|m| (1..=1000).contains(m))
            .ok_or_else(|| format!("概率阈值「{probability}」无效：请填大于 0、不超过 1 的数，最多三位小数，如 0.3"))?;
        let days = days.trim().parse::<u32>().ok().filter(|d| (1..=MAX_DAYS).contains(d)).ok_or_else(|| {
            format!("「近 N 天有互动」的天数「{}」无效：请填 1 到 {MAX_DAYS} 的整数，如 14", days.trim())
        })?;
        let mut paths = Vec::new();
        for intent in intents {
            let path = TagPath::parse(intent)
                .ok()
                .filter(|p| p.as_str().starts_with(INTENT_PREFIX))
                .ok_or_else(|| format!("「{intent}」不是意图标签：只能选「{INTENT_PREFIX}」下的标签"))?;
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        let join = if join == "required" { IntentJoin::Required } else { IntentJoin::Either };
        Ok(Self { milli, days, intents: paths, join })
    }

    /// The expression stored as the tag's `when`.
    pub fn to_expr(&self) -> Expr {
        let score = Expr::Score { model: model(), op: CmpOp::Ge, milli: self.milli };
        let active = Expr::Active { window: Window::Days(self.days) };
        let and = |a, b| Expr::And(Box::new(a), Box::new(b));
        match (any_of(&self.intents), self.join) {
            (None, _) => and(score, active),
            // One flat chain, as the parser reads `active(7d) OR "意图/a" OR "意图/b"`.
            (Some(_), IntentJoin::Either) => {
                let either = self
                    .intents
                    .iter()
                    .fold(active, |chain, path| Expr::Or(Box::new(chain), Box::new(Expr::Tag(path.clone()))));
                and(score, either)
            }
            (Some(intents), IntentJoin::Required) => and(and(score, active), intents),
        }
    }

    /// The definition whose expression is `expr`, if it is one (not edited by hand).
    pub fn from_expr(expr: &Expr) -> Option<Self> {
        let mut found = Self::default();
        let mut walk = vec![expr];
        while let Some(e) = walk.pop() {
            match e {
                Expr::Score { milli, .. } => found.milli = *milli,
                Expr::Active { window: Window::Days(days) } => found.days = *days,
                Expr::Tag(path) => found.intents.insert(0, path.clone()),
                Expr::And(a, b) | Expr::Or(a, b) => walk.extend([&**a, &**b]),
                _ => return None,
            }
        }
        if let Expr::And(lhs, _) = expr {
            if matches!(**lhs, Expr::And(..)) {
                found.join = IntentJoin::Required;
            }
        }
        (found.to_expr() == *expr).then_some(found)
    }

    /// The threshold as typed in the form (`0.3`).
    pub fn probability_text(&self) -> String {
        Expr::Score { model: model(), op: CmpOp::Ge, milli: self.milli }
            .to_string()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// The definition in one plain Chinese sentence.
    pub fn describe_zh(&self) -> String {
        let percent = self.milli as f64 / 10.0;
        let base = format!("预测 7 天内下单的概率不低于 {percent}%，并且");
        let names: Vec<&str> = self.intents.iter().map(TagPath::as_str).collect();
        match (names.is_empty(), self.join) {
            (true, _) => {
                format!("{base}近 {} 天内和公众号有过互动（点菜单、看文章、发消息、扫码或关注）的粉丝", self.days)
            }
            (false, IntentJoin::Either) => {
                format!("{base}近 {} 天内有过互动或带有意图标签（{}之一）的粉丝", self.days, names.join("、"))
            }
            (false, IntentJoin::Required) => {
                format!("{base}近 {} 天内有过互动、而且带有意图标签（{}之一）的粉丝", self.days, names.join("、"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::expr::parse;

    fn intents(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn the_default_is_a_score_of_30_percent_and_an_interaction_in_14_days() {
        let def = Definition::default();
        assert_eq!(def.to_expr().to_string(), "score(purchase_7d) >= 0.3 AND active(14d)");
        assert_eq!(def.probability_text(), "0.3");
        assert!(def.describe_zh().contains("不低于 30%") && def.describe_zh().contains("近 14 天"));
    }

    #[test]
    fn intents_join_either_as_engagement_or_as_a_further_requirement() {
        let either =
            Definition::from_form("0.5", "7", &intents(&["意图/咨询价格", "意图/想要优惠"]), "either").unwrap();
        assert_eq!(
            either.to_expr().to_string(),
            r#"score(purchase_7d) >= 0.5 AND (active(7d) OR "意图/咨询价格" OR "意图/想要优惠")"#
        );
        let required = Definition { join: IntentJoin::Required, ..either.clone() };
        assert_eq!(
            required.to_expr().to_string(),
            r#"score(purchase_7d) >= 0.5 AND active(7d) AND ("意图/咨询价格" OR "意图/想要优惠")"#
        );
        for def in [either, required, Definition::default()] {
            let back = parse(&def.to_expr().to_string()).unwrap();
            assert_eq!(Definition::from_expr(&back), Some(def));
        }
    }

    #[test]
    fn a_hand_edited_when_is_not_read_as_the_definition() {
        for when in [
            "score(purchase_7d) >= 0.3",
            "score(purchase_7d) >= 0.3 AND active(14d) AND orders(30d) >= 1",
            r#"score(purchase_7d) >= 0.3 OR active(14d)"#,
            "score(purchase_7d) > 0.3 AND active(14d)",
            "score(purchase_7d) >= 0.3 AND active(24h)",
            r#"score(purchase_7d) >= 0.3 AND active(14d) AND NOT "意图/投诉""#,
        ] {
            assert_eq!(Definition::from_expr(&parse(when).unwrap()), None, "{when}");
        }
    }

    #[test]
    fn out_of_range_input_is_refused_in_chinese() {
        for p in ["0", "-0.1", "1.01", "0.1234", "abc", "", "NaN", "inf"] {
            let error = Definition::from_form(p, "14", &[], "either").unwrap_err();
            assert!(error.contains("概率阈值") && error.contains("大于 0"), "{p}: {error}");
        }
        for d in ["0", "366", "1.5", "-3", ""] {
            let error = Definition::from_form("0.3", d, &[], "either").unwrap_err();
            assert!(error.contains("1 到 365"), "{d}: {error}");
        }
        let error = Definition::from_form("0.3", "14", &intents(&["兴趣/美妆"]), "either").unwrap_err();
        assert!(error.contains("不是意图标签"), "{error}");
        assert_eq!(Definition::from_form(" 1 ", "365", &[], "either").unwrap().milli, 1000);
        assert_eq!(Definition::from_form(".125", "1", &[], "either").unwrap().milli, 125);
    }
}
