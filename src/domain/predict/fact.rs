//! What the propensity model knows about a follower: small, copyable facts, each a time and a
//! kind. Strings (menu keys, quiz tags, QR scenes) are interned once by a [`Vocabulary`] so a
//! fact is 16 bytes: an account's millions of them stay in memory cheaply while a training run
//! streams them follower by follower.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Seconds in a day; every window and "days since" figure is counted in these.
pub const DAY: i64 = 86_400;

/// A small id standing for a string in a [`Vocabulary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(pub u16);

impl KeyId {
    /// Where strings go once a vocabulary is full: they still count in the overall figures,
    /// never as a chosen key, so an account with absurdly many menu keys degrades gently.
    pub const OTHER: KeyId = KeyId(u16::MAX);
}

/// One thing a follower did or received, at a unix time in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fact {
    /// Unix seconds.
    pub at: i64,
    pub kind: FactKind,
}

/// The kinds of history the store can stream: callback events, orders, campaign outcomes and
/// quiz results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    /// `subscribe`, with the QR scene when the follow came from a code.
    Follow { scene: Option<KeyId> },
    /// `SCAN` by someone already following.
    Scan { scene: KeyId },
    /// A `CLICK` menu event.
    MenuClick { key: KeyId },
    /// A `VIEW` menu event: the follower opened an article or page from the menu.
    ArticleView { key: KeyId },
    /// A text message the follower sent (the text itself is for the intent model, not this one).
    Text,
    /// An order reported by the shop; a zero amount (a free sample) is no purchase.
    Order { amount_fen: u32 },
    /// A campaign (群发) reached the follower.
    Delivery,
    /// The follower clicked a link in a campaign.
    LinkClick,
    /// A quiz result gave the follower this tag.
    QuizTag { tag: KeyId },
}

impl FactKind {
    /// Whether the follower did this themselves (a delivery is something done to them).
    pub fn is_interaction(self) -> bool {
        !matches!(self, FactKind::Delivery | FactKind::Follow { .. })
    }
}

/// Interns menu keys, quiz tags and QR scenes into [`KeyId`]s. One vocabulary serves an account;
/// it is serialisable so ids stay meaningful across a training run and the scoring that follows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Vocabulary {
    names: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, KeyId>,
}

impl Vocabulary {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id for `name`, adding it when new; [`KeyId::OTHER`] once 65,535 names are taken.
    pub fn intern(&mut self, name: &str) -> KeyId {
        if self.index.len() != self.names.len() {
            self.rebuild_index();
        }
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        if self.names.len() >= usize::from(KeyId::OTHER.0) {
            return KeyId::OTHER;
        }
        let id = KeyId(u16::try_from(self.names.len()).expect("bounded by KeyId::OTHER above"));
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }

    /// The id of a name already interned, without adding it.
    pub fn get(&self, name: &str) -> Option<KeyId> {
        if self.index.len() == self.names.len() {
            return self.index.get(name).copied();
        }
        // A deserialised vocabulary has no index yet; a scan is fine for the few lookups a
        // spec needs.
        self.names.iter().position(|n| n == name).map(|i| KeyId(i as u16))
    }

    /// The string behind an id.
    pub fn name(&self, id: KeyId) -> Option<&str> {
        self.names.get(usize::from(id.0)).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn rebuild_index(&mut self) {
        self.index = self.names.iter().enumerate().map(|(i, n)| (n.clone(), KeyId(i as u16))).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fact_stays_sixteen_bytes_so_millions_fit() {
        assert_eq!(std::mem::size_of::<Fact>(), 16);
    }

    #[test]
    fn interning_gives_one_id_per_name_and_survives_serde() {
        let mut vocab = Vocabulary::new();
        let a = vocab.intern("SKIN_TEST");
        let b = vocab.intern("SALE");
        assert_eq!(vocab.intern("SKIN_TEST"), a);
        assert_ne!(a, b);
        let json = serde_json::to_string(&vocab).unwrap();
        let mut back: Vocabulary = serde_json::from_str(&json).unwrap();
        assert_eq!(back.get("SALE"), Some(b));
        assert_eq!(back.intern("SALE"), b);
        assert_eq!(back.intern("NEW"), KeyId(2));
        assert_eq!(back.name(a), Some("SKIN_TEST"));
    }
}
