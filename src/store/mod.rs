//! All SQL lives here, one file per table group. Store functions take
//! `&impl deadpool_postgres::GenericClient`, so a pooled client or a transaction both work;
//! nothing here knows about HTTP or WeChat's wire format.

pub mod admin_sessions;
pub mod admins;
pub mod audience_feed;
pub mod audit;
pub mod board;
pub mod campaigns;
pub mod database;
pub mod events;
pub mod followers;
pub mod jobs;
pub mod ops;
pub mod orders;
pub mod outbox;
pub mod quizzes;
pub mod rules;
pub mod segments;
pub mod sync;
pub mod tags;
pub mod tokens;

pub use database::{DatabaseError, build_pool, connect_pool, prepare_database};
