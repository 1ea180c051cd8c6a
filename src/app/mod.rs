//! The use cases: what tagcast does, between the protocol and storage below (`wechat`, `domain`,
//! `store`) and the entry points above (`web`, `jobs`, `startup`). One folder or file per feature;
//! each `mod.rs` says what it owns. A feature reaches another only through that feature's public
//! functions, never through its files.
//!
//! - [`inbox`]: durable, exactly-once intake of pushes with group commit, and the handler dispatch.
//! - [`tagging`]: tags, rules and quizzes (create within WeChat's limits, delete, erase a follower)
//!   and [`tagging::engine`], the inbox handler that tags followers from what they do.
//! - [`audience`]: orders in, dynamic tags kept true, and the in-memory [`audience::index`].
//! - [`campaigns`]: mass sends (caps, quotas, planning, approvals, results, stats).
//! - [`drafts`]: the account's WeChat drafts, kept locally for the composer, and the pre-send check.
//! - [`admins`]: admin users and bounded password checks.
//! - [`playbook`]: applying TOML playbooks; [`sync`]: importing followers and tags from WeChat.
//! - [`tokens`]: the access token shared by every instance through Postgres.
//! - [`quota`]: WeChat APIs stopped until Beijing midnight after 45009, `clear_quota`, and the
//!   customer-service window guard.
//! - [`metrics`]: the Prometheus registry the callback, the client and `/metrics` share.

pub mod accounts;
pub mod admins;
pub mod audience;
pub mod campaigns;
pub mod drafts;
pub mod high_potential;
pub mod inbox;
pub mod intents;
pub mod metrics;
pub mod playbook;
pub mod predictions;
pub mod quota;
pub mod sync;
pub mod tagging;
pub mod tokens;
