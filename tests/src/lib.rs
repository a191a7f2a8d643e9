//! Helpers shared by the integration tests (`tests/tests.rs`, one test binary)
//! and the screenshot tool: driving real headless Chromium.

pub mod chromium;
