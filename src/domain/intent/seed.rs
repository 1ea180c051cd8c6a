//! Starting examples from keyword rules, before an operator has labelled anything: a message
//! that contains a rule's keyword becomes a weak example of the rule's intent.
//!
//! They are weak on purpose. Keywords are blunt (`退` is in 退货 and in 退出群聊), so a seeded
//! example is marked [`Source::Keyword`], counts [`WEAK_WEIGHT`] of an operator's label in
//! training, is dropped when an operator labels the same text, and is never scored by
//! cross-validation. A message whose keywords point at two intents teaches nothing and is left
//! out. Messages matching no keyword are not taken as 其他: a price question in words no rule
//! lists would teach the model the opposite of the truth.

use std::collections::HashSet;

use super::tokenize::normalize;
use super::{Example, OTHER, Source};

/// A keyword-seeded example counts this much of an operator's label.
pub const WEAK_WEIGHT: f64 = 0.3;

/// Weak examples from `rules` (keyword, intent) over `messages`, one per distinct message (after
/// normalisation, so `ＶＣ` matches `vc`), in the order of `messages`.
#[must_use]
pub fn seed_examples<K, I, M>(rules: &[(K, I)], messages: &[M]) -> Vec<Example>
where
    K: AsRef<str>,
    I: AsRef<str>,
    M: AsRef<str>,
{
    let rules: Vec<(String, &str)> = rules
        .iter()
        .map(|(keyword, intent)| (normalize(keyword.as_ref()), intent.as_ref()))
        .filter(|(keyword, intent)| !keyword.trim().is_empty() && !intent.trim().is_empty())
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for message in messages {
        let text = message.as_ref();
        let normal = normalize(text);
        if !seen.insert(normal.clone()) {
            continue;
        }
        let mut intents = rules.iter().filter(|(keyword, _)| normal.contains(keyword.as_str())).map(|(_, i)| *i);
        let Some(first) = intents.next() else { continue };
        if intents.all(|other| other == first) {
            let intent = (first != OTHER).then(|| first.to_owned());
            out.push(Example { text: text.to_owned(), intent, source: Source::Keyword });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: [(&str, &str); 4] =
        [("多少钱", "咨询价格"), ("价格", "咨询价格"), ("退货", "售后问题"), ("优惠", "想要优惠")];

    #[test]
    fn a_message_with_a_keyword_becomes_a_weak_example_of_its_intent() {
        let seeded = seed_examples(&RULES, &["这个多少钱", "今天天气真好", "怎么退货呀"]);
        assert_eq!(seeded.len(), 2, "{seeded:?}");
        assert_eq!(seeded[0].intent.as_deref(), Some("咨询价格"));
        assert_eq!(seeded[1].intent.as_deref(), Some("售后问题"));
        assert!(seeded.iter().all(|e| e.source == Source::Keyword && e.weight() == WEAK_WEIGHT));
    }

    #[test]
    fn keywords_of_two_intents_in_one_message_seed_nothing() {
        let seeded = seed_examples(&RULES, &["退货的话优惠还有吗", "价格多少钱"]);
        assert_eq!(seeded.len(), 1, "two keywords of one intent are fine: {seeded:?}");
        assert_eq!(seeded[0].text, "价格多少钱");
    }

    #[test]
    fn matching_ignores_width_and_case_and_repeats_are_seeded_once() {
        let rules = [("VC", "产品兴趣/精华")];
        let seeded = seed_examples(&rules, &["ｖｃ精华怎么用", "vc精华怎么用", "Vc精华怎么用"]);
        assert_eq!(seeded.len(), 1, "{seeded:?}");
    }

    #[test]
    fn empty_keywords_match_nothing() {
        let rules = [("  ", "咨询价格"), ("", "售后问题")];
        assert!(seed_examples(&rules, &["随便说点什么"]).is_empty());
    }
}
