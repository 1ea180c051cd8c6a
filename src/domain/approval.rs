//! What an approval of a campaign covers (seed §6: 双重审核), and what changed since.
//!
//! An approver approves an audience as it is defined at that moment: the audience as written,
//! the messages, and the definition of every tag and segment the audience reaches, directly or
//! through dynamic tags' `when` conditions. [`Covered`] is that snapshot in a canonical order;
//! its [`Covered::fingerprint`] is stored with the approval and compared at send time, and
//! [`Covered::changes_since`] says in words what made an approval lapse. Pure: the database
//! walk that fills it is `crate::app::campaigns::approval`.

use blake2::{Blake2b512, Digest};
use serde::{Deserialize, Serialize};

/// A tag the audience reaches, as it is defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoveredTag {
    pub id: i64,
    pub path: String,
    pub sensitive: bool,
    /// A dynamic tag's condition, canonical text.
    pub when: Option<String>,
}

/// The saved segment an audience names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoveredSegment {
    pub id: i64,
    pub expr: String,
}

/// Everything an approval vouches for. Build it with sorted `tags` and `missing`, so equal
/// definitions give equal fingerprints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Covered {
    /// The campaign's audience as stored (`{"tag": ..}`, `{"segment": ..}`, `{"all": true}`).
    pub audience: serde_json::Value,
    pub segment: Option<CoveredSegment>,
    /// The control's message, then each variant as `{name, message}`.
    pub messages: Vec<serde_json::Value>,
    /// Every tag reached, by path.
    pub tags: Vec<CoveredTag>,
    /// Paths named along the way that are no tag (yet): creating one changes the audience.
    pub missing: Vec<String>,
}

/// One way the campaign or what it reaches differs from what was approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Audience,
    Content,
    /// The saved segment's expression.
    Segment {
        id: i64,
    },
    /// A tag reached then was renamed.
    Renamed {
        from: String,
        to: String,
    },
    Sensitivity {
        path: String,
        to: bool,
    },
    /// A dynamic tag's `when` (or whether it is dynamic at all).
    Definition {
        path: String,
    },
    /// A tag is reached now that was not when approved.
    Reached {
        path: String,
    },
    /// A tag reached when approved no longer is (deleted, or no longer named).
    Unreached {
        path: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Audience => write!(f, "the audience changed"),
            Self::Content => write!(f, "the content changed"),
            Self::Segment { id } => write!(f, "segment {id}'s expression changed"),
            Self::Renamed { from, to } => write!(f, "the tag `{from}` was renamed `{to}`"),
            Self::Sensitivity { path, to: true } => write!(f, "the tag `{path}` was marked sensitive"),
            Self::Sensitivity { path, to: false } => write!(f, "the tag `{path}` is no longer sensitive"),
            Self::Definition { path } => write!(f, "the dynamic tag `{path}`'s condition changed"),
            Self::Reached { path } => write!(f, "the audience now reaches the tag `{path}`"),
            Self::Unreached { path } => write!(f, "the audience no longer reaches the tag `{path}`"),
        }
    }
}

impl Covered {
    /// The sensitive tags reached, by path: when any, a second person must approve.
    pub fn sensitive(&self) -> Vec<&str> {
        self.tags.iter().filter(|t| t.sensitive).map(|t| t.path.as_str()).collect()
    }

    /// A digest of the whole snapshot, as hex. jsonb hands back objects with their keys in one
    /// order, and `tags`/`missing` are sorted, so equal definitions give equal digests.
    pub fn fingerprint(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("a snapshot serialises to JSON");
        let digest = Blake2b512::digest(&bytes);
        hex::encode(&digest[..32])
    }

    /// What differs from `approved`, in a stable order; empty when nothing does.
    pub fn changes_since(&self, approved: &Covered) -> Vec<Change> {
        let mut changes = Vec::new();
        if self.audience != approved.audience {
            changes.push(Change::Audience);
        }
        if self.messages != approved.messages {
            changes.push(Change::Content);
        }
        if let (Some(now), Some(then)) = (&self.segment, &approved.segment) {
            if now.id == then.id && now.expr != then.expr {
                changes.push(Change::Segment { id: now.id });
            }
        }
        for then in &approved.tags {
            match self.tags.iter().find(|t| t.id == then.id) {
                None => changes.push(Change::Unreached { path: then.path.clone() }),
                Some(now) => {
                    if now.path != then.path {
                        changes.push(Change::Renamed { from: then.path.clone(), to: now.path.clone() });
                    }
                    if now.sensitive != then.sensitive {
                        changes.push(Change::Sensitivity { path: now.path.clone(), to: now.sensitive });
                    }
                    if now.when != then.when {
                        changes.push(Change::Definition { path: now.path.clone() });
                    }
                }
            }
        }
        for now in self.tags.iter().filter(|now| !approved.tags.iter().any(|t| t.id == now.id)) {
            changes.push(Change::Reached { path: now.path.clone() });
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: i64, path: &str, sensitive: bool, when: Option<&str>) -> CoveredTag {
        CoveredTag { id, path: path.into(), sensitive, when: when.map(str::to_owned) }
    }

    fn covered(tags: Vec<CoveredTag>) -> Covered {
        Covered {
            audience: serde_json::json!({ "segment": 1 }),
            segment: Some(CoveredSegment { id: 1, expr: "\"a\"".into() }),
            messages: vec![serde_json::json!({ "type": "text", "content": "hi" })],
            tags,
            missing: Vec::new(),
        }
    }

    #[test]
    fn equal_snapshots_have_equal_fingerprints_and_no_changes() {
        let a = covered(vec![tag(1, "a", true, None)]);
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
        assert!(a.changes_since(&a).is_empty());
    }

    #[test]
    fn every_kind_of_change_moves_the_fingerprint_and_is_named() {
        let approved = covered(vec![tag(1, "a", true, None), tag(2, "b", false, Some("orders(all) >= 1"))]);
        let mut now = approved.clone();
        now.tags[0].path = "c".into();
        now.tags[1].when = Some("orders(all) >= 2".into());
        now.tags[1].sensitive = true;
        now.messages[0] = serde_json::json!({ "type": "text", "content": "bye" });
        now.segment.as_mut().unwrap().expr = "\"c\"".into();
        now.tags.push(tag(3, "d", false, None));
        assert_ne!(now.fingerprint(), approved.fingerprint());
        assert_eq!(
            now.changes_since(&approved),
            vec![
                Change::Content,
                Change::Segment { id: 1 },
                Change::Renamed { from: "a".into(), to: "c".into() },
                Change::Sensitivity { path: "b".into(), to: true },
                Change::Definition { path: "b".into() },
                Change::Reached { path: "d".into() },
            ]
        );
        let mut gone = approved.clone();
        gone.tags.remove(0);
        assert_eq!(gone.changes_since(&approved), vec![Change::Unreached { path: "a".into() }]);
    }

    #[test]
    fn only_sensitive_tags_are_listed_as_sensitive() {
        let c = covered(vec![tag(1, "a", true, None), tag(2, "b", false, None)]);
        assert_eq!(c.sensitive(), vec!["a"]);
    }
}
