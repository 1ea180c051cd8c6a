//! The one integration-test binary: every test drives a spawned server over HTTP, on its own
//! fresh PostgreSQL database.

mod accounts;
mod accounts_callback;
mod accounts_campaigns;
mod accounts_roles;
mod admin_browser;
mod admin_pages;
mod admins;
mod api_quota;
mod approval;
mod audience;
mod callback;
mod campaigns;
mod console_send;
mod drafts;
mod faults;
mod hardening;
mod jobs;
mod layers;
mod mass_outcomes;
mod mock;
mod mock_conformance;
mod mock_media;
mod mock_quota;
mod ops;
mod plans;
mod playbook;
mod security_auth;
mod security_callback;
mod startup;
mod support;
mod sync;
mod tagging;
mod wechat_api;
