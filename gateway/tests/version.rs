//! `edgevisor --version` through the real binary: the release, the commit
//! it was built from and whether the embedded broker is built in.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn version_line(flag: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_edgevisor"))
        .arg(flag)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// HEAD's short hash, when the tests run in the checkout they were built from.
fn head() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn version_names_the_release_the_commit_and_the_embedded_broker() {
    let line = version_line("--version");
    assert_eq!(line, version_line("-V"));
    let broker = if cfg!(feature = "embedded-broker") {
        "yes"
    } else {
        "no"
    };
    let commit = env!("EDGEVISOR_COMMIT");
    assert_eq!(
        line,
        format!(
            "edgevisor {} (commit {commit}, embedded broker: {broker})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(
        commit == "unknown" || commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "{commit:?} is neither a short hash nor \"unknown\""
    );
    if std::env::var_os("EDGEVISOR_COMMIT").is_none() {
        if let Some(head) = head() {
            assert_eq!(commit, head, "built from HEAD, so --version names it");
        }
    }
}
