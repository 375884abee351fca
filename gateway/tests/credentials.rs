//! Credentials changed on disk are used without a restart: found when
//! tried from outside (issue 19), where a rotated password file was only
//! picked up by restarting the service. The password file is read again
//! before every connection attempt after a failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{header, Gateway, Mosquitto, TempDir};

fn write_secret(path: &std::path::Path, secret: &str) {
    std::fs::write(path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

async fn wait_log(gateway: &Gateway, what: &str, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !gateway.log().contains(what) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what:?} in the log:\n{}",
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Mosquitto that takes only `barn` / `right-secret`, and a gateway
/// `id` logging in as `barn` with `wrong-secret` in its password file;
/// returns them with that file's path.
async fn wrong_password(id: &str) -> (Mosquitto, Gateway, PathBuf) {
    let dir = TempDir::new(id);
    let users = dir.0.join("mosquitto-users");
    let made = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&users)
        .args(["barn", "right-secret"])
        .status()
        .unwrap();
    assert!(made.success());
    let broker = Mosquitto::start_with(&format!(
        "allow_anonymous false\npassword_file {}",
        users.display()
    ))
    .await
    .unwrap();
    let secret = dir.0.join("password");
    write_secret(&secret, "wrong-secret");
    let config = header(id, broker.port(), &dir.0.join("state")).replace(
        "keep_alive = \"5s\"\n",
        &format!(
            "keep_alive = \"5s\"\nusername = \"barn\"\npassword_file = \"{}\"\n",
            secret.display()
        ),
    );
    let gateway = Gateway::start_in(dir, &config).await;
    (broker, gateway, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_fixed_on_disk_is_used_at_the_next_attempt() {
    let (_broker, gateway, secret) = wrong_password("cred").await;
    // Mosquitto refuses a wrong password as "not authorised" (code 5).
    wait_log(&gateway, "a wrong user name or password", 10).await;
    assert!(!gateway.log().contains("upstream connected"));
    write_secret(&secret, "right-secret");
    wait_log(&gateway, "upstream connected", 15).await;
    assert!(!gateway.log().contains("secret"), "{}", gateway.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_tries_a_fixed_password_at_once_not_after_the_backoff() {
    let (_broker, gateway, secret) = wrong_password("cred2").await;
    // Six failed attempts: the backoff is 4 to 8 s by now.
    tokio::time::sleep(Duration::from_millis(7500)).await;
    assert!(!gateway.log().contains("upstream connected"));
    write_secret(&secret, "right-secret");
    gateway.signal(nix::sys::signal::Signal::SIGHUP);
    wait_log(&gateway, "upstream connected", 2).await;
    assert!(gateway.log().contains("SIGHUP: trying upstream again now"));
}
