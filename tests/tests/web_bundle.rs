//! The participant page's first load (the page, its style, the phone
//! bundle's script and module) stays under 300 KB gzipped, as built.

use std::path::PathBuf;

#[test]
fn the_participant_pages_first_load_is_under_300_kb_gzipped() {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web-client/dist");
    let first_load = [
        "index.html",
        "app.css",
        "holdspace-phone.js",
        "holdspace-phone_bg.wasm",
    ];
    let mut total = 0;
    for file in first_load {
        let gz = dist.join(format!("{file}.gz"));
        let size = std::fs::metadata(&gz)
            .unwrap_or_else(|_| {
                panic!(
                    "{} is missing: run `cargo run -p xtask -- build-web`",
                    gz.display()
                )
            })
            .len();
        eprintln!("{file}: {size} bytes gzipped");
        total += size;
    }
    eprintln!("participant first load: {total} bytes gzipped");
    assert!(
        total < 300 * 1024,
        "the participant page's first load is {total} bytes gzipped (budget 300 KB)"
    );
}
