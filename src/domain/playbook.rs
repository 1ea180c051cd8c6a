//! Playbooks: the declarative TOML form of tags, rules and quizzes (CONTRACT.md §5). This module
//! parses and checks one, finding every problem in a single pass and pointing each at its line,
//! so an operator fixes a file in one go. Pure: whether a quiz already exists is asked through a
//! closure, and applying (which needs the database) lives in `crate::app::playbook`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};

use super::expr;
use super::quiz::{QuizPart, QuizSpec};
use super::rule::RuleSpec;
use super::tag::TagPath;

/// A `[[tag]]` table. A field left out is not managed: a new tag gets the default, an existing
/// tag keeps what it has, so applying never undoes what an operator set elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagSpec {
    pub path: TagPath,
    #[serde(default)]
    pub description: Option<String>,
    /// Campaigns reaching a sensitive tag need a second admin's approval.
    #[serde(default)]
    pub sensitive: Option<bool>,
    /// `false`: local-only, never created on WeChat (which allows 100 tags). Default: mirrored.
    #[serde(default)]
    pub wechat: Option<bool>,
    /// A dynamic tag's expression ([`super::expr`]); checked here, stored as written, and kept
    /// true by the engine.
    #[serde(default)]
    pub when: Option<String>,
}

/// Something from the file, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub line: usize,
    pub item: T,
}

/// A checked playbook, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Playbook {
    pub tags: Vec<Located<TagSpec>>,
    pub rules: Vec<Located<RuleSpec>>,
    pub quizzes: Vec<Located<QuizSpec>>,
    /// The seed's naming advice; never blocks anything.
    pub warnings: Vec<Problem>,
}

impl Playbook {
    /// Every tag path the playbook names: declared, or given by a rule or a quiz.
    pub fn tag_paths(&self) -> BTreeSet<&TagPath> {
        let declared = self.tags.iter().map(|t| &t.item.path);
        let by_rules = self.rules.iter().flat_map(|r| r.item.add.iter().chain(&r.item.remove));
        let by_quizzes = self.quizzes.iter().flat_map(|q| q.item.tag_paths());
        declared.chain(by_rules).chain(by_quizzes).collect()
    }

    /// `N tags, N rules, N quizzes`, counting every tag path the playbook names.
    pub fn summary(&self) -> String {
        format!("{} tags, {} rules, {} quizzes", self.tag_paths().len(), self.rules.len(), self.quizzes.len())
    }
}

/// One problem, at a line of the file (1-based).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// Every problem of one file; displays as one `FILE:LINE: message` line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}:{}: {}", self.file, problem.line, problem.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A parsed playbook and its problems, before quizzes named outside it are looked up.
#[derive(Debug, Clone)]
pub struct Parsed {
    playbook: Playbook,
    problems: Vec<Problem>,
    /// `start_quiz` values naming no quiz of this playbook, with their lines.
    outside_quizzes: Vec<(usize, String)>,
}

impl Parsed {
    /// Quiz ids rules start that this playbook does not define: they must exist already.
    pub fn outside_quizzes(&self) -> BTreeSet<&str> {
        self.outside_quizzes.iter().map(|(_, id)| id.as_str()).collect()
    }

    /// The playbook, or every problem (in line order) including rules that start a quiz for
    /// which `quiz_exists` says no.
    ///
    /// # Errors
    /// Every problem found.
    pub fn finish(self, quiz_exists: impl Fn(&str) -> bool) -> Result<Playbook, Vec<Problem>> {
        self.finish_with(|id| Some(quiz_exists(id)))
    }

    /// [`Parsed::finish`] when there is no way to look quizzes up: those started from outside
    /// the playbook are problems that say so.
    ///
    /// # Errors
    /// Every problem found.
    pub fn finish_unable_to_look_up(self) -> Result<Playbook, Vec<Problem>> {
        self.finish_with(|_| None)
    }

    /// `lookup` says whether a quiz exists, `None` when it cannot tell.
    fn finish_with(self, lookup: impl Fn(&str) -> Option<bool>) -> Result<Playbook, Vec<Problem>> {
        let mut problems = self.problems;
        for (line, id) in &self.outside_quizzes {
            let message = match lookup(id) {
                Some(true) => continue,
                Some(false) => format!("没有测验「{id}」：请在本配置中定义它（或先创建这个测验再导入）"),
                None => format!("测验「{id}」不在本配置中，而且暂时读不到数据库，无法确认它是否存在：请稍后重试"),
            };
            problems.push(Problem { line: *line, message });
        }
        if problems.is_empty() {
            Ok(self.playbook)
        } else {
            problems.sort();
            Err(problems)
        }
    }
}

/// Parses and checks a playbook; [`Parsed::finish`] completes the check.
pub fn parse(source: &str) -> Parsed {
    Checker::new(source).run()
}

/// [`parse`] then [`Parsed::finish`].
///
/// # Errors
/// Every problem found, in line order.
pub fn check(source: &str, quiz_exists: impl Fn(&str) -> bool) -> Result<Playbook, Vec<Problem>> {
    parse(source).finish(quiz_exists)
}

/// Walks the parsed document, collecting problems instead of stopping at the first.
struct Checker<'s> {
    source: &'s str,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl<'s> Checker<'s> {
    fn new(source: &'s str) -> Self {
        let line_starts = std::iter::once(0).chain(source.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { source, line_starts, problems: Vec::new(), warnings: Vec::new() }
    }

    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset).max(1)
    }

    fn problem(&mut self, offset: usize, message: impl Into<String>) {
        let line = self.line(offset);
        self.problems.push(Problem { line, message: message.into() });
    }

    fn run(mut self) -> Parsed {
        let (root, syntax_errors) = DeTable::parse_recoverable(self.source);
        for error in &syntax_errors {
            let message = error.message().trim().replace('\n', " ");
            self.problem(error.span().map_or(0, |s| s.start), super::parse_zh::toml_syntax(&message));
        }
        let mut tags = Vec::new();
        let mut rules = Vec::new();
        let mut quizzes = Vec::new();
        for (key, value) in root.into_inner() {
            let name: &str = key.get_ref();
            match name {
                "tag" => tags = self.tables("tag", value),
                "rule" => rules = self.tables("rule", value),
                "quiz" => quizzes = self.tables("quiz", value),
                _ => self.problem(
                    key.span().start,
                    format!("不认识的键「{name}」：配置里只能有 [[tag]]（标签）、[[rule]]（规则）和 [[quiz]]（测验）"),
                ),
            }
        }
        let mut playbook = Playbook::default();
        for table in tags {
            let line = self.line(table.span().start);
            let when = value_span(&table, "when");
            if let Some((tag, _)) = self.deserialize::<TagSpec>(table) {
                if let Some(expression) = &tag.when {
                    let at = when.map_or(line, |s| self.line(s.start));
                    if let Some(message) = when_problem(&tag.path, expression) {
                        self.problems.push(Problem { line: at, message });
                    }
                }
                playbook.tags.push(Located { line, item: tag });
            }
        }
        for table in quizzes {
            let line = self.line(table.span().start);
            let parts = quiz_part_offsets(&table);
            if let Some((quiz, clean)) = self.deserialize::<QuizSpec>(table) {
                for (part, message) in quiz.located_problems().into_iter().filter(|_| clean) {
                    let offset = parts.get(&part).copied();
                    let line = offset.map_or(line, |o| self.line(o));
                    self.problems.push(Problem { line, message });
                }
                playbook.quizzes.push(Located { line, item: quiz });
            }
        }
        let mut starts = Vec::new();
        for table in rules {
            let line = self.line(table.span().start);
            let start_quiz = value_span(&table, "start_quiz");
            if let Some((rule, clean)) = self.deserialize::<RuleSpec>(table) {
                if let (true, Err(error)) = (clean, rule.validate()) {
                    self.problems.push(Problem { line, message: error.to_string() });
                }
                if let Some(quiz) = &rule.start_quiz {
                    starts.push((start_quiz.map_or(line, |s| self.line(s.start)), quiz.clone()));
                }
                playbook.rules.push(Located { line, item: rule });
            }
        }
        self.cross_check(&playbook);
        let defined: BTreeSet<&str> = playbook.quizzes.iter().map(|q| q.item.id.as_str()).collect();
        let outside_quizzes = starts.into_iter().filter(|(_, id)| !defined.contains(id.as_str())).collect();
        self.warnings.sort();
        playbook.warnings = std::mem::take(&mut self.warnings);
        Parsed { playbook, problems: self.problems, outside_quizzes }
    }

    /// The tables of a top-level array such as `[[tag]]`.
    fn tables(&mut self, name: &str, value: Spanned<DeValue<'s>>) -> Vec<Spanned<DeValue<'s>>> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Array(items) => {
                let mut tables = Vec::new();
                for item in items {
                    if item.get_ref().is_table() {
                        tables.push(item);
                    } else {
                        self.problem(item.span().start, format!("每个 {name} 都要写成表：[[{name}]]"));
                    }
                }
                tables
            }
            _ => {
                self.problem(span.start, format!("{name} 要写成表的数组：[[{name}]]"));
                Vec::new()
            }
        }
    }

    /// Deserializes one table, reporting every problem in it: after each error, the offending
    /// key (or array element) is taken out and the table tried again. `None` when it never
    /// deserialized; `Some((item, false))` when it did only with parts taken out, so checks of
    /// the whole item would report consequences rather than causes.
    fn deserialize<T: DeserializeOwned>(&mut self, table: Spanned<DeValue<'s>>) -> Option<(T, bool)> {
        let mut table = table;
        let whole = table.span();
        let mut removed_keys: Vec<String> = Vec::new();
        let mut clean = true;
        loop {
            let error = match T::deserialize(ValueDeserializer::from(table.clone())) {
                Ok(item) => return Some((item, clean)),
                Err(error) => error,
            };
            clean = false;
            let message = error.message().trim().to_owned();
            // A required key taken out for being wrong was reported already.
            if removed_keys.iter().any(|key| message == format!("missing field `{key}`")) {
                return None;
            }
            let at = error.span().unwrap_or_else(|| whole.clone());
            self.problem(at.start, super::parse_zh::serde_message(&message));
            if at == whole {
                return None;
            }
            match remove_at(table.get_mut(), &at) {
                Some(Removed::Key(key)) => removed_keys.push(key),
                Some(Removed::Element) => {}
                None => return None,
            }
        }
    }

    /// Problems across tables: duplicates, and rules or quizzes giving dynamic tags.
    fn cross_check(&mut self, playbook: &Playbook) {
        let mut seen_tags: HashMap<&TagPath, usize> = HashMap::new();
        for tag in &playbook.tags {
            let path = &tag.item.path;
            match seen_tags.get(path) {
                Some(first) => self.problems.push(Problem {
                    line: tag.line,
                    message: format!("标签「{path}」声明了两次（第一次在第 {first} 行）"),
                }),
                None => {
                    seen_tags.insert(path, tag.line);
                }
            }
        }
        let mut seen_quizzes: HashMap<&str, usize> = HashMap::new();
        for quiz in &playbook.quizzes {
            let id = quiz.item.id.as_str();
            match seen_quizzes.get(id) {
                Some(first) => self.problems.push(Problem {
                    line: quiz.line,
                    message: format!("测验「{id}」定义了两次（第一次在第 {first} 行）"),
                }),
                None => {
                    seen_quizzes.insert(id, quiz.line);
                }
            }
        }
        for (i, rule) in playbook.rules.iter().enumerate() {
            if let Some(first) = playbook.rules[..i].iter().find(|r| r.item == rule.item) {
                self.problems.push(Problem {
                    line: rule.line,
                    message: format!("这条规则与第 {} 行的规则完全相同", first.line),
                });
            }
        }

        let dynamic: BTreeSet<&TagPath> =
            playbook.tags.iter().filter(|t| t.item.when.is_some()).map(|t| &t.item.path).collect();
        let given = playbook
            .rules
            .iter()
            .map(|r| (r.line, r.item.add.iter().chain(&r.item.remove).collect::<Vec<_>>()))
            .chain(playbook.quizzes.iter().map(|q| (q.line, q.item.tag_paths().collect())));
        let mut first_use: HashMap<&TagPath, usize> = HashMap::new();
        for (line, paths) in given {
            for path in paths {
                if dynamic.contains(path) {
                    self.problems.push(Problem {
                        line,
                        message: format!(
                            "「{path}」是动态标签（有 when 条件），由系统按条件自动维护，规则和测验不能打上或移除它"
                        ),
                    });
                }
                first_use.entry(path).or_insert(line);
            }
        }
        // Declared tags are advised on where they are declared, the others where first used.
        let mut lines = first_use;
        lines.extend(seen_tags);
        for (path, line) in lines {
            for advice in path.naming_warnings() {
                self.warnings.push(Problem { line, message: format!("「{path}」：{advice}") });
            }
        }
    }
}

/// What is wrong with a dynamic tag's expression (stored as written, so it must parse).
fn when_problem(path: &TagPath, expression: &str) -> Option<String> {
    if expression.trim().is_empty() {
        return Some("when 不能是空的：普通标签请删去 when 这一行".to_owned());
    }
    match expr::parse(expression) {
        Err(error) => Some(format!("when 条件有误，{error}")),
        Ok(parsed) if parsed.tag_paths().contains(&path) => {
            Some(format!("「{path}」的 when 条件引用了它自己：动态标签不能依赖自己"))
        }
        Ok(_) => None,
    }
}

/// The span of `key`'s value in a table.
fn value_span(table: &Spanned<DeValue<'_>>, key: &str) -> Option<Range<usize>> {
    let DeValue::Table(table) = table.get_ref() else { return None };
    table.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v.span())
}

/// The array of tables under `key` (or its alias), as spans.
fn item_spans<'a, 'i>(table: &'a DeTable<'i>, keys: &[&str]) -> Vec<(Range<usize>, &'a DeValue<'i>)> {
    let Some((_, value)) = table.iter().find(|(k, _)| keys.contains(&k.get_ref().as_ref())) else {
        return Vec::new();
    };
    let Some(items) = value.get_ref().as_array() else { return Vec::new() };
    items.iter().map(|item| (item.span(), item.get_ref())).collect()
}

/// Where each question, option and result of a quiz table starts.
fn quiz_part_offsets(quiz: &Spanned<DeValue<'_>>) -> HashMap<QuizPart, usize> {
    let mut offsets = HashMap::new();
    let DeValue::Table(table) = quiz.get_ref() else { return offsets };
    for (q, (span, question)) in item_spans(table, &["question", "questions"]).into_iter().enumerate() {
        offsets.insert(QuizPart::Question(q), span.start);
        if let Some(question) = question.as_table() {
            for (o, (span, _)) in item_spans(question, &["options"]).into_iter().enumerate() {
                offsets.insert(QuizPart::Option { question: q, option: o }, span.start);
            }
        }
    }
    for (r, (span, _)) in item_spans(table, &["result", "results"]).into_iter().enumerate() {
        offsets.insert(QuizPart::Result(r), span.start);
    }
    offsets
}

/// What [`remove_at`] took out.
enum Removed {
    Key(String),
    Element,
}

/// Takes out the key (or array element) at `span`, searching nested tables and arrays.
fn remove_at(value: &mut DeValue<'_>, span: &Range<usize>) -> Option<Removed> {
    match value {
        DeValue::Table(table) => {
            let found = table.iter().find(|(key, value)| key.span() == *span || value.span() == *span);
            if let Some(key) = found.map(|(key, _)| key.clone()) {
                table.remove(&key);
                return Some(Removed::Key(key.into_inner().into_owned()));
            }
            table.iter_mut().find_map(|(_, value)| remove_at(value.get_mut(), span))
        }
        DeValue::Array(items) => {
            if let Some(i) = items.iter().position(|item| item.span() == *span) {
                let mut kept: Vec<Spanned<DeValue<'_>>> =
                    std::mem::replace(items, DeArray::new()).into_iter().collect();
                kept.remove(i);
                *items = kept.into_iter().collect();
                return Some(Removed::Element);
            }
            items.iter_mut().find_map(|item| remove_at(item.get_mut(), span))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::quiz::{self, QuizStep};

    const SAMPLE: &str = include_str!("../../playbooks/skin-quiz.toml");

    fn problems(source: &str) -> Vec<(usize, String)> {
        check(source, |_| false).expect_err("has problems").into_iter().map(|p| (p.line, p.message)).collect()
    }

    #[test]
    fn the_contract_example_parses() {
        let source = r#"
[[tag]]
path = "消费/VIP"
when = "orders(all) >= 3"

[[rule]]
on = "click"
key = "SKIN_TEST"
start_quiz = "skin"

[[quiz]]
id = "skin"
intro = "回答 5 个问题，了解你的肤质"
  [[quiz.question]]
  text = "洗脸一小时后，T 区的感觉？"
  options = [ { label = "A", text = "油光明显", score = { oily = 2 } },
              { label = "B", text = "紧绷", score = { dry = 2 } } ]
  [[quiz.result]]
  tag = "肤质/油性"
  score = "oily"
  min = 4
"#;
        let playbook = check(source, |_| false).expect("clean");
        assert_eq!(playbook.tags[0].line, 2);
        assert_eq!(playbook.tags[0].item.when.as_deref(), Some("orders(all) >= 3"));
        assert_eq!(playbook.rules[0].line, 6);
        assert_eq!(playbook.quizzes[0].item.questions[0].options[1].score["dry"], 2);
        assert_eq!(playbook.summary(), "2 tags, 1 rules, 1 quizzes");
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let source = r#"title = "x"

[[tag]]
path = "肤质//油性"
colour = "red"

[[tag]]
path = "消费/VIP"
sensitive = "yes"

[[rule]]
on = "click"
key = "SKIN_TEST"

[[rule]]
on = "keyword"
key = "测肤质"
start_quiz = "nope"
add = ["a/b/c/d", "ok/path"]

[[quiz]]
id = "skin"
  [[quiz.question]]
  text = "T 区？"
  options = [ { label = "A", text = "油", score = { oily = 2 } },
              { label = "a", text = "干" } ]
  [[quiz.result]]
  tag = "肤质/油性"
  score = "dry"
  min = 1
"#;
        let found = problems(source);
        let lines: Vec<usize> = found.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [1, 4, 5, 9, 11, 18, 19, 26, 27], "{found:#?}");
        assert!(found[0].1.contains("不认识的键「title」"), "{found:#?}");
        assert!(found[1].1.contains("「肤质//油性」的第 2 级是空的"), "{found:#?}");
        assert!(found[2].1.contains("不认识的项 `colour`"), "{found:#?}");
        assert!(found[3].1.contains("这里应是 true 或 false"), "{found:#?}");
        assert!(found[4].1.contains("规则至少要做一件事"), "{found:#?}");
        assert!(found[5].1.contains("没有测验「nope」"), "{found:#?}");
        assert!(found[6].1.contains("「a/b/c/d」有 4 级"), "{found:#?}");
        assert!(found[7].1.contains("选项字母「a」重复了"), "{found:#?}");
        assert!(found[8].1.contains("按分数「dry」判定"), "{found:#?}");
    }

    #[test]
    fn unknown_keys_deep_in_a_quiz_are_each_reported() {
        let source = r#"[[quiz]]
id = "q"
  [[quiz.question]]
  text = "?"
  hint = "x"
  options = [ { label = "A", text = "a", colour = "red" },
              { label = "B", text = "b", add = ["x//y"] } ]
"#;
        let found = problems(source);
        let lines: Vec<usize> = found.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [5, 6, 7], "{found:#?}");
        assert!(found[0].1.starts_with("不认识的项 `hint`"), "{found:#?}");
        assert!(found[1].1.starts_with("不认识的项 `colour`"), "{found:#?}");
    }

    #[test]
    fn syntax_errors_are_problems_too() {
        let found = problems("[[tag]]\npath = \"肤质/油性\"\n\n[[rule]\non = = \"click\"\n");
        assert!(found.iter().any(|(line, m)| *line == 4 && m.starts_with("TOML 语法错误")), "{found:#?}");
    }

    #[test]
    fn duplicates_and_dynamic_tags_given_by_rules_are_problems() {
        let source = r#"[[tag]]
path = "消费/VIP"
when = "orders(all) >= 3"

[[tag]]
path = "消费/VIP"

[[rule]]
on = "keyword"
key = "VIP"
add = ["消费/VIP"]

[[rule]]
on = "keyword"
key = "VIP"
add = ["消费/VIP"]
"#;
        let found = problems(source);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert_eq!((found[0].0, found[0].1.as_str()), (5, "标签「消费/VIP」声明了两次（第一次在第 1 行）"));
        assert!(found[1].1.contains("动态标签"));
        assert_eq!((found[3].0, found[3].1.as_str()), (13, "这条规则与第 8 行的规则完全相同"));
    }

    #[test]
    fn a_when_expression_must_parse_and_not_name_its_own_tag() {
        let source = r#"[[tag]]
path = "消费/VIP"
when = "orders(all) >="

[[tag]]
path = "消费/老客"
when = "\"消费/老客\" OR orders(all) >= 2"

[[tag]]
path = "消费/空"
when = " "
"#;
        let found = problems(source);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].0 == 3 && found[0].1.starts_with("when 条件有误，第 "), "{found:#?}");
        assert!(found[1].0 == 7 && found[1].1.contains("引用了它自己"), "{found:#?}");
        assert_eq!(found[2].0, 11);
    }

    #[test]
    fn a_quiz_started_from_outside_the_playbook_must_exist() {
        let source = "[[rule]]\non = \"click\"\nkey = \"K\"\nstart_quiz = \"elsewhere\"\n";
        let parsed = parse(source);
        assert_eq!(parsed.outside_quizzes().into_iter().collect::<Vec<_>>(), ["elsewhere"]);
        assert!(parsed.clone().finish(|id| id == "elsewhere").is_ok());
        let problems = parsed.finish(|_| false).expect_err("unknown quiz");
        assert_eq!(problems[0].line, 4);
    }

    #[test]
    fn naming_advice_is_a_warning() {
        let playbook = check("[[tag]]\npath = \"VIP\"\n", |_| false).expect("only a warning");
        assert_eq!(playbook.warnings.len(), 1);
        assert_eq!(playbook.warnings[0].line, 1);
    }

    #[test]
    fn problems_display_as_file_line_message() {
        let problems = Problems {
            file: "p.toml".into(),
            problems: vec![Problem { line: 3, message: "a".into() }, Problem { line: 9, message: "b".into() }],
        };
        assert_eq!(problems.to_string(), "p.toml:3: a\np.toml:9: b");
    }

    #[test]
    fn the_sample_playbook_is_clean_and_follows_the_naming_advice() {
        let playbook = check(SAMPLE, |_| false).expect("the sample is clean");
        assert!(playbook.warnings.is_empty(), "{:#?}", playbook.warnings);
        assert_eq!(playbook.quizzes.len(), 1);
        assert_eq!(playbook.quizzes[0].item.questions.len(), 5);
        for path in playbook.tag_paths() {
            assert!(path.leaf().chars().count() <= crate::domain::tag::ADVISED_MAX_CHARS, "{path}");
        }
        let dynamic: Vec<(&str, &str)> =
            playbook.tags.iter().filter_map(|t| Some((t.item.path.as_str(), t.item.when.as_deref()?))).collect();
        assert_eq!(
            dynamic,
            [("消费/VIP", "orders(all) >= 3"), ("消费/90天未复购", "orders(90d) = 0 AND orders(all) >= 1")]
        );
    }

    /// Every way through the sample quiz gives exactly one skin type and one age band.
    #[test]
    fn every_answer_path_of_the_sample_quiz_gives_one_skin_type_and_one_age() {
        let playbook = check(SAMPLE, |_| false).expect("the sample is clean");
        let quiz = &playbook.quizzes[0].item;
        let mut paths = vec![quiz::start(quiz).0];
        let mut finished = Vec::new();
        while let Some(progress) = paths.pop() {
            for option in &quiz.questions[progress.question].options {
                match quiz::answer(quiz, &progress, &option.label) {
                    QuizStep::Next { progress, .. } => paths.push(progress),
                    QuizStep::Finished { tags, .. } => finished.push(tags),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        let expected: usize = quiz.questions.iter().map(|q| q.options.len()).product();
        assert_eq!(finished.len(), expected);
        let count = |tags: &[TagPath], prefix: &str, except: &str| {
            tags.iter().filter(|t| t.as_str().starts_with(prefix) && t.as_str() != except).count()
        };
        let mut sensitive = 0;
        for tags in &finished {
            assert_eq!(count(tags, "肤质/", "肤质/敏感肌"), 1, "{tags:?}");
            assert_eq!(count(tags, "年龄/", ""), 1, "{tags:?}");
            sensitive += usize::from(tags.iter().any(|t| t.as_str() == "肤质/敏感肌"));
        }
        assert!(sensitive > 0 && sensitive < finished.len());
    }
}
