//! Records the commit the binary is built from as `EDGEVISOR_COMMIT`, for
//! `edgevisor --version`: the short hash from `git rev-parse`, or
//! "unknown" when the source is not a git checkout (a crates tarball, a
//! source package). A packager can set `EDGEVISOR_COMMIT` instead.
//!
//! Also packs the binary's hot functions for release links (see
//! [`pack_hot_functions`]).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=EDGEVISOR_COMMIT");
    let commit = std::env::var("EDGEVISOR_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=EDGEVISOR_COMMIT={}", commit.trim());
    pack_hot_functions();
}

/// Packs the functions a running gateway uses into a section of their own,
/// `.text.hot`, before the rest of the code: `link/hot-text.ld`, a linker
/// script made by `bench/hot-symbols.sh`, names them. Spread over 7.5 MiB
/// of code, they made the kernel map 4.7-5.4 MiB of it (each page fault
/// maps the 64 KiB around it); packed, 3 MiB, and idle RSS falls by the
/// difference (docs/benchmarks.md).
///
/// Only for release-like profiles (`release`, `profiling`) and where the
/// linker is one it was tried with: rustc's own lld on x86_64 Linux
/// (rustc 1.90 or later), and Debian's cross GNU ld for the Raspberry Pi
/// targets (aarch64, armv7), which read the same script.
/// `EDGEVISOR_HOT_TEXT=0` turns it off (for a different linker, or to
/// measure without it). Patterns that match nothing are ignored, so a
/// stale script costs memory, not correctness.
fn pack_hot_functions() {
    println!("cargo:rerun-if-changed=link/hot-text.ld");
    println!("cargo:rerun-if-env-changed=EDGEVISOR_HOT_TEXT");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("PROFILE") != "release" || var("EDGEVISOR_HOT_TEXT") == "0" {
        return;
    }
    let linker_known = match var("TARGET").as_str() {
        "x86_64-unknown-linux-gnu" => rustc_links_with_lld(&var("RUSTC")),
        "aarch64-unknown-linux-gnu" | "armv7-unknown-linux-gnueabihf" => true,
        _ => false,
    };
    let script = Path::new(&var("CARGO_MANIFEST_DIR")).join("link/hot-text.ld");
    if linker_known && script.exists() {
        println!(
            "cargo:rustc-link-arg-bin=edgevisor=-Wl,-T,{}",
            script.display()
        );
    }
}

/// Whether this rustc links x86_64 Linux binaries with its own lld by
/// default: from 1.90 on.
fn rustc_links_with_lld(rustc: &str) -> bool {
    let Ok(out) = Command::new(rustc).arg("-V").output() else {
        return false;
    };
    let version = String::from_utf8_lossy(&out.stdout);
    let mut numbers = version
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}

/// `git` run in the package folder, its output when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The short hash of HEAD, when this package is tracked by the repository
/// around it: a tarball unpacked inside some other checkout must not take
/// that checkout's commit. Asks cargo to run this again when HEAD moves.
fn git_commit() -> Option<String> {
    git(&["ls-files", "--error-unmatch", "Cargo.toml"])?;
    let commit = git(&["rev-parse", "--short=7", "HEAD"])?;
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.extend(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.iter().filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
    Some(commit)
}
