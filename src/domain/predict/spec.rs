//! Which features a model uses and what they are called. The fixed part (orders, clicks,
//! messages, campaigns…) is the same for every account; the account-specific part (its most
//! clicked menu keys, its quiz tags) is chosen from training data by [`SpecBuilder`] and kept,
//! serialised, with the model, so scoring lays out vectors exactly as training did.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::fact::{Fact, FactKind, KeyId, Vocabulary};

/// At most this many menu keys get features of their own (three windows each).
pub const MAX_MENU_KEYS: usize = 16;
/// At most this many quiz tags get a feature of their own.
pub const MAX_TAGS: usize = 32;

/// A feature's stable name (for storage and code) and its name for the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureName {
    pub id: String,
    pub zh: String,
}

/// The fixed features, in layout order: (id, Chinese display name). Counts, amounts and day
/// spans are stored as ln(1 + x), since a handful of very active followers would otherwise
/// dominate the standardised scale.
pub(crate) const BASE: [(&str, &str); 26] = [
    ("days_since_follow", "关注天数"),
    ("days_since_last_interaction", "距上次互动天数"),
    ("has_ordered", "是否下过单"),
    ("days_since_last_order", "距上次下单天数"),
    ("orders_30d", "近30天订单数"),
    ("orders_90d", "近90天订单数"),
    ("orders_all", "累计订单数"),
    ("spend_90d", "近90天消费金额（元）"),
    ("spend_all", "累计消费金额（元）"),
    ("avg_order_value", "平均客单价（元）"),
    ("clicks_7d", "近7天点击菜单次数"),
    ("clicks_30d", "近30天点击菜单次数"),
    ("clicks_90d", "近90天点击菜单次数"),
    ("views_7d", "近7天阅读文章次数"),
    ("views_30d", "近30天阅读文章次数"),
    ("views_90d", "近90天阅读文章次数"),
    ("texts_7d", "近7天发消息条数"),
    ("texts_30d", "近30天发消息条数"),
    ("texts_90d", "近90天发消息条数"),
    ("deliveries_30d", "近30天收到群发次数"),
    ("deliveries_90d", "近90天收到群发次数"),
    ("link_clicks_30d", "近30天点击群发链接次数"),
    ("link_clicks_90d", "近90天点击群发链接次数"),
    ("link_click_rate_90d", "近90天群发链接点击率"),
    ("scans_90d", "近90天扫码次数"),
    ("quiz_tags", "测试得到的标签数"),
];

/// Positions in the fixed part that the RFM baseline reads.
pub(crate) mod idx {
    pub const HAS_ORDERED: usize = 2;
    pub const DAYS_SINCE_LAST_ORDER: usize = 3;
    pub const ORDERS_ALL: usize = 6;
    pub const SPEND_ALL: usize = 8;
}

/// The windows, in days, of the per-menu-key click features.
pub(crate) const KEY_WINDOWS: [u32; 3] = [7, 30, 90];

/// Which account-specific keys and tags become features. Serialisable: it is stored with the
/// model it was trained with.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Menu `CLICK` keys, most clicked first.
    pub menu_keys: Vec<String>,
    /// Quiz result tags, most common first.
    pub tags: Vec<String>,
}

impl FeatureSpec {
    /// How long a feature vector is.
    pub fn len(&self) -> usize {
        BASE.len() + self.menu_keys.len() * KEY_WINDOWS.len() + self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every feature's name, in vector order.
    pub fn names(&self) -> Vec<FeatureName> {
        let mut names: Vec<FeatureName> =
            BASE.iter().map(|(id, zh)| FeatureName { id: (*id).to_owned(), zh: (*zh).to_owned() }).collect();
        for key in &self.menu_keys {
            for days in KEY_WINDOWS {
                names.push(FeatureName {
                    id: format!("clicks_{days}d:{key}"),
                    zh: format!("近{days}天点击菜单「{key}」次数"),
                });
            }
        }
        for tag in &self.tags {
            names.push(FeatureName { id: format!("tag:{tag}"), zh: format!("带有测试标签「{tag}」") });
        }
        names
    }

    /// Resolves the names against the account's vocabulary, ready to compute features. A name
    /// the vocabulary has never seen keeps its slot and always reads 0.
    pub fn bind(&self, vocab: &Vocabulary) -> Extractor {
        Extractor {
            spec: self.clone(),
            keys: self.menu_keys.iter().take(MAX_MENU_KEYS).map(|k| vocab.get(k)).collect(),
            tags: self.tags.iter().take(MAX_TAGS).map(|t| vocab.get(t)).collect(),
        }
    }
}

/// A [`FeatureSpec`] bound to ids; `features.rs` computes vectors with it.
#[derive(Debug, Clone)]
pub struct Extractor {
    pub(crate) spec: FeatureSpec,
    pub(crate) keys: Vec<Option<KeyId>>,
    pub(crate) tags: Vec<Option<KeyId>>,
}

impl Extractor {
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// How long each feature vector is.
    pub fn len(&self) -> usize {
        BASE.len() + self.keys.len() * KEY_WINDOWS.len() + self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Counts menu keys and quiz tags over training facts to choose a [`FeatureSpec`]. Only facts
/// at or before `cutoff` count, so the choice itself cannot peek past the training cutoff.
#[derive(Debug)]
pub struct SpecBuilder {
    cutoff: i64,
    keys: HashMap<KeyId, u64>,
    tags: HashMap<KeyId, u64>,
}

impl SpecBuilder {
    pub fn new(cutoff: i64) -> Self {
        Self { cutoff, keys: HashMap::new(), tags: HashMap::new() }
    }

    /// Counts one follower's facts.
    pub fn observe(&mut self, facts: &[Fact]) {
        for fact in facts.iter().filter(|f| f.at <= self.cutoff) {
            match fact.kind {
                FactKind::MenuClick { key } if key != KeyId::OTHER => *self.keys.entry(key).or_default() += 1,
                FactKind::QuizTag { tag } if tag != KeyId::OTHER => *self.tags.entry(tag).or_default() += 1,
                _ => {}
            }
        }
    }

    /// The `top_keys` most clicked menu keys and `top_tags` most common quiz tags (ties by name,
    /// so the same data always gives the same spec).
    pub fn build(&self, vocab: &Vocabulary, top_keys: usize, top_tags: usize) -> FeatureSpec {
        FeatureSpec {
            menu_keys: top(&self.keys, vocab, top_keys.min(MAX_MENU_KEYS)),
            tags: top(&self.tags, vocab, top_tags.min(MAX_TAGS)),
        }
    }
}

fn top(counts: &HashMap<KeyId, u64>, vocab: &Vocabulary, n: usize) -> Vec<String> {
    let mut named: Vec<(u64, &str)> =
        counts.iter().filter_map(|(id, c)| vocab.name(*id).map(|name| (*c, name))).collect();
    named.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    named.into_iter().take(n).map(|(_, name)| name.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_picks_the_most_clicked_keys_before_the_cutoff_only() {
        let mut vocab = Vocabulary::new();
        let sale = vocab.intern("SALE");
        let new = vocab.intern("NEW");
        let late = vocab.intern("LATE");
        let click = |at, key| Fact { at, kind: FactKind::MenuClick { key } };
        let mut builder = SpecBuilder::new(100);
        builder.observe(&[
            click(1, sale),
            click(2, sale),
            click(3, new),
            click(101, late),
            click(102, late),
            click(103, late),
        ]);
        let spec = builder.build(&vocab, 5, 5);
        assert_eq!(spec.menu_keys, vec!["SALE".to_owned(), "NEW".to_owned()]);
        assert_eq!(spec.len(), BASE.len() + 6);
        let names = spec.names();
        assert_eq!(names[BASE.len()].zh, "近7天点击菜单「SALE」次数");
        assert_eq!(names[11].zh, "近30天点击菜单次数");
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<FeatureSpec>(&json).unwrap(), spec);
    }
}
