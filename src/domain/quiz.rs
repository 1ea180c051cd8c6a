//! Quizzes: a follower answers questions by option label; scores add up; when the last question is
//! answered, every result whose score reaches `min` (and stays under `max`) tags the follower, as
//! do the options' own `add` paths. Pure: the session lives in the database, the steps here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tag::TagPath;

/// What a follower sends to leave a quiz.
pub const EXIT_WORD: &str = "退出";

/// A quiz as operators write it (`POST /quizzes`, playbooks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuizSpec {
    pub id: String,
    #[serde(default)]
    pub intro: String,
    #[serde(rename = "question", alias = "questions")]
    pub questions: Vec<Question>,
    #[serde(rename = "result", alias = "results", default)]
    pub results: Vec<QuizResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub text: String,
    pub options: Vec<QuizOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuizOption {
    /// What the follower sends: `A`, `B`, ...
    pub label: String,
    pub text: String,
    #[serde(default)]
    pub score: BTreeMap<String, i64>,
    /// Tags this answer gives directly.
    #[serde(default)]
    pub add: Vec<TagPath>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuizResult {
    pub tag: TagPath,
    /// The score this result reads.
    pub score: String,
    pub min: i64,
    /// Exclusive upper bound, when given.
    #[serde(default)]
    pub max: Option<i64>,
    /// What the follower reads when this result is reached (e.g. the 护肤建议 for the skin type),
    /// after the line naming their tags.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The longest result message, in characters: two results' messages and the tag line stay
/// within a passive text reply.
pub const MAX_RESULT_MESSAGE_CHARS: usize = 300;
/// A passive reply's text stops gaining result messages past this many bytes (WeChat shows a
/// text reply of up to 2048).
const MAX_FINAL_REPLY_BYTES: usize = 2000;

/// Where in a quiz a problem is, so a playbook can point at its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuizPart {
    /// The quiz as a whole (its id, its list of questions).
    Quiz,
    /// Question `n` (0-based).
    Question(usize),
    /// Option `option` of question `question` (both 0-based).
    Option { question: usize, option: usize },
    /// Result `n` (0-based).
    Result(usize),
}

impl QuizSpec {
    /// Every problem at once, each a sentence naming where it is.
    pub fn problems(&self) -> Vec<String> {
        self.located_problems().into_iter().map(|(_, problem)| problem).collect()
    }

    /// [`QuizSpec::problems`], each with the part of the quiz it is about.
    pub fn located_problems(&self) -> Vec<(QuizPart, String)> {
        let mut problems = Vec::new();
        if self.id.trim().is_empty() || !self.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            problems.push((QuizPart::Quiz, format!("测验 id「{}」只能由英文字母、数字、_ 和 - 组成", self.id)));
        }
        if self.questions.is_empty() {
            problems.push((QuizPart::Quiz, format!("测验「{}」还没有题目：至少要有一道题", self.id)));
        }
        let mut scores_given = std::collections::BTreeSet::new();
        for (q, question) in self.questions.iter().enumerate() {
            if question.text.trim().is_empty() {
                problems.push((QuizPart::Question(q), format!("第 {} 题没有题目文字", q + 1)));
            }
            if question.options.len() < 2 {
                problems.push((QuizPart::Question(q), format!("第 {} 题至少需要 2 个选项", q + 1)));
            }
            let mut labels = std::collections::BTreeSet::new();
            for (o, option) in question.options.iter().enumerate() {
                let at = QuizPart::Option { question: q, option: o };
                let label = normalize_answer(&option.label);
                if label.is_empty() {
                    problems.push((at, format!("第 {} 题有一个选项没有选项字母（label）", q + 1)));
                } else if label == EXIT_WORD {
                    problems.push((
                        at,
                        format!("第 {} 题：「{EXIT_WORD}」是粉丝退出测验用的词，不能作选项字母，请换一个", q + 1),
                    ));
                } else if !labels.insert(label) {
                    problems.push((at, format!("第 {} 题的选项字母「{}」重复了", q + 1, option.label)));
                }
                scores_given.extend(option.score.keys().cloned());
            }
        }
        for (r, result) in self.results.iter().enumerate() {
            if !scores_given.contains(&result.score) {
                problems.push((
                    QuizPart::Result(r),
                    format!("结果「{}」按分数「{}」判定，但没有任何选项给这个分数：请检查选项的 score 或结果的 score 是否写错", result.tag, result.score),
                ));
            }
            if result.max.is_some_and(|max| max <= result.min) {
                problems.push((QuizPart::Result(r), format!("结果「{}」的 max 必须大于 min", result.tag)));
            }
            let chars = result.message.chars().count();
            if chars > MAX_RESULT_MESSAGE_CHARS {
                problems.push((
                    QuizPart::Result(r),
                    format!("结果「{}」的回复有 {chars} 个字，最多 {MAX_RESULT_MESSAGE_CHARS} 个：请精简", result.tag),
                ));
            }
        }
        problems
    }

    /// Every tag the quiz can give.
    pub fn tag_paths(&self) -> impl Iterator<Item = &TagPath> {
        self.results
            .iter()
            .map(|r| &r.tag)
            .chain(self.questions.iter().flat_map(|q| q.options.iter().flat_map(|o| &o.add)))
    }

    /// Points every result and option naming the tag `from` at `to` (a tag was renamed); true
    /// when any did.
    pub fn rename_tag(&mut self, from: &str, to: &TagPath) -> bool {
        let mut renamed = false;
        let paths = self
            .results
            .iter_mut()
            .map(|r| &mut r.tag)
            .chain(self.questions.iter_mut().flat_map(|q| q.options.iter_mut().flat_map(|o| o.add.iter_mut())));
        for path in paths.filter(|p| p.as_str() == from) {
            *path = to.clone();
            renamed = true;
        }
        renamed
    }

    /// The question at `index`, as the follower reads it.
    pub fn render_question(&self, index: usize) -> String {
        let Some(question) = self.questions.get(index) else { return String::new() };
        let mut text = format!("（{}/{}）{}", index + 1, self.questions.len(), question.text);
        for option in &question.options {
            text.push('\n');
            text.push_str(&format!("{}. {}", option.label, option.text));
        }
        text.push_str(&format!("\n回复选项字母作答，回复「{EXIT_WORD}」结束测验"));
        text
    }
}

/// Where a follower stands in a quiz; stored between messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuizProgress {
    /// The question being asked (0-based).
    pub question: usize,
    pub scores: BTreeMap<String, i64>,
    /// Paths added by the options chosen so far.
    pub added: Vec<TagPath>,
}

/// What answering does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuizStep {
    /// Go on to the next question; `reply` asks it.
    Next { progress: QuizProgress, reply: String },
    /// Not an option: the same question again.
    Reask { reply: String },
    /// The follower left.
    Exited { reply: String },
    /// The last question was answered: tag with `tags`; `reply` names them.
    Finished { tags: Vec<TagPath>, reply: String, progress: QuizProgress },
}

/// Folds full-width letters and case, so `ａ`, `a` and `A` all answer `A`.
pub fn normalize_answer(input: &str) -> String {
    input
        .trim()
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .collect::<String>()
        .to_uppercase()
}

/// The first message of a quiz: the intro and question 1.
pub fn start(quiz: &QuizSpec) -> (QuizProgress, String) {
    let mut reply = String::new();
    if !quiz.intro.trim().is_empty() {
        reply.push_str(quiz.intro.trim());
        reply.push('\n');
    }
    reply.push_str(&quiz.render_question(0));
    (QuizProgress::default(), reply)
}

/// Applies one message to a quiz in progress.
pub fn answer(quiz: &QuizSpec, progress: &QuizProgress, input: &str) -> QuizStep {
    if input.trim() == EXIT_WORD {
        return QuizStep::Exited { reply: "已退出测验，随时可以重新开始。".to_owned() };
    }
    let Some(question) = quiz.questions.get(progress.question) else {
        // The quiz changed under the follower: finish with what they have.
        return finish(quiz, progress.clone());
    };
    let wanted = normalize_answer(input);
    let Some(option) = question.options.iter().find(|o| normalize_answer(&o.label) == wanted) else {
        let labels: Vec<&str> = question.options.iter().map(|o| o.label.as_str()).collect();
        return QuizStep::Reask {
            reply: format!("请回复 {} 中的一个选项。\n{}", labels.join("/"), quiz.render_question(progress.question)),
        };
    };
    let mut next = progress.clone();
    for (score, points) in &option.score {
        *next.scores.entry(score.clone()).or_default() += points;
    }
    for path in &option.add {
        if !next.added.contains(path) {
            next.added.push(path.clone());
        }
    }
    next.question += 1;
    if next.question >= quiz.questions.len() {
        return finish(quiz, next);
    }
    let reply = quiz.render_question(next.question);
    QuizStep::Next { progress: next, reply }
}

fn finish(quiz: &QuizSpec, progress: QuizProgress) -> QuizStep {
    let mut tags = progress.added.clone();
    let mut messages = Vec::new();
    for result in &quiz.results {
        let score = progress.scores.get(&result.score).copied().unwrap_or(0);
        if score >= result.min && result.max.is_none_or(|max| score < max) {
            if !tags.contains(&result.tag) {
                tags.push(result.tag.clone());
            }
            if !result.message.trim().is_empty() {
                messages.push(result.message.trim());
            }
        }
    }
    let mut reply = if tags.is_empty() {
        "测验完成，感谢参与！暂未匹配到标签。".to_owned()
    } else {
        let names: Vec<&str> = tags.iter().map(TagPath::as_str).collect();
        format!("测验完成！你的标签：{}", names.join("、"))
    };
    for message in messages {
        if reply.len() + 2 + message.len() > MAX_FINAL_REPLY_BYTES {
            break;
        }
        reply.push_str("\n\n");
        reply.push_str(message);
    }
    QuizStep::Finished { tags, reply, progress }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiz() -> QuizSpec {
        let option = |label: &str, score: &[(&str, i64)], add: &[&str]| QuizOption {
            label: label.into(),
            text: format!("option {label}"),
            score: score.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            add: add.iter().map(|p| TagPath::parse(p).unwrap()).collect(),
        };
        QuizSpec {
            id: "skin".into(),
            intro: "回答 2 个问题".into(),
            questions: vec![
                Question {
                    text: "T 区？".into(),
                    options: vec![option("A", &[("oily", 2)], &[]), option("B", &[("dry", 2)], &[])],
                },
                Question {
                    text: "年龄？".into(),
                    options: vec![option("A", &[("oily", 2)], &["年龄/25-30岁"]), option("B", &[], &["年龄/30岁以上"])],
                },
            ],
            results: vec![
                QuizResult {
                    tag: TagPath::parse("肤质/油性").unwrap(),
                    score: "oily".into(),
                    min: 4,
                    max: None,
                    message: String::new(),
                },
                QuizResult {
                    tag: TagPath::parse("肤质/干性").unwrap(),
                    score: "dry".into(),
                    min: 2,
                    max: Some(4),
                    message: String::new(),
                },
            ],
        }
    }

    #[test]
    fn renaming_a_tag_rewrites_results_and_option_tags() {
        let mut spec = quiz();
        let to = TagPath::parse("年龄/30+").unwrap();
        assert!(spec.rename_tag("年龄/30岁以上", &to));
        assert!(spec.tag_paths().any(|p| p.as_str() == "年龄/30+"));
        assert!(spec.tag_paths().all(|p| p.as_str() != "年龄/30岁以上"));
        assert!(!spec.rename_tag("年龄/30岁以上", &to));
        assert!(spec.rename_tag("肤质/油性", &TagPath::parse("肤质/油皮").unwrap()));
        assert_eq!(spec.results[0].tag.as_str(), "肤质/油皮");
    }

    #[test]
    fn answers_add_up_to_tags_named_in_the_final_reply() {
        let quiz = quiz();
        let (progress, first) = start(&quiz);
        assert!(first.starts_with("回答 2 个问题\n（1/2）T 区？\nA. option A"));
        let QuizStep::Next { progress, reply } = answer(&quiz, &progress, " ａ ") else { panic!("next") };
        assert!(reply.contains("（2/2）年龄？"));
        let QuizStep::Finished { tags, reply, .. } = answer(&quiz, &progress, "a") else { panic!("finished") };
        let names: Vec<&str> = tags.iter().map(TagPath::as_str).collect();
        assert_eq!(names, ["年龄/25-30岁", "肤质/油性"]);
        assert_eq!(reply, "测验完成！你的标签：年龄/25-30岁、肤质/油性");
    }

    #[test]
    fn the_final_reply_gives_each_reached_results_message_after_the_tags() {
        let mut quiz = quiz();
        quiz.results[0].message = "油皮建议：控油清洁，选清爽质地。".to_owned();
        quiz.results[1].message = "干皮建议：温和清洁，加强保湿。".to_owned();
        let (progress, _) = start(&quiz);
        let QuizStep::Next { progress, .. } = answer(&quiz, &progress, "A") else { panic!("next") };
        let QuizStep::Finished { reply, .. } = answer(&quiz, &progress, "A") else { panic!("finished") };
        assert_eq!(reply, "测验完成！你的标签：年龄/25-30岁、肤质/油性\n\n油皮建议：控油清洁，选清爽质地。");

        // Messages never push the reply past what WeChat shows; the tag line always stays.
        quiz.results[0].message = "长".repeat(MAX_RESULT_MESSAGE_CHARS);
        quiz.results[1] = QuizResult { min: 0, max: None, ..quiz.results[0].clone() };
        quiz.results[1].tag = TagPath::parse("肤质/另一个").unwrap();
        quiz.results[1].score = "oily".into();
        quiz.results.push(QuizResult { tag: TagPath::parse("肤质/第三").unwrap(), ..quiz.results[1].clone() });
        let (progress, _) = start(&quiz);
        let QuizStep::Next { progress, .. } = answer(&quiz, &progress, "A") else { panic!("next") };
        let QuizStep::Finished { reply, .. } = answer(&quiz, &progress, "A") else { panic!("finished") };
        assert!(reply.starts_with("测验完成！你的标签："), "{reply}");
        assert!(reply.len() <= MAX_FINAL_REPLY_BYTES, "{} bytes", reply.len());
        assert_eq!(reply.matches("\n\n").count(), 2, "two of the three messages fit");
    }

    #[test]
    fn a_result_message_longer_than_a_reply_allows_is_a_problem() {
        let mut quiz = quiz();
        quiz.results[0].message = "长".repeat(MAX_RESULT_MESSAGE_CHARS + 1);
        let problems = quiz.problems();
        assert!(problems.iter().any(|p| p.contains("最多 300 个")), "{problems:?}");
    }

    #[test]
    fn max_is_exclusive_and_unmatched_scores_give_no_tag() {
        let quiz = quiz();
        let (p, _) = start(&quiz);
        let QuizStep::Next { progress, .. } = answer(&quiz, &p, "B") else { panic!() };
        let QuizStep::Finished { tags, .. } = answer(&quiz, &progress, "B") else { panic!() };
        let names: Vec<&str> = tags.iter().map(TagPath::as_str).collect();
        assert_eq!(names, ["年龄/30岁以上", "肤质/干性"]);
    }

    #[test]
    fn other_text_reasks_and_exit_leaves() {
        let quiz = quiz();
        let (p, _) = start(&quiz);
        let QuizStep::Reask { reply } = answer(&quiz, &p, "C") else { panic!("reask") };
        assert!(reply.starts_with("请回复 A/B 中的一个选项。\n（1/2）"));
        assert!(matches!(answer(&quiz, &p, " 退出 "), QuizStep::Exited { .. }));
    }

    #[test]
    fn problems_are_all_reported() {
        let mut quiz = quiz();
        quiz.id = "bad id".into();
        quiz.questions[1].options[1].label = "a".into();
        quiz.results[1].max = Some(1);
        quiz.results.push(QuizResult {
            tag: TagPath::parse("x").unwrap(),
            score: "nope".into(),
            min: 1,
            max: None,
            message: String::new(),
        });
        let problems = quiz.problems();
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }
}
