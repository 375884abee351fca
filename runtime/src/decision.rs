//! The restart decision: given how a child ended, its restart type, its
//! window, its backoff series and the clock, what does the supervisor do?
//!
//! Like rumqttc's `state.rs`, this is the state machine without the I/O: the
//! supervisor loop feeds it and carries out the answer. Everything here runs
//! on plain values and is tested without tasks.

use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::BackoffState;
use crate::child::Restart;
use crate::intensity::IntensityWindow;
use crate::policy::{OnExhausted, RestartPolicy};

/// How a child's run ended, as far as restarting is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The body returned `Ok(())`.
    Normal,
    /// The body returned an error, panicked, or failed to start.
    Crash,
}

/// What the supervisor does next with the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after `delay` (zero: now).
    Restart {
        /// Backoff before the restart.
        delay: Duration,
    },
    /// Park it; retry after `for_`.
    Quarantine {
        /// How long it stays parked.
        for_: Duration,
    },
    /// Give up: the supervisor stops everything and fails to its parent.
    Escalate,
    /// Leave it down (temporary, or transient that ended normally).
    StayDown,
}

/// The decision plus the figures a crash report carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Restarts inside the window, counting the one just asked for.
    pub restarts_in_window: u32,
}

/// The facts about one ended run.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// Normal end or crash.
    pub ending: Ending,
    /// The child's restart type.
    pub restart: Restart,
    /// How long the run lasted (for the backoff reset).
    pub ran_for: Duration,
    /// When it ended.
    pub now: Instant,
}

/// Decides what follows `exit`, updating the window (the child's own or the
/// supervisor's shared one) and the child's backoff series. `unit_sample` is
/// uniform in `[0,1)` and drives the jitter.
pub fn decide(
    exit: Exit,
    policy: &RestartPolicy,
    window: &mut IntensityWindow,
    backoff: &mut BackoffState,
    unit_sample: f64,
) -> Verdict {
    if !wants_restart(exit.restart, exit.ending) {
        return Verdict {
            decision: Decision::StayDown,
            restarts_in_window: window.count(exit.now, policy.period),
        };
    }
    let (restarts_in_window, exhausted) = window.record(exit.now, policy.intensity, policy.period);
    let decision = if exhausted {
        match policy.on_exhausted {
            OnExhausted::Escalate => Decision::Escalate,
            OnExhausted::Quarantine => Decision::Quarantine {
                for_: policy.quarantine_for,
            },
        }
    } else {
        Decision::Restart {
            delay: backoff.next_delay(policy, exit.ran_for, unit_sample),
        }
    };
    Verdict {
        decision,
        restarts_in_window,
    }
}

/// OTP's restart types: permanent always, transient only after a crash,
/// temporary never.
pub fn wants_restart(restart: Restart, ending: Ending) -> bool {
    match restart {
        Restart::Permanent => true,
        Restart::Transient => ending == Ending::Crash,
        Restart::Temporary => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(now: Instant, restart: Restart, ending: Ending) -> Exit {
        Exit {
            ending,
            restart,
            ran_for: Duration::from_millis(5),
            now,
        }
    }

    fn policy() -> RestartPolicy {
        RestartPolicy::default()
            .jitter(0.0)
            .intensity(3, Duration::from_secs(10))
    }

    #[test]
    fn restarts_with_growing_backoff_then_escalates() {
        let p = policy();
        let (mut w, mut b) = (IntensityWindow::default(), BackoffState::default());
        let t0 = Instant::now();
        let mut seen = Vec::new();
        for i in 0..4u64 {
            let v = decide(
                exit(
                    t0 + Duration::from_secs(i),
                    Restart::Permanent,
                    Ending::Crash,
                ),
                &p,
                &mut w,
                &mut b,
                0.5,
            );
            seen.push((v.decision, v.restarts_in_window));
        }
        let ms = Duration::from_millis;
        assert_eq!(
            seen,
            [
                (Decision::Restart { delay: ms(100) }, 1),
                (Decision::Restart { delay: ms(200) }, 2),
                (Decision::Restart { delay: ms(400) }, 3),
                (Decision::Escalate, 4),
            ]
        );
    }

    #[test]
    fn exhaustion_quarantines_when_configured() {
        let p = policy().quarantine(Duration::from_secs(600));
        let (mut w, mut b) = (IntensityWindow::default(), BackoffState::default());
        let now = Instant::now();
        let mut last = None;
        for _ in 0..4 {
            last = Some(decide(
                exit(now, Restart::Permanent, Ending::Crash),
                &p,
                &mut w,
                &mut b,
                0.5,
            ));
        }
        assert_eq!(
            last.map(|v| v.decision),
            Some(Decision::Quarantine {
                for_: Duration::from_secs(600)
            })
        );
    }

    #[test]
    fn restarts_spread_beyond_the_period_never_exhaust() {
        let p = policy();
        let (mut w, mut b) = (IntensityWindow::default(), BackoffState::default());
        let t0 = Instant::now();
        for i in 0..100u64 {
            let v = decide(
                exit(
                    t0 + Duration::from_secs(4 * i),
                    Restart::Permanent,
                    Ending::Crash,
                ),
                &p,
                &mut w,
                &mut b,
                0.5,
            );
            assert!(
                matches!(v.decision, Decision::Restart { .. }),
                "restart {i}: {v:?}"
            );
        }
    }

    #[test]
    fn restart_types_follow_otp() {
        let p = policy();
        let now = Instant::now();
        let cases = [
            (Restart::Permanent, Ending::Normal, true),
            (Restart::Permanent, Ending::Crash, true),
            (Restart::Transient, Ending::Normal, false),
            (Restart::Transient, Ending::Crash, true),
            (Restart::Temporary, Ending::Normal, false),
            (Restart::Temporary, Ending::Crash, false),
        ];
        for (restart, ending, restarts) in cases {
            let (mut w, mut b) = (IntensityWindow::default(), BackoffState::default());
            let v = decide(exit(now, restart, ending), &p, &mut w, &mut b, 0.5);
            assert_eq!(
                matches!(v.decision, Decision::Restart { .. }),
                restarts,
                "{restart:?} {ending:?}"
            );
            if !restarts {
                assert_eq!(v.decision, Decision::StayDown);
                assert_eq!(
                    w.count(now, p.period),
                    0,
                    "a child left down uses no intensity"
                );
            }
        }
    }
}
