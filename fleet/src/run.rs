//! The command: the MQTT client feeding the model, the web page reading
//! it, and the table drawn every interval until Ctrl-C or SIGTERM (or once,
//! with `--once`). On a terminal the table is redrawn in place with
//! colours; into a pipe or a file each frame is printed whole, plain, and
//! followed by a blank line, so `| tail` and log files read naturally.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::message::now_ms;
use crate::model::Fleet;
use crate::mqtt::{self, Feed};
use crate::render::{self, Style};
use crate::snapshot::{self, FleetSnapshot, Link};
use crate::{http, FleetArgs, FleetError};

/// What the faces read: the model and the link, behind one lock held only
/// to apply a message or take a snapshot.
#[derive(Debug)]
struct State {
    fleet: Fleet,
    link: Link,
}

type Shared = Arc<Mutex<State>>;

fn take(state: &Shared) -> FleetSnapshot {
    // A panic while holding the lock leaves a usable model: draw it anyway.
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let now = now_ms();
    state.fleet.prune(now);
    snapshot::snapshot(&state.fleet, &state.link, now)
}

/// Runs `edgevisor fleet` until Ctrl-C or SIGTERM, or after one snapshot
/// with `--once`.
pub async fn run(args: FleetArgs) -> Result<(), FleetError> {
    let state: Shared = Arc::new(Mutex::new(State {
        fleet: Fleet::new(&args.prefix),
        link: Link {
            broker: args.broker.clone(),
            share: args.share.clone(),
            ..Link::default()
        },
    }));
    let (tx, rx) = mpsc::channel(1024);
    let client_id = args
        .client_id
        .clone()
        .unwrap_or_else(|| format!("edgevisor-fleet-{:08x}", fastrand::u32(..)));
    let login = match &args.username {
        Some(user) => Some((user.clone(), password(args.password_file.as_deref())?)),
        None => None,
    };
    let options = mqtt::Options {
        broker: args.broker.clone(),
        prefix: args.prefix.clone(),
        share: args.share.clone(),
        client_id,
        login,
        ca_file: args.ca_file.clone(),
    };
    let client = mqtt::spawn(options, tx)?;
    let consumer = tokio::spawn(consume(rx, state.clone()));
    let web = match args.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| FleetError::Bind { addr, source })?;
            let addr = listener.local_addr().unwrap_or(addr);
            eprintln!("edgevisor fleet: the web page is at http://{addr}/");
            // Also on the table: the redraw clears what stderr said.
            state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .link
                .page = Some(format!("http://{addr}/"));
            let source = state.clone();
            Some(tokio::spawn(http::serve(
                listener,
                Arc::new(move || take(&source)),
            )))
        }
        None => None,
    };
    let result = if args.once {
        once(&args, &state).await
    } else {
        table(&args, &state).await
    };
    client.abort();
    consumer.abort();
    if let Some(web) = web {
        web.abort();
    }
    result
}

async fn consume(mut rx: mpsc::Receiver<Feed>, state: Shared) {
    while let Some(feed) = rx.recv().await {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        match feed {
            Feed::Message { topic, payload } => {
                if let Err(error) = state.fleet.apply(&topic, &payload, now_ms()) {
                    tracing::warn!(%topic, %error, "fleet: ignoring a message");
                    state.link.unreadable += 1;
                    state.link.last_unreadable = Some(format!("{topic}: {error}"));
                }
            }
            Feed::Connected => {
                state.link.connected = true;
                state.link.last_error = None;
                state.link.since_ms.get_or_insert_with(now_ms);
            }
            Feed::Disconnected(why) => {
                state.link.connected = false;
                state.link.last_error = Some(why);
            }
            Feed::ShareRefused(filters) => state.link.share_refused = filters,
        }
    }
}

/// The password in `path` (trailing newline dropped), or empty without one.
fn password(path: Option<&std::path::Path>) -> Result<String, FleetError> {
    let Some(path) = path else {
        return Ok(String::new());
    };
    let text = std::fs::read_to_string(path).map_err(|source| FleetError::Password {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

async fn once(args: &FleetArgs, state: &Shared) -> Result<(), FleetError> {
    tokio::time::sleep(args.settle).await;
    let snap = take(state);
    let style = Style {
        color: std::io::stdout().is_terminal(),
        crashes: args.crashes,
        ..Style::default()
    };
    write(&render::render(&snap, style))?;
    if snap.link.connected {
        Ok(())
    } else {
        Err(FleetError::NeverConnected {
            broker: args.broker.clone(),
            waited: args.settle,
            why: snap.link.last_error.unwrap_or_else(|| "no answer".into()),
        })
    }
}

async fn table(args: &FleetArgs, state: &Shared) -> Result<(), FleetError> {
    let tty = std::io::stdout().is_terminal();
    let style = Style {
        color: tty,
        crashes: args.crashes,
        ..Style::default()
    };
    let mut term = signal(SignalKind::terminate()).map_err(FleetError::Signal)?;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if tty {
        write("\x1b[2J")?;
    }
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let text = render::render(&take(state), style);
                let frame = if tty {
                    // The last row stays free so the cursor never scrolls.
                    let rows = crossterm::terminal::size().map_or(24, |(_, rows)| rows);
                    in_place(&fit_rows(&text, usize::from(rows).saturating_sub(1)))
                } else {
                    text + "\n"
                };
                write(&frame)?;
            }
            _ = &mut stop => break,
            _ = term.recv() => break,
        }
    }
    Ok(())
}

/// `text` drawn over the previous frame: cursor home, each line cleared
/// to its end, and everything below the last line cleared.
fn in_place(text: &str) -> String {
    let mut out = String::from("\x1b[H");
    for line in text.lines() {
        out.push_str(line);
        out.push_str("\x1b[K\n");
    }
    out.push_str("\x1b[J");
    out
}

/// `text` cut to `rows` lines, the last one saying how many were left
/// out: a frame taller than the terminal would scroll, and the next one
/// would be drawn over the wrong lines.
fn fit_rows(text: &str, rows: usize) -> String {
    let total = text.lines().count();
    if total <= rows || rows < 2 {
        return text.to_string();
    }
    let mut out: String = text
        .lines()
        .take(rows - 1)
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!(
        "... {} more lines: a taller terminal, or --once, shows them\n",
        total - (rows - 1)
    ));
    out
}

fn write(text: &str) -> Result<(), FleetError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(FleetError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_drawn_in_place_clears_what_the_last_one_left() {
        assert_eq!(in_place("a\nb\n"), "\x1b[Ha\x1b[K\nb\x1b[K\n\x1b[J");
    }

    #[test]
    fn a_frame_taller_than_the_terminal_is_cut_and_says_so() {
        assert_eq!(fit_rows("a\nb\n", 2), "a\nb\n");
        assert_eq!(
            fit_rows("a\nb\nc\nd\n", 3),
            "a\nb\n... 2 more lines: a taller terminal, or --once, shows them\n"
        );
    }
}
