//! Passive replies (被动回复, wechat-api.md §5): the XML body answering a push.
//!
//! Owns: the reply kinds and their XML form. Keeping that XML valid whatever the content (`]]>`
//! split across CDATA sections, characters XML 1.0 forbids removed) is `wechat::cdata`'s, shared
//! with the pushes message/write.rs writes.
//!
//! Must not: import anything else from this crate (the `wechat` module is the protocol layer),
//! encrypt (crypto.rs wraps the result in safe mode), decide *what* to reply, or fail: every
//! `Reply` has an XML form.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::cdata::push_cdata_element;
/// Re-exported from `wechat::cdata`, which writes the text of replies and pushes alike.
pub use super::cdata::sanitize;

/// WeChat shows at most 8 articles in a news reply; [`Reply::to_xml`] drops the rest.
/// (Since 2018-10-12 a news reply to an ordinary *user message* may carry only 1: choosing how
/// many to send is the caller's job.)
pub const MAX_NEWS_ARTICLES: usize = 8;

/// One passive reply. Serialized with a `type` tag (`{"type":"text","content":"hi"}`) so rules
/// can store replies as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Newlines and `<a href>` links are allowed in the content.
    Text {
        content: String,
    },
    /// `media_id` of uploaded (temporary or permanent) media.
    Image {
        media_id: String,
    },
    Voice {
        media_id: String,
    },
    Video {
        media_id: String,
        title: Option<String>,
        description: Option<String>,
    },
    /// Only the thumbnail is required by WeChat; absent elements are left out.
    Music {
        title: Option<String>,
        description: Option<String>,
        music_url: Option<String>,
        hq_music_url: Option<String>,
        thumb_media_id: String,
    },
    /// At most [`MAX_NEWS_ARTICLES`] are sent; WeChat rejects a news reply with none, so give
    /// at least one.
    News {
        articles: Vec<Article>,
    },
}

/// One article of a news reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Article {
    pub title: String,
    pub description: String,
    /// Cover image: large 360×200, small 200×200.
    pub pic_url: String,
    /// Where a tap leads.
    pub url: String,
}

impl Reply {
    /// The `MsgType` this reply is sent as.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Video { .. } => "video",
            Self::Music { .. } => "music",
            Self::News { .. } => "news",
        }
    }

    /// The reply body. `to_user` is the follower's openid (the push's `FromUserName`),
    /// `from_user` the account's `gh_` id (the push's `ToUserName`), `create_time` now in unix
    /// seconds. Every text value is sanitised (see [`sanitize`]) and written as CDATA, with `]]>`
    /// split across sections, so the XML is well-formed for any input.
    pub fn to_xml(&self, to_user: &str, from_user: &str, create_time: i64) -> String {
        let mut out = String::with_capacity(192 + self.content_len());
        out.push_str("<xml>");
        push_cdata_element(&mut out, "ToUserName", to_user);
        push_cdata_element(&mut out, "FromUserName", from_user);
        out.push_str("<CreateTime>");
        // Writing to a String cannot fail.
        let _ = write!(out, "{create_time}");
        out.push_str("</CreateTime>");
        push_cdata_element(&mut out, "MsgType", self.msg_type());
        match self {
            Self::Text { content } => push_cdata_element(&mut out, "Content", content),
            Self::Image { media_id } => {
                out.push_str("<Image>");
                push_cdata_element(&mut out, "MediaId", media_id);
                out.push_str("</Image>");
            }
            Self::Voice { media_id } => {
                out.push_str("<Voice>");
                push_cdata_element(&mut out, "MediaId", media_id);
                out.push_str("</Voice>");
            }
            Self::Video { media_id, title, description } => {
                out.push_str("<Video>");
                push_cdata_element(&mut out, "MediaId", media_id);
                push_optional(&mut out, "Title", title.as_deref());
                push_optional(&mut out, "Description", description.as_deref());
                out.push_str("</Video>");
            }
            Self::Music { title, description, music_url, hq_music_url, thumb_media_id } => {
                out.push_str("<Music>");
                push_optional(&mut out, "Title", title.as_deref());
                push_optional(&mut out, "Description", description.as_deref());
                push_optional(&mut out, "MusicUrl", music_url.as_deref());
                push_optional(&mut out, "HQMusicUrl", hq_music_url.as_deref());
                push_cdata_element(&mut out, "ThumbMediaId", thumb_media_id);
                out.push_str("</Music>");
            }
            Self::News { articles } => {
                let articles = &articles[..articles.len().min(MAX_NEWS_ARTICLES)];
                out.push_str("<ArticleCount>");
                let _ = write!(out, "{}", articles.len());
                out.push_str("</ArticleCount><Articles>");
                for article in articles {
                    out.push_str("<item>");
                    push_cdata_element(&mut out, "Title", &article.title);
                    push_cdata_element(&mut out, "Description", &article.description);
                    push_cdata_element(&mut out, "PicUrl", &article.pic_url);
                    push_cdata_element(&mut out, "Url", &article.url);
                    out.push_str("</item>");
                }
                out.push_str("</Articles>");
            }
        }
        out.push_str("</xml>");
        out
    }

    /// Rough size of the variable text, to size the output buffer once.
    fn content_len(&self) -> usize {
        let opt = |s: &Option<String>| s.as_deref().map_or(0, str::len);
        match self {
            Self::Text { content } => content.len(),
            Self::Image { media_id } | Self::Voice { media_id } => media_id.len(),
            Self::Video { media_id, title, description } => media_id.len() + opt(title) + opt(description) + 64,
            Self::Music { title, description, music_url, hq_music_url, thumb_media_id } => {
                opt(title) + opt(description) + opt(music_url) + opt(hq_music_url) + thumb_media_id.len() + 160
            }
            Self::News { articles } => articles
                .iter()
                .take(MAX_NEWS_ARTICLES)
                .map(|a| a.title.len() + a.description.len() + a.pic_url.len() + a.url.len() + 160)
                .sum(),
        }
    }
}

fn push_optional(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        push_cdata_element(out, name, value);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::wechat::message::{Inbound, flatten, parse};

    const OPENID: &str = "oV5CrjpxgaGXNHIQigzNlgLTnwic";
    const GH: &str = "gh_4d00ed8d6399";

    fn s(v: &str) -> String {
        v.to_owned()
    }

    /// to_xml, read back with quick-xml, as a path → text map.
    fn read_back(reply: &Reply) -> BTreeMap<String, String> {
        let xml = reply.to_xml(OPENID, GH, 1_700_000_000);
        let fields = flatten(&xml).unwrap_or_else(|err| panic!("{xml}: {err:?}"));
        let map: BTreeMap<String, String> = fields.iter().cloned().collect();
        assert_eq!(map.len(), fields.len(), "no repeated paths");
        map
    }

    fn expect(msg_type: &str, body: &[(&str, &str)]) -> BTreeMap<String, String> {
        [("ToUserName", OPENID), ("FromUserName", GH), ("CreateTime", "1700000000"), ("MsgType", msg_type)]
            .into_iter()
            .chain(body.iter().copied())
            .map(|(k, v)| (s(k), s(v)))
            .collect()
    }

    fn article(n: usize) -> Article {
        Article {
            title: format!("title {n}"),
            description: format!("desc {n}"),
            pic_url: format!("https://example.com/{n}.jpg"),
            url: format!("https://example.com/{n}"),
        }
    }

    #[test]
    fn text_reply_matches_the_documented_layout() {
        let xml = Reply::Text { content: s("hi") }.to_xml("openid", "gh_x", 12345678);
        assert_eq!(
            xml,
            "<xml><ToUserName><![CDATA[openid]]></ToUserName><FromUserName><![CDATA[gh_x]]></FromUserName>\
             <CreateTime>12345678</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[hi]]></Content></xml>"
        );
    }

    #[test]
    fn text_reply_round_trips() {
        let content = "营业时间 9:00\n<a href=\"https://x\">link</a> 😀";
        let reply = Reply::Text { content: s(content) };
        assert_eq!(read_back(&reply), expect("text", &[("Content", content)]));
    }

    #[test]
    fn image_and_voice_replies_round_trip() {
        let image = Reply::Image { media_id: s("MEDIA_1") };
        assert_eq!(read_back(&image), expect("image", &[("Image.MediaId", "MEDIA_1")]));
        let voice = Reply::Voice { media_id: s("MEDIA_2") };
        assert_eq!(read_back(&voice), expect("voice", &[("Voice.MediaId", "MEDIA_2")]));
    }

    #[test]
    fn video_reply_round_trips_with_and_without_optional_text() {
        let full = Reply::Video { media_id: s("V"), title: Some(s("标题")), description: Some(s("d ]]> e")) };
        assert_eq!(
            read_back(&full),
            expect("video", &[("Video.MediaId", "V"), ("Video.Title", "标题"), ("Video.Description", "d ]]> e")])
        );
        let bare = Reply::Video { media_id: s("V"), title: None, description: None };
        assert_eq!(read_back(&bare), expect("video", &[("Video.MediaId", "V")]));
    }

    #[test]
    fn music_reply_round_trips() {
        let music = Reply::Music {
            title: Some(s("song")),
            description: Some(s("desc")),
            music_url: Some(s("https://m/1.mp3")),
            hq_music_url: Some(s("https://m/1-hq.mp3")),
            thumb_media_id: s("THUMB"),
        };
        assert_eq!(
            read_back(&music),
            expect(
                "music",
                &[
                    ("Music.Title", "song"),
                    ("Music.Description", "desc"),
                    ("Music.MusicUrl", "https://m/1.mp3"),
                    ("Music.HQMusicUrl", "https://m/1-hq.mp3"),
                    ("Music.ThumbMediaId", "THUMB"),
                ]
            )
        );
        let thumb_only = Reply::Music {
            title: None,
            description: None,
            music_url: None,
            hq_music_url: None,
            thumb_media_id: s("THUMB"),
        };
        assert_eq!(read_back(&thumb_only), expect("music", &[("Music.ThumbMediaId", "THUMB")]));
    }

    #[test]
    fn news_reply_round_trips() {
        let news = Reply::News { articles: vec![article(1), article(2)] };
        let mut expected = expect("news", &[("ArticleCount", "2")]);
        for (i, a) in [article(1), article(2)].iter().enumerate() {
            expected.insert(format!("Articles.item[{i}].Title"), a.title.clone());
            expected.insert(format!("Articles.item[{i}].Description"), a.description.clone());
            expected.insert(format!("Articles.item[{i}].PicUrl"), a.pic_url.clone());
            expected.insert(format!("Articles.item[{i}].Url"), a.url.clone());
        }
        assert_eq!(read_back(&news), expected);
    }

    #[test]
    fn news_reply_is_truncated_to_eight_articles() {
        let news = Reply::News { articles: (0..12).map(article).collect() };
        let map = read_back(&news);
        assert_eq!(map["ArticleCount"], "8");
        assert_eq!(map["Articles.item[7].Title"], "title 7");
        assert!(!map.contains_key("Articles.item[8].Title"));
    }

    #[test]
    fn cdata_terminators_and_forbidden_characters_cannot_break_the_xml() {
        let nasty = "a]]>b]]]]>c\u{0}d\u{1b}e\u{fffe}f\u{ffff}g\tn\nr\r😀]]";
        let xml = Reply::Text { content: s(nasty) }.to_xml("o]]>", "gh\u{7}", 1);
        assert!(xml.contains("a]]]]><![CDATA[>b"));
        let map: BTreeMap<String, String> = flatten(&xml).unwrap().into_iter().collect();
        assert_eq!(map["Content"], "a]]>b]]]]>cdefg\tn\nr\r😀]]");
        assert_eq!(map["ToUserName"], "o]]>");
        assert_eq!(map["FromUserName"], "gh");
    }

    #[test]
    fn sanitize_borrows_clean_text() {
        assert!(matches!(sanitize("plain 文本\n"), Cow::Borrowed(_)));
        assert_eq!(sanitize("a\u{8}b\u{c}c\u{7f}"), "abc\u{7f}");
    }

    #[test]
    fn a_text_reply_reads_back_as_an_inbound_text_message() {
        let xml = Reply::Text { content: s(" 我的标签 ") }.to_xml(OPENID, GH, 42);
        let message = parse(&xml).unwrap();
        assert_eq!(message.to_user, OPENID);
        assert_eq!(message.from_user, GH);
        assert_eq!(message.create_time, 42);
        assert!(matches!(message.body, Inbound::Text { ref content, msg_id: None, .. } if content == " 我的标签 "));
    }

    #[test]
    fn replies_serialize_with_a_type_tag() {
        let reply = Reply::Text { content: s("hi") };
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json, serde_json::json!({"type": "text", "content": "hi"}));
        let news: Reply = serde_json::from_value(serde_json::json!({
            "type": "news",
            "articles": [{"title": "t", "description": "d", "pic_url": "p", "url": "u"}]
        }))
        .unwrap();
        assert_eq!(news.msg_type(), "news");
    }

    fn hostile_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just(s("]]>")),
            Just(s("]]")),
            Just(s("]")),
            Just(s(">")),
            Just(s("<![CDATA[")),
            Just(s("</xml>")),
            Just(s("&amp;")),
            Just(s("\u{0}")),
            Just(s("\u{b}")),
            Just(s("\u{1f}")),
            Just(s("\u{fffe}")),
            Just(s("\u{ffff}")),
            Just(s("\r\n")),
            Just(s("😀")),
            Just(s("中")),
            "[ -~]{0,4}",
            any::<String>(),
        ];
        prop::collection::vec(piece, 0..20).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn any_text_round_trips_minus_forbidden_characters(
            content in hostile_text(),
            title in any::<String>(),
            openid in any::<String>(),
        ) {
            let reply = Reply::Video { media_id: content.clone(), title: Some(title.clone()), description: None };
            let xml = reply.to_xml(&openid, GH, -5);
            let map: BTreeMap<String, String> = flatten(&xml)
                .map_err(|err| TestCaseError::fail(format!("{xml:?}: {err}")))?
                .into_iter()
                .collect();
            prop_assert_eq!(&map["Video.MediaId"], &*sanitize(&content));
            prop_assert_eq!(&map["Video.Title"], &*sanitize(&title));
            prop_assert_eq!(&map["ToUserName"], &*sanitize(&openid));
            prop_assert_eq!(&map["CreateTime"], "-5");

            let text = Reply::Text { content: content.clone() }.to_xml(OPENID, GH, 1);
            let map: BTreeMap<String, String> = flatten(&text)
                .map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?
                .into_iter()
                .collect();
            prop_assert_eq!(&map["Content"], &*sanitize(&content));
        }
    }
}
