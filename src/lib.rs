//! tagcast: a server for a WeChat Official Account that tags followers from what they do and
//! sends tag-targeted mass messages.
//!
//! - [`config`]: the CONTRACT.md §2 variables, validated.
//! - [`wechat`]: the protocol (signatures, safe-mode cipher, pushes, replies); imports nothing else.
//! - [`store`]: all SQL.
//! - [`inbox`]: durable, exactly-once intake of pushes with group commit, and the dispatcher.
//! - [`mock_wechat`]: the stateful mock of WeChat's API (tests, demo mode, `tagcast mock-wechat`).
//! - [`sync`]: the resumable import of followers and tags; [`demo`]: demo mode.
//! - [`playbook`]: applying TOML playbooks of tags, rules and quizzes (checked in [`domain::playbook`]).
//! - [`audience`]: orders, segment counts and dynamic tags, at the time of the [`clock`].
//! - [`campaigns`]: campaign sends (caps, quotas, planning) and MASSSENDJOBFINISH; [`campaigns::approval`]: what
//!   a campaign reaches, approvals that lapse when it changes, rejection (驳回).
//! - [`accounts`]: admin users and bounded password checks; [`client_addr`]: who sent a request.
//! - [`web`]: HTTP handlers; [`startup`] wires them into an [`startup::Application`].

pub mod accounts;
pub mod audience;
pub mod campaigns;
pub mod cli;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod inbox;
pub mod jobs;
pub mod metrics;
pub mod mock_wechat;
pub mod playbook;
pub mod startup;
pub mod store;
pub mod sync;
pub mod tagging;
pub mod telemetry;
pub mod web;
pub mod wechat;
