//! Automatic rules: when a follower does something (clicks a menu, sends a keyword, scans a QR
//! scene, shares a place), add or remove tags, reply, or start a quiz. Matching is pure and runs
//! on a [`RuleSet`] held in memory, so the callback never waits on a query or on WeChat.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::tag::TagPath;

/// What a rule reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A menu CLICK; key = the button's EventKey.
    Click,
    /// A menu VIEW; key = the URL.
    View,
    /// A text message; key = the whole trimmed message.
    Keyword,
    /// A follow; key = the QR scene (without `qrscene_`), or `*` for any follow.
    Subscribe,
    /// A follower scanning a QR code; key = the scene.
    Scan,
    /// A location (message or report) inside a geofence; key = `lat,lng,radius_km`.
    Location,
}

impl Trigger {
    /// The trigger as operators read it in the console.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Click => "点击菜单",
            Self::View => "打开菜单链接",
            Self::Keyword => "发送关键词",
            Self::Subscribe => "关注（场景值）",
            Self::Scan => "扫码（场景值）",
            Self::Location => "位置在范围内",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Click => "click",
            Self::View => "view",
            Self::Keyword => "keyword",
            Self::Subscribe => "subscribe",
            Self::Scan => "scan",
            Self::Location => "location",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "click" => Self::Click,
            "view" => Self::View,
            "keyword" => Self::Keyword,
            "subscribe" => Self::Subscribe,
            "scan" => Self::Scan,
            "location" => Self::Location,
            _ => return None,
        })
    }
}

/// Why a geofence key (`lat,lng,radius_km`) was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeofenceError {
    /// One of the comma-separated parts, trimmed, is not a number.
    #[error("「{part}」不是数字")]
    NotANumber { part: String },
    /// Two or four numbers, say.
    #[error("位置范围应写成「纬度,经度,半径公里」，如 39.9,116.4,5，却是「{key}」")]
    WrongShape { key: String },
    #[error("「{lat},{lng}」不是地球上的位置：纬度在 -90 到 90 之间，经度在 -180 到 180 之间")]
    OffEarth { lat: f64, lng: f64 },
    /// Not above 0 or beyond [`MAX_RADIUS_KM`].
    #[error("半径 {radius_km} 公里不合法：须大于 0")]
    BadRadius { radius_km: f64 },
}

/// Largest geofence radius: half the Earth's circumference, about.
pub const MAX_RADIUS_KM: f64 = 20_000.0;

/// A circle on the map: `lat,lng,radius_km`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geofence {
    pub lat: f64,
    pub lng: f64,
    pub radius_km: f64,
}

impl Geofence {
    /// Parses `lat,lng,radius_km`.
    ///
    /// # Errors
    /// [`GeofenceError`]: not three numbers, or out of range.
    pub fn parse(key: &str) -> Result<Self, GeofenceError> {
        let parts: Vec<f64> = key
            .split(',')
            .map(|p| p.trim().parse::<f64>().map_err(|_| GeofenceError::NotANumber { part: p.trim().to_owned() }))
            .collect::<Result<_, _>>()?;
        let [lat, lng, radius_km] = parts[..] else {
            return Err(GeofenceError::WrongShape { key: key.to_owned() });
        };
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
            return Err(GeofenceError::OffEarth { lat, lng });
        }
        if !(radius_km > 0.0 && radius_km <= MAX_RADIUS_KM) {
            return Err(GeofenceError::BadRadius { radius_km });
        }
        Ok(Self { lat, lng, radius_km })
    }

    /// Whether a point lies inside (great-circle distance).
    pub fn contains(&self, lat: f64, lng: f64) -> bool {
        const EARTH_RADIUS_KM: f64 = 6_371.0;
        let (p1, p2) = (self.lat.to_radians(), lat.to_radians());
        let dp = (lat - self.lat).to_radians();
        let dl = (lng - self.lng).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        let distance = 2.0 * EARTH_RADIUS_KM * a.sqrt().atan2((1.0 - a).sqrt());
        distance <= self.radius_km
    }
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("请填写 key（菜单 key、关键词或场景值）")]
    EmptyKey,
    #[error("规则至少要做一件事：打上或移除标签、回复文字，或开始测验")]
    DoesNothing,
    #[error("同一个标签「{path}」不能既打上又移除")]
    AddedAndRemoved { path: TagPath },
    #[error("回复文字不能只有空格")]
    EmptyReply,
    /// A location rule's key is not a geofence.
    #[error("{0}")]
    Geofence(#[from] GeofenceError),
}

/// A rule as operators write it (`POST /rules`, playbooks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub on: Trigger,
    pub key: String,
    #[serde(default)]
    pub add: Vec<TagPath>,
    #[serde(default)]
    pub remove: Vec<TagPath>,
    #[serde(default)]
    pub reply: Option<String>,
    #[serde(default)]
    pub start_quiz: Option<String>,
}

impl RuleSpec {
    /// Checks what the types cannot: a rule must do something, and its key must fit its trigger.
    ///
    /// # Errors
    /// [`RuleError`]: what is wrong.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.key.trim().is_empty() {
            return Err(RuleError::EmptyKey);
        }
        if self.add.is_empty() && self.remove.is_empty() && self.reply.is_none() && self.start_quiz.is_none() {
            return Err(RuleError::DoesNothing);
        }
        if let Some(both) = self.add.iter().find(|p| self.remove.contains(p)) {
            return Err(RuleError::AddedAndRemoved { path: both.clone() });
        }
        if self.reply.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err(RuleError::EmptyReply);
        }
        if self.on == Trigger::Location {
            Geofence::parse(&self.key)?;
        }
        Ok(())
    }

    /// The key as matched: keywords and scenes compare trimmed.
    pub fn normalized_key(&self) -> String {
        self.key.trim().to_owned()
    }
}

/// A stored rule, ready to match.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub spec: RuleSpec,
    /// Parsed once for location rules.
    pub geofence: Option<Geofence>,
}

/// What a follower did, as far as rules care.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action<'a> {
    Click(&'a str),
    View(&'a str),
    Text(&'a str),
    /// Follow, with the QR scene if any.
    Subscribe(Option<&'a str>),
    Scan(&'a str),
    Location {
        lat: f64,
        lng: f64,
    },
}

/// Every rule, indexed for matching in memory.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    by_key: HashMap<(Trigger, String), Vec<Rule>>,
    locations: Vec<Rule>,
}

impl RuleSet {
    pub fn new(rules: impl IntoIterator<Item = Rule>) -> Self {
        let mut set = Self::default();
        for rule in rules {
            if rule.spec.on == Trigger::Location {
                set.locations.push(rule);
            } else {
                set.by_key.entry((rule.spec.on, rule.spec.normalized_key())).or_default().push(rule);
            }
        }
        for rules in set.by_key.values_mut() {
            rules.sort_by_key(|r| r.id);
        }
        set.locations.sort_by_key(|r| r.id);
        set
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty() && self.locations.is_empty()
    }

    /// The rules an action triggers, oldest first.
    pub fn matching(&self, action: Action<'_>) -> Vec<&Rule> {
        let keyed = |trigger: Trigger, key: &str| self.by_key.get(&(trigger, key.trim().to_owned()));
        match action {
            Action::Click(key) => keyed(Trigger::Click, key).map(|r| r.iter().collect()).unwrap_or_default(),
            Action::View(url) => keyed(Trigger::View, url).map(|r| r.iter().collect()).unwrap_or_default(),
            Action::Text(text) => keyed(Trigger::Keyword, text).map(|r| r.iter().collect()).unwrap_or_default(),
            Action::Scan(scene) => keyed(Trigger::Scan, scene).map(|r| r.iter().collect()).unwrap_or_default(),
            Action::Subscribe(scene) => {
                let mut rules: Vec<&Rule> =
                    keyed(Trigger::Subscribe, "*").map(|r| r.iter().collect()).unwrap_or_default();
                if let Some(scene) = scene {
                    rules.extend(keyed(Trigger::Subscribe, scene).into_iter().flatten());
                }
                rules.sort_by_key(|r| r.id);
                rules
            }
            Action::Location { lat, lng } => {
                self.locations.iter().filter(|r| r.geofence.is_some_and(|g| g.contains(lat, lng))).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: i64, on: Trigger, key: &str) -> Rule {
        let spec = RuleSpec {
            on,
            key: key.to_owned(),
            add: vec![],
            remove: vec![],
            reply: Some("ok".into()),
            start_quiz: None,
        };
        let geofence = (on == Trigger::Location).then(|| Geofence::parse(key).unwrap());
        Rule { id, spec, geofence }
    }

    #[test]
    fn rules_match_by_trigger_and_key() {
        let set = RuleSet::new([
            rule(1, Trigger::Click, "SKIN_TEST"),
            rule(2, Trigger::Keyword, "营业时间"),
            rule(3, Trigger::Subscribe, "*"),
            rule(4, Trigger::Subscribe, "poster"),
            rule(5, Trigger::Location, "39.9042,116.4074,5"),
        ]);
        assert_eq!(set.matching(Action::Click("SKIN_TEST")).len(), 1);
        assert!(set.matching(Action::Click("OTHER")).is_empty());
        assert_eq!(set.matching(Action::Text(" 营业时间 ")).len(), 1);
        assert!(set.matching(Action::Text("营业时间?")).is_empty());
        assert_eq!(set.matching(Action::Subscribe(Some("poster"))).iter().map(|r| r.id).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(set.matching(Action::Subscribe(None)).len(), 1);
        assert_eq!(set.matching(Action::Location { lat: 39.91, lng: 116.40 }).len(), 1);
        assert!(set.matching(Action::Location { lat: 31.23, lng: 121.47 }).is_empty());
    }

    #[test]
    fn geofences_parse_and_measure() {
        assert_eq!(Geofence::parse("39.9,116.4"), Err(GeofenceError::WrongShape { key: "39.9,116.4".into() }));
        assert_eq!(Geofence::parse("91,0,1"), Err(GeofenceError::OffEarth { lat: 91.0, lng: 0.0 }));
        assert_eq!(Geofence::parse("0,0,0"), Err(GeofenceError::BadRadius { radius_km: 0.0 }));
        assert_eq!(Geofence::parse("0, north ,1"), Err(GeofenceError::NotANumber { part: "north".into() }));
        assert!(Geofence::parse("91,0,1").unwrap_err().to_string().starts_with("「91,0」不是地球上的位置"));
        assert_eq!(Geofence::parse("0,0,-1.5").unwrap_err().to_string(), "半径 -1.5 公里不合法：须大于 0");
        let beijing = Geofence::parse("39.9042, 116.4074, 30").unwrap();
        assert!(beijing.contains(40.0, 116.3));
        assert!(!beijing.contains(39.1, 117.2)); // Tianjin, ~110 km away
    }

    #[test]
    fn a_rule_must_do_something_sensible() {
        let mut spec = rule(1, Trigger::Click, "K").spec;
        spec.reply = None;
        assert_eq!(spec.validate(), Err(RuleError::DoesNothing));
        spec.add = vec![TagPath::parse("a/b").unwrap()];
        assert!(spec.validate().is_ok());
        spec.remove = spec.add.clone();
        let error = spec.validate().unwrap_err();
        assert_eq!(error, RuleError::AddedAndRemoved { path: TagPath::parse("a/b").unwrap() });
        assert_eq!(error.to_string(), "同一个标签「a/b」不能既打上又移除");
        spec.remove.clear();
        spec.key = " ".into();
        assert_eq!(spec.validate(), Err(RuleError::EmptyKey));
        spec.key = "K".into();
        spec.reply = Some(" ".into());
        assert_eq!(spec.validate(), Err(RuleError::EmptyReply));
    }

    #[test]
    fn a_location_rule_keeps_the_geofence_error_as_its_source() {
        let mut spec = rule(1, Trigger::Location, "39.9,116.4,5").spec;
        spec.key = "39.9,116.4".into();
        let error = spec.validate().unwrap_err();
        let inner = GeofenceError::WrongShape { key: "39.9,116.4".into() };
        assert_eq!(error.to_string(), inner.to_string());
        assert_eq!(error, RuleError::Geofence(inner));
        let source = std::error::Error::source(&error).expect("the geofence error");
        assert!(source.downcast_ref::<GeofenceError>().is_some());
    }
}
