//! `edgevisor-gen`: writes the man pages (edgevisor(1) and one page per
//! subcommand, git-style) and the bash, zsh and fish completions from the
//! CLI definition in the gateway library, `edgevisor::cli::Cli`, for the
//! `.deb`. It is a packaging tool, not part of the product: the
//! `edgevisor` binary neither grows nor gains a hidden subcommand.
//!
//! `cargo run -p edgevisor-gen -- --target aarch64-unknown-linux-gnu`
//! writes into `<target dir>/aarch64-unknown-linux-gnu/release/assets/`,
//! which is where `cargo deb --target ...` finds the manifest's
//! `target/release/assets/...` (cargo-deb maps only that prefix to the
//! target dir). Without `--target` it writes `<target dir>/release/assets/`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use flate2::write::GzEncoder;
use flate2::Compression;

/// Where the files go.
#[derive(Debug, Parser)]
#[command(about = "Write edgevisor's man pages and shell completions for the .deb")]
struct Args {
    /// The target triple given to `cargo deb --target`.
    #[arg(long)]
    target: Option<String>,
    /// Write into this folder instead.
    #[arg(long, conflicts_with = "target")]
    out: Option<PathBuf>,
}

/// The completion files and the shell each is for, named as the `.deb`
/// installs them apart from bash's (installed as `edgevisor`).
const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "edgevisor.bash"),
    (Shell::Zsh, "_edgevisor"),
    (Shell::Fish, "edgevisor.fish"),
];

fn main() -> Result<()> {
    let args = Args::parse();
    let out = match args.out {
        Some(out) => out,
        None => target_dir()?
            .join(args.target.unwrap_or_default())
            .join("release/assets"),
    };
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    remove_old_pages(&out)?;
    for path in man_pages(&out)?.into_iter().chain(completions(&out)?) {
        println!("{}", path.display());
    }
    Ok(())
}

/// Cargo's target dir: this binary runs from `<target dir>/<profile>/`,
/// whatever set it (`CARGO_TARGET_DIR`, a config file or the default).
fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("run me with `cargo run -p edgevisor-gen`, or give --out")
}

/// The CLI as the man pages show it: the plain package version, since the
/// commit and features of `--version` belong to one build, not the manual.
fn command() -> clap::Command {
    edgevisor::cli::Cli::command().version(env!("CARGO_PKG_VERSION"))
}

/// Pages of subcommands that no longer exist would otherwise be packaged by
/// the manifest's `*.1.gz`.
fn remove_old_pages(out: &Path) -> Result<()> {
    for entry in fs::read_dir(out)? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(".1.gz") {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// edgevisor.1.gz and `edgevisor-<subcommand>.1.gz` for every subcommand at
/// every level, gzipped as Debian policy asks.
fn man_pages(out: &Path) -> Result<Vec<PathBuf>> {
    let mut top = command().disable_help_subcommand(true);
    top.build();
    let mut pending: Vec<clap::Command> = top.get_subcommands().cloned().collect();
    let mut written = vec![man_page(out, top, &files_and_see_also())?];
    while let Some(cmd) = pending.pop() {
        pending.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        if !cmd.is_hide_set() {
            written.push(man_page(out, cmd, "")?);
        }
    }
    written.sort();
    Ok(written)
}

/// One page, `extra` roff appended, written gzipped into `out`.
fn man_page(out: &Path, cmd: clap::Command, extra: &str) -> Result<PathBuf> {
    let man = Man::new(cmd)
        .source(format!("edgevisor {}", env!("CARGO_PKG_VERSION")))
        .manual("edgevisor manual");
    let mut page = Vec::new();
    man.render(&mut page)?;
    page.extend_from_slice(extra.as_bytes());
    let path = out.join(format!("{}.gz", man.get_filename()));
    fs::write(&path, gzip(&page)?).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// What the top page adds to clap's sections: the files the `.deb`
/// installs and uses, and where the full reference is.
fn files_and_see_also() -> String {
    let mut roff = Roff::new();
    roff.control("SH", ["FILES"]);
    for (path, what) in [
        (
            "/etc/edgevisor/edgevisor.toml",
            "The config file (run, check and outbox read it by default).",
        ),
        (
            "/var/lib/edgevisor/",
            "The default state_dir: the durable outbox and the boot counter.",
        ),
        (
            "/usr/share/doc/edgevisor/configuration.md",
            "Every config key: type, default, allowed values, example.",
        ),
        (
            "/usr/share/doc/edgevisor/raspberry-pi.md",
            "Installing on a Raspberry Pi, the systemd unit and its watchdog.",
        ),
    ] {
        roff.control("TP", [])
            .text([bold(path)])
            .text([roman(what)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("systemctl(1), journalctl(1), mosquitto_sub(1)")]);
    roff.to_roff()
}

/// `bytes` gzipped, with no name and a zero time so builds are reproducible.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// The completion script of every shell in [`COMPLETIONS`].
fn completions(out: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (shell, name) in COMPLETIONS {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command(), "edgevisor", &mut script);
        let path = out.join(name);
        fs::write(&path, script).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
