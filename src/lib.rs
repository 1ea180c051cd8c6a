//! tagcast: a server for a WeChat Official Account that tags followers from what they do and
//! sends tag-targeted mass messages.
//!
//! The layers, each using only those below it (`tests/it/layers.rs` checks it: `cargo test --test it layers`):
//!
//! - [`domain`]: pure types and decisions (tags, rules, quizzes, expressions, campaigns, the
//!   audience index's data, the clock, WeChat's Beijing calendar, parser messages in Chinese,
//!   purchase propensity: features, model, evaluation and a generated account; intent
//!   classification of followers' messages);
//!   no I/O, no SQL. Imports nothing else from the crate.
//! - [`wechat`]: the protocol (signatures, safe-mode cipher, pushes, replies), the API client and
//!   its errcodes in Chinese for operators; imports nothing else from the crate.
//! - [`store`]: all SQL, one file per table group; uses `domain` types.
//! - [`mock_wechat`]: the stateful mock of WeChat's API (tests, demo mode, `tagcast mock-wechat`);
//!   uses `wechat`.
//! - [`app`]: the use cases, one folder per feature (intake, tagging, audiences, campaigns,
//!   admins, playbooks, sync, tokens, metrics); wires `domain`, `store` and `wechat` together.
//! - [`web`] (HTTP handlers) and [`jobs`] (background work): the entry points; they call `app`
//!   (and read through `store`), never each other.
//! - [`config`] (the CONTRACT.md §2 variables, validated), [`startup`] (wires everything into an
//!   [`startup::Application`]; demo mode), [`cli`], [`telemetry`]: the top.

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod jobs;
pub mod mock_wechat;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod wechat;
