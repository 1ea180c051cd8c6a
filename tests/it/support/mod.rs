pub mod accounts;
pub mod app;
pub mod db;
pub mod english;
pub mod mock_api;
pub mod shared;
