//! The few browser facts the app needs: time, storage, the address, randomness.

use protocol::{CommandId, Timestamp};
use std::str::FromStr;

fn window() -> web_sys::Window {
    web_sys::window().expect("running in a browser window")
}

/// Now, by the browser's clock.
pub fn now() -> Timestamp {
    Timestamp(js_sys::Date::now() as i64)
}

/// The browser's offset from UTC in minutes, east positive.
#[cfg(feature = "staff")]
pub fn utc_offset_min() -> i64 {
    -(js_sys::Date::new_0().get_timezone_offset() as i64)
}

/// A value from local storage.
pub fn load(key: &str) -> Option<String> {
    window()
        .local_storage()
        .ok()
        .flatten()?
        .get_item(key)
        .ok()
        .flatten()
}

/// Keeps a value in local storage (best effort: private modes may refuse).
pub fn store(key: &str, value: &str) {
    if let Ok(Some(s)) = window().local_storage() {
        let _ = s.set_item(key, value);
    }
}

/// Forgets a value in local storage.
pub fn forget(key: &str) {
    if let Ok(Some(s)) = window().local_storage() {
        let _ = s.remove_item(key);
    }
}

/// A fresh idempotency key, from the browser's cryptographic randomness.
pub fn new_command_id() -> CommandId {
    let text = window().crypto().expect("crypto").random_uuid();
    CommandId::from_str(&text).expect("randomUUID returns a UUID")
}

/// The part of the address after `#`.
pub fn hash() -> String {
    window()
        .location()
        .hash()
        .unwrap_or_default()
        .trim_start_matches('#')
        .to_string()
}

/// Goes to `#{hash}`.
pub fn go(hash: &str) {
    let _ = window().location().set_hash(hash);
}

/// Shows `#{hash}` in the address without going there (the page stays as it
/// is; a reload opens `hash`).
pub fn replace_address(hash: &str) {
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(
            &wasm_bindgen::JsValue::NULL,
            "",
            Some(&format!("#{hash}")),
        );
    }
}

/// `http://host:port`.
#[cfg(feature = "staff")]
pub fn origin() -> String {
    window().location().origin().unwrap_or_default()
}

/// `ws://host:port/ws` (or `wss://` behind TLS).
pub fn ws_url() -> String {
    let location = window().location();
    let scheme = if location.protocol().unwrap_or_default() == "https:" {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{}/ws", location.host().unwrap_or_default())
}

/// The browser's preferred language tag.
pub fn language() -> String {
    window().navigator().language().unwrap_or_default()
}

/// Sets `<html lang>` so screen readers speak the right language.
pub fn set_document_language(tag: &str) {
    if let Some(root) = window().document().and_then(|d| d.document_element()) {
        let _ = root.set_attribute("lang", tag);
    }
}

/// Runs `f` after `ms` milliseconds.
pub fn after(ms: i32, f: impl FnOnce() + 'static) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let callback = Closure::once_into_js(f);
    let _ = window()
        .set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), ms);
}

/// Loads the page again (index.html picks the bundle for the address).
#[cfg(not(feature = "staff"))]
pub fn reload_page() {
    let _ = window().location().reload();
}
