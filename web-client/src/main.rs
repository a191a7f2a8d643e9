//! Mounts the app (the browser only; natively there is nothing to run).

#[cfg(target_arch = "wasm32")]
fn main() {
    holdspace_web::ui::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}
