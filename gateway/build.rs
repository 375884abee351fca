//! Records the commit the binary is built from as `EDGEVISOR_COMMIT`, for
//! `edgevisor --version`: the short hash from `git rev-parse`, or
//! "unknown" when the source is not a git checkout (a crates tarball, a
//! source package). A packager can set `EDGEVISOR_COMMIT` instead.

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
