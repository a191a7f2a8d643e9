//! Integration tests of Holdspace live in `tests/tests.rs` (one test binary,
//! to save link time); this library is empty.
