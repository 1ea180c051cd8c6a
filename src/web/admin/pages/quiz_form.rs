//! 测验的表单编辑: the same quiz as the TOML editor, as fields — each question with its options
//! (letter, text, 计分 such as `oil=2, sensitive=1`, tags the answer gives), each result (tag,
//! score, range, the message the follower reads). Rows left empty are ignored, and every form
//! shows spare empty rows, so nothing needs a script. The form turns into a [`QuizSpec`] and
//! then takes exactly the TOML editor's path (preview, problems, the overwrite confirmation).

use std::collections::{BTreeMap, HashMap};

use crate::domain::quiz::{Question, QuizOption, QuizResult, QuizSpec};
use crate::domain::tag::TagPath;

/// Empty option rows under each question, and empty questions and results under the rest.
const SPARE_OPTIONS: usize = 2;
const SPARE_ROWS: usize = 1;
/// Bounds on what a form may hold, so a hostile post cannot make the page enormous.
const MAX_QUESTIONS: usize = 30;
const MAX_OPTIONS: usize = 10;
const MAX_RESULTS: usize = 20;

pub struct OptionRow {
    pub index: usize,
    pub label: String,
    pub text: String,
    pub score: String,
    pub add: String,
}

pub struct QuestionRow {
    pub index: usize,
    pub text: String,
    pub options: Vec<OptionRow>,
}

pub struct ResultRow {
    pub index: usize,
    pub tag: String,
    pub score: String,
    pub min: String,
    pub max: String,
    pub message: String,
}

pub struct QuizFormView {
    pub id: String,
    pub intro: String,
    pub questions: Vec<QuestionRow>,
    pub results: Vec<ResultRow>,
}

fn letter(i: usize) -> String {
    char::from(b'A' + u8::try_from(i % 26).unwrap_or(0)).to_string()
}

/// The form for `spec`, with spare rows (`more`: one more empty question than usual).
pub fn view_of(spec: &QuizSpec, more: bool) -> QuizFormView {
    let spare_questions = SPARE_ROWS + usize::from(more);
    let mut questions: Vec<QuestionRow> = spec
        .questions
        .iter()
        .enumerate()
        .map(|(q, question)| QuestionRow {
            index: q,
            text: question.text.clone(),
            options: question
                .options
                .iter()
                .enumerate()
                .map(|(o, option)| OptionRow {
                    index: o,
                    label: option.label.clone(),
                    text: option.text.clone(),
                    score: option.score.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
                    add: option.add.iter().map(TagPath::as_str).collect::<Vec<_>>().join("，"),
                })
                .collect(),
        })
        .collect();
    for _ in 0..spare_questions {
        questions.push(QuestionRow { index: questions.len(), text: String::new(), options: Vec::new() });
    }
    for question in &mut questions {
        let filled = question.options.len();
        for o in filled..(filled + SPARE_OPTIONS).min(MAX_OPTIONS).max(filled) {
            // The next letters are ready, so only the texts need typing.
            question.options.push(OptionRow {
                index: o,
                label: letter(o),
                text: String::new(),
                score: String::new(),
                add: String::new(),
            });
        }
    }
    questions.truncate(MAX_QUESTIONS);
    let mut results: Vec<ResultRow> = spec
        .results
        .iter()
        .enumerate()
        .map(|(r, result)| ResultRow {
            index: r,
            tag: result.tag.as_str().to_owned(),
            score: result.score.clone(),
            min: result.min.to_string(),
            max: result.max.map(|m| m.to_string()).unwrap_or_default(),
            message: result.message.clone(),
        })
        .collect();
    for _ in 0..SPARE_ROWS {
        results.push(ResultRow {
            index: results.len(),
            tag: String::new(),
            score: String::new(),
            min: String::new(),
            max: String::new(),
            message: String::new(),
        });
    }
    results.truncate(MAX_RESULTS);
    QuizFormView { id: spec.id.clone(), intro: spec.intro.clone(), questions, results }
}

/// The form as it was posted, every row kept as typed (so a refusal loses nothing), plus one
/// more empty question when `more`.
pub fn view_from_form(pairs: &[(String, String)], more: bool) -> QuizFormView {
    let fields: HashMap<&str, &str> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let get = |name: String| fields.get(name.as_str()).map_or_else(String::new, |v| (*v).to_owned());
    let posted = |name: String| fields.contains_key(name.as_str());
    let mut questions: Vec<QuestionRow> = (0..MAX_QUESTIONS)
        .filter(|q| posted(format!("q{q}_text")))
        .map(|q| QuestionRow {
            index: q,
            text: get(format!("q{q}_text")),
            options: (0..MAX_OPTIONS)
                .filter(|o| posted(format!("q{q}_o{o}_label")))
                .map(|o| OptionRow {
                    index: o,
                    label: get(format!("q{q}_o{o}_label")),
                    text: get(format!("q{q}_o{o}_text")),
                    score: get(format!("q{q}_o{o}_score")),
                    add: get(format!("q{q}_o{o}_add")),
                })
                .collect(),
        })
        .collect();
    if more && questions.len() < MAX_QUESTIONS {
        let index = questions.last().map_or(0, |q| q.index + 1);
        let options = (0..SPARE_OPTIONS)
            .map(|o| OptionRow {
                index: o,
                label: letter(o),
                text: String::new(),
                score: String::new(),
                add: String::new(),
            })
            .collect();
        questions.push(QuestionRow { index, text: String::new(), options });
    }
    let results = (0..MAX_RESULTS)
        .filter(|r| posted(format!("r{r}_tag")))
        .map(|r| ResultRow {
            index: r,
            tag: get(format!("r{r}_tag")),
            score: get(format!("r{r}_score")),
            min: get(format!("r{r}_min")),
            max: get(format!("r{r}_max")),
            message: get(format!("r{r}_message")),
        })
        .collect();
    QuizFormView { id: get("id".to_owned()), intro: get("intro".to_owned()), questions, results }
}

/// `oil=2, sensitive=1` (also `：`/`:`/`＝`, `，`/`、` between): the scores an answer adds.
fn parse_scores(text: &str) -> Result<BTreeMap<String, i64>, ()> {
    let mut scores = BTreeMap::new();
    for part in text.split([',', '，', '、', ';', '；']).map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once(['=', '＝', ':', '：']).ok_or(())?;
        let (name, value) = (name.trim(), value.trim().replace('＋', "+").replace('－', "-"));
        if name.is_empty() {
            return Err(());
        }
        let value: i64 = value.parse().map_err(|_| ())?;
        *scores.entry(name.to_owned()).or_insert(0) += value;
    }
    Ok(scores)
}

fn parse_tags(text: &str, problems: &mut Vec<String>, at: &str) -> Vec<TagPath> {
    text.split([',', '，', '、', ';', '；', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter_map(|raw| match TagPath::parse(raw) {
            Ok(path) => Some(path),
            Err(error) => {
                problems.push(format!("{at}：{}", super::tag_path_problem(raw, &error)));
                None
            }
        })
        .collect()
}

fn parse_number(text: &str, what: &str, problems: &mut Vec<String>) -> Option<i64> {
    let text = text.trim().replace('－', "-");
    if text.is_empty() {
        return None;
    }
    match text.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            problems.push(format!("{what}「{text}」不是整数，请填写如 2、-1 这样的数字"));
            None
        }
    }
}

/// The quiz the form describes, or every reason it cannot be read (in the operator's words).
/// What the quiz itself may lack (a question without options…) is [`QuizSpec::problems`]' job.
pub fn spec_of(pairs: &[(String, String)]) -> Result<QuizSpec, Vec<String>> {
    let fields: HashMap<&str, &str> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let get = |name: &str| fields.get(name).map_or("", |v| v.trim());
    let mut problems = Vec::new();
    let mut questions = Vec::new();
    for q in 0..MAX_QUESTIONS {
        let text = get(&format!("q{q}_text"));
        let mut options = Vec::new();
        for o in 0..MAX_OPTIONS {
            let field = |name: &str| get(&format!("q{q}_o{o}_{name}")).to_owned();
            let (label, option_text, score, add) = (field("label"), field("text"), field("score"), field("add"));
            if option_text.is_empty() && score.is_empty() && add.is_empty() {
                continue;
            }
            let at = format!("第 {} 题选项「{label}」", questions.len() + 1);
            let score = parse_scores(&score).unwrap_or_else(|()| {
                problems
                    .push(format!("{at}的计分「{score}」看不懂：请写成 oil=2，多项用逗号分开，如 oil=2, sensitive=1"));
                BTreeMap::new()
            });
            let add = parse_tags(&add, &mut problems, &at);
            options.push(QuizOption { label, text: option_text, score, add });
        }
        if text.is_empty() && options.is_empty() {
            continue;
        }
        questions.push(Question { text: text.to_owned(), options });
    }
    let mut results = Vec::new();
    for r in 0..MAX_RESULTS {
        let field = |name: &str| get(&format!("r{r}_{name}")).to_owned();
        let tag = field("tag");
        if tag.is_empty() && field("score").is_empty() && field("message").is_empty() {
            continue;
        }
        let at = format!("第 {} 个结果", results.len() + 1);
        let Some(tag) = parse_tags(&tag, &mut problems, &at).into_iter().next() else {
            problems.push(format!("{at}没有填写要打的标签，如「肤质/油性」"));
            continue;
        };
        let min = parse_number(&field("min"), &format!("{at}的最低分"), &mut problems);
        if min.is_none() && problems.iter().all(|p| !p.starts_with(&at)) {
            problems.push(format!("{at}（{tag}）没有填写最低分 min"));
        }
        let max = parse_number(&field("max"), &format!("{at}的上限"), &mut problems);
        results.push(QuizResult {
            tag,
            score: field("score"),
            min: min.unwrap_or(0),
            max,
            message: get(&format!("r{r}_message")).replace("\r\n", "\n"),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(QuizSpec { id: get("id").to_owned(), intro: get("intro").to_owned(), questions, results })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_filled_form_reads_as_the_quiz_and_empty_rows_are_ignored() {
        let form = pairs(&[
            ("id", "skin"),
            ("intro", "测测肤质"),
            ("q0_text", "T 区？"),
            ("q0_o0_label", "A"),
            ("q0_o0_text", "油"),
            ("q0_o0_score", "oil＝2，sensitive:1"),
            ("q0_o1_label", "B"),
            ("q0_o1_text", "干"),
            ("q0_o1_add", "年龄/25-30岁、兴趣/护肤"),
            ("q0_o2_label", "C"),
            ("q1_text", ""),
            ("r0_tag", "肤质/油性"),
            ("r0_score", "oil"),
            ("r0_min", "2"),
            ("r0_message", "控油建议\r\n第二行"),
            ("r1_tag", ""),
        ]);
        let spec = spec_of(&form).expect("reads");
        assert_eq!(spec.questions.len(), 1);
        assert_eq!(spec.questions[0].options.len(), 2, "the C row had no text, score or tags");
        assert_eq!(spec.questions[0].options[0].score, BTreeMap::from([("oil".into(), 2), ("sensitive".into(), 1)]));
        assert_eq!(spec.questions[0].options[1].add.len(), 2);
        assert_eq!(spec.results[0].message, "控油建议\n第二行");
        assert!(spec.problems().is_empty(), "{:?}", spec.problems());
        // And back: the form of the quiz holds what was typed, plus spare rows.
        let view = view_of(&spec, false);
        assert_eq!(view.questions.len(), 2);
        assert_eq!(view.questions[0].options[0].score, "oil=2, sensitive=1");
        assert_eq!(view.questions[1].options[0].label, "A", "a new question starts with A and B");
        assert_eq!(view.results.len(), 2);
    }

    #[test]
    fn unreadable_fields_are_refused_in_chinese_naming_where() {
        let form = pairs(&[
            ("id", "skin"),
            ("q0_text", "T 区？"),
            ("q0_o0_label", "A"),
            ("q0_o0_text", "油"),
            ("q0_o0_score", "oil two"),
            ("r0_tag", "肤质/油性"),
            ("r0_score", "oil"),
            ("r0_min", "两分"),
            ("r1_score", "oil"),
        ]);
        let problems = spec_of(&form).expect_err("refused");
        assert!(problems.iter().any(|p| p.contains("第 1 题选项「A」的计分「oil two」看不懂")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("「两分」不是整数")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("第 2 个结果没有填写要打的标签")), "{problems:?}");
    }
}
