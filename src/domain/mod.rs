//! The tagging domain as pure types and decisions: tag paths, rules, quizzes, playbooks, intents.
//! Nothing here touches the database, HTTP or WeChat; `store`, `web` and `inbox` wire it up.

pub mod account;
pub mod admin;
pub mod approval;
pub mod audience_index;
pub mod calendar;
pub mod campaign;
pub mod clock;
pub mod expr;
pub mod follower;
pub mod intent;
pub mod job;
pub mod order;
pub mod parse_zh;
pub mod playbook;
pub mod predict;
pub mod quiz;
pub mod rule;
pub mod tag;
