//! `edgevisor outbox stats|verify --config PATH` against a real outbox file.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use edgevisor::outbox::{Class, Message, Outbox, DB_FILE};

fn run(args: &[&str], config: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgevisor"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn stats_counts_and_verify_checks_integrity() {
    let dir = std::env::temp_dir().join(format!("edgevisor-outbox-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state");
    let config = dir.join("edgevisor.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nid = \"gw\"\nstate_dir = \"{}\"\n\n[upstream]\nurl = \"mqtt://127.0.0.1:1\"\n",
            state.display()
        ),
    )
    .unwrap();
    let (code, text) = run(&["outbox", "stats"], &config);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no outbox"), "{text}");

    let (outbox, _) = Outbox::open(&state, 1 << 30);
    let message = |class, n: usize| Message {
        class,
        sensor: "s".into(),
        topic: "t".into(),
        seq: None,
        payload: vec![b'x'; n].into(),
    };
    outbox.append(vec![
        message(Class::Report, 9),
        message(Class::Telemetry, 99),
        message(Class::Telemetry, 99),
    ]);
    outbox.sync();
    // While the service holds it open.
    let (code, text) = run(&["outbox", "stats"], &config);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("reports"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("telemetry")
            && l.contains(" 2 messages")
            && l.contains(" 200 bytes")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("total") && l.contains(" 3 messages")),
        "{text}"
    );
    // No service runs here: the file alone cannot say whether it drains.
    assert!(
        text.contains("upstream: no running service answered"),
        "{text}"
    );
    let (code, text) = run(&["outbox", "verify"], &config);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("integrity ok"), "{text}");
    drop(outbox);

    std::fs::write(state.join(DB_FILE), vec![0x42; 8192]).unwrap();
    let (code, text) = run(&["outbox", "verify"], &config);
    assert_eq!(code, Some(1), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
