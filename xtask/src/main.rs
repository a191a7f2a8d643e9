//! `cargo run -p xtask -- <task>`:
//!
//! - `build-web`: compiles `web-client` to wasm32 (size-optimised profile),
//!   runs wasm-bindgen, copies the static files and writes gzip copies, into
//!   `web-client/dist/`, which `holdspace` serves.
//! - `demo [ARGS]`: `build-web`, then `holdspace demo ARGS` (release build).

use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("build-web") => build_web().map(|_| ()),
        Some("demo") => {
            let dist = build_web()?;
            let status = Command::new(cargo())
                .args([
                    "run",
                    "--release",
                    "--locked",
                    "--bin",
                    "holdspace",
                    "--",
                    "demo",
                    "--web",
                ])
                .arg(&dist)
                .args(args)
                .current_dir(root())
                .status()?;
            std::process::exit(status.code().unwrap_or(1));
        }
        _ => bail!("usage: cargo run -p xtask -- build-web | demo [holdspace demo args]"),
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The two bundles: the whole app, and the participant page alone (what a
/// phone loads from a join link; `index.html` picks one by the address).
const BUNDLES: [(&str, &[&str]); 2] = [
    ("holdspace-web", &[]),
    ("holdspace-phone", &["--no-default-features"]),
];

fn build_web() -> anyhow::Result<PathBuf> {
    let root = root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dist = root.join("web-client/dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist)?;
    }
    std::fs::create_dir_all(&dist)?;
    for (name, features) in BUNDLES {
        let status = Command::new(cargo())
            .args([
                "build",
                "--locked",
                "-p",
                "holdspace-web",
                "--target",
                "wasm32-unknown-unknown",
                "--profile",
                "wasm-release",
            ])
            .args(features)
            .current_dir(&root)
            .status()
            .context("running cargo")?;
        if !status.success() {
            bail!("the web client ({name}) did not compile");
        }
        let wasm = target.join("wasm32-unknown-unknown/wasm-release/holdspace-web.wasm");
        wasm_bindgen_cli_support::Bindgen::new()
            .input_path(&wasm)
            .out_name(name)
            .web(true)?
            .omit_default_module_path(false)
            .remove_name_section(true)
            .remove_producers_section(true)
            .typescript(false)
            .generate(&dist)
            .with_context(|| format!("wasm-bindgen on {}", wasm.display()))?;
    }
    for entry in std::fs::read_dir(root.join("web-client/static"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), dist.join(entry.file_name()))?;
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&dist)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    for path in files {
        let bytes = std::fs::read(&path)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes)?;
        let gz = gz.finish()?;
        eprintln!(
            "{:>28} {:>8} bytes, {:>7} gzipped",
            path.file_name().unwrap_or_default().to_string_lossy(),
            bytes.len(),
            gz.len()
        );
        let mut name = path.file_name().expect("a file").to_os_string();
        name.push(".gz");
        std::fs::write(path.with_file_name(name), gz)?;
    }
    eprintln!("web client built in {}", dist.display());
    Ok(dist)
}
