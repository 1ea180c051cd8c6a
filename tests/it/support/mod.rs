pub mod accounts;
pub mod app;
pub mod db;
pub mod shared;
