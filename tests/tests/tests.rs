//! Holdspace's integration tests: the real server on 127.0.0.1 with a real
//! SQLite file, driven over real WebSockets and HTTP.

mod support;
mod web_bundle;

mod bad_input;
mod browser;
mod crash;
mod group_session;
mod records;
mod resume;
mod roles;
mod safety;
mod storage;
