//! `edgevisor-gen` run as the packaging step runs it: a man page for the
//! command and for every subcommand, each naming its own subcommands, and
//! completion scripts that know every subcommand.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::Path;
use std::process::Command;

use clap::CommandFactory;

/// Every visible subcommand at every level, as its path of names.
fn subcommands(cmd: &clap::Command, above: &[String], all: &mut Vec<Vec<String>>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut path = above.to_vec();
        path.push(sub.get_name().to_string());
        subcommands(sub, &path, all);
        all.push(path);
    }
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The words of `text`: runs of letters, digits, `_` and `-`.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .collect()
}

#[test]
fn man_pages_and_completions_name_every_subcommand() {
    let dir = std::env::temp_dir().join(format!("edgevisor-gen-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_edgevisor-gen"))
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let mut all = Vec::new();
    subcommands(&edgevisor::cli::Cli::command(), &[], &mut all);
    assert!(all.len() >= 5, "{all:?}");

    let top = gunzip(&dir.join("edgevisor.1.gz"));
    assert!(top.contains(".TH edgevisor 1"), "{top}");
    assert!(top.contains(".SH FILES"), "{top}");
    for path in &all {
        let page = format!("edgevisor-{}", path.join("-"));
        let text = gunzip(&dir.join(format!("{page}.1.gz")));
        assert!(text.contains(".SH SYNOPSIS"), "{page}: {text}");
        let parent = match path.len() {
            1 => top.clone(),
            n => gunzip(&dir.join(format!("edgevisor-{}.1.gz", path[..n - 1].join("-")))),
        };
        let reference = format!("{}(1)", page.replace('-', "\\-"));
        assert!(parent.contains(&reference), "{reference} not named");
    }

    for name in ["edgevisor.bash", "_edgevisor", "edgevisor.fish"] {
        let script = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(!script.trim().is_empty(), "{name} is empty");
        let words = words(&script);
        for path in &all {
            let last = path.last().unwrap();
            assert!(words.contains(&last.as_str()), "{name} lacks {last}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
