//! The phone-style preview: a message drawn as a follower's WeChat shows it (the account's name
//! in the title bar, a text bubble, an article card with its cover and the other articles' titles,
//! or a media placeholder), so the operator sees the send before a test follower does.

use crate::domain::campaign::Message;
use crate::store::drafts::DraftRow;

pub struct PhoneView {
    /// The title bar: the account's name as followers see it.
    pub account: String,
    /// `text`, `article` or `media`: which shape the template draws.
    pub shape: &'static str,
    pub text: String,
    pub title: String,
    pub cover_url: String,
    /// The titles of a multi-article send's further articles.
    pub more: Vec<String>,
}

impl PhoneView {
    /// `draft` is the local copy of an mpnews message's draft, when it is known.
    pub fn of(account: &str, message: &Message, draft: Option<&DraftRow>) -> Self {
        let blank = Self {
            account: account.to_owned(),
            shape: "text",
            text: String::new(),
            title: String::new(),
            cover_url: String::new(),
            more: Vec::new(),
        };
        match message {
            Message::Text { content } => Self { text: content.clone(), ..blank },
            Message::Mpnews { media_id } => match draft {
                Some(draft) => Self {
                    shape: "article",
                    title: draft.title.clone(),
                    cover_url: draft.cover_url.clone(),
                    more: draft.article_titles.iter().skip(1).cloned().collect(),
                    ..blank
                },
                None => Self {
                    shape: "media",
                    text: format!("［图文］草稿 {media_id} 不在本地草稿列表中，运行 tagcast sync 后可预览标题和封面"),
                    ..blank
                },
            },
            Message::Image { .. } => Self { shape: "media", text: "［图片］".to_owned(), ..blank },
            Message::Voice { .. } => Self { shape: "media", text: "［语音］".to_owned(), ..blank },
            Message::Mpvideo { .. } => Self { shape: "media", text: "［视频］".to_owned(), ..blank },
        }
    }

    /// The avatar's one character: the account's first.
    pub fn initial(&self) -> String {
        self.account.chars().next().map_or_else(|| "公".to_owned(), String::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_message_is_drawn_as_its_words_in_a_bubble() {
        let view = PhoneView::of("美丽护肤", &Message::Text { content: "你好\n第二行".to_owned() }, None);
        assert_eq!((view.shape, view.text.as_str(), view.initial()), ("text", "你好\n第二行", "美".to_owned()));
    }

    #[test]
    fn an_unknown_draft_says_how_to_see_it() {
        let view = PhoneView::of("号", &Message::Mpnews { media_id: "MEDIA".to_owned() }, None);
        assert_eq!(view.shape, "media");
        assert!(view.text.contains("tagcast sync"), "{}", view.text);
    }
}
