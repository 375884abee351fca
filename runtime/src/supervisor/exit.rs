//! A child's exit: the facts gathered under the table lock, the restart
//! decision asked of [`decide`], the crash reported, and the decision
//! carried out (restart, quarantine, stay down, or give up and escalate).

use std::sync::Arc;

use tokio::time::Instant;

use super::core::Core;
use crate::child::Restart;
use crate::crash::{reason, Crash};
use crate::decision::{decide, Decision, Ending, Exit, Verdict};
use crate::event::{Action, EventKind, StopReason};
use crate::policy::RestartPolicy;
use crate::snapshot::ChildState;
use crate::supervisor::Strategy;

/// A child's end as reported by its task (or by a failed start). Sent
/// boxed, as commands are: an idle channel keeps a block of 32 slots, and
/// a slot the size of a pointer keeps an idle supervisor small.
pub(crate) struct ExitMsg {
    pub(super) key: u64,
    pub(super) epoch: u32,
    pub(super) outcome: Result<(), Crash>,
}

/// An exit with the decision taken on it.
struct Judged {
    id: Arc<str>,
    /// `None` for an end that is no crash (a transient or temporary child
    /// returning normally).
    crash: Option<Crash>,
    verdict: Verdict,
    policy: Arc<RestartPolicy>,
}

impl Core {
    /// Handles one exit; `Err` when the restart intensity is exhausted and
    /// the supervisor must give up.
    pub(super) async fn on_exit(&mut self, exit: ExitMsg) -> Result<(), Crash> {
        let key = exit.key;
        let Some(judged) = self.judge(exit) else {
            // A stale exit: the child is gone or has been restarted since.
            return Ok(());
        };
        if let Some(crash) = &judged.crash {
            let action = match judged.verdict.decision {
                Decision::Restart { delay } => Action::Restart { delay },
                Decision::Quarantine { for_ } => Action::Quarantine { for_ },
                Decision::Escalate => Action::Escalate,
                Decision::StayDown => Action::None,
            };
            self.emit(&judged.id, || EventKind::Crashed {
                crash: crash.clone(),
                restarts_in_window: judged.verdict.restarts_in_window,
                intensity: judged.policy.intensity,
                period: judged.policy.period,
                action,
            });
        }
        match judged.verdict.decision {
            Decision::Restart { delay } => self.restart_after(key, delay).await,
            Decision::Quarantine { for_ } => self.quarantine(key, for_),
            Decision::StayDown => self.leave_down(key, judged.crash.is_some()),
            Decision::Escalate => return Err(exhausted(&judged)),
        }
        Ok(())
    }

    /// Records the exit in the child's record and decides what to do;
    /// `None` for a stale exit.
    fn judge(&mut self, exit: ExitMsg) -> Option<Judged> {
        let now = Instant::now();
        let sample = self.rng.f64();
        let mut table = self.shared.table();
        let child = table.get_mut(exit.key).filter(|c| c.epoch == exit.epoch)?;
        child.task = None;
        child.stop = None;
        child.nested = None;
        let ending = if exit.outcome.is_ok() {
            Ending::Normal
        } else {
            Ending::Crash
        };
        let crash = crash_of(exit.outcome, child.spec.restart);
        if let Some(crash) = &crash {
            child.last_reason = Some(crash.reason.clone());
        }
        let policy = child
            .spec
            .policy
            .clone()
            .unwrap_or_else(|| self.policy.clone());
        let window = child.window.as_mut().unwrap_or(&mut self.window);
        let facts = Exit {
            ending,
            restart: child.spec.restart,
            ran_for: now.saturating_duration_since(child.started_at),
            now,
        };
        let verdict = decide(facts, &policy, window, &mut child.backoff, sample);
        Some(Judged {
            id: child.spec.id.clone(),
            crash,
            verdict,
            policy,
        })
    }

    /// A child that is not restarted: dynamic and temporary children are
    /// forgotten (a dynamic slot frees up; a temporary child's spec is
    /// dropped, as OTP does), others stay visible as `stopped`.
    fn leave_down(&mut self, key: u64, crashed: bool) {
        let now = Instant::now();
        let id = {
            let mut table = self.shared.table();
            let Some(child) = table.get_mut(key) else {
                return;
            };
            child.set_state(ChildState::Stopped, now);
            let id = child.spec.id.clone();
            let dynamic = matches!(self.shared.strategy, Strategy::Dynamic { .. });
            if dynamic || child.spec.restart == Restart::Temporary {
                table.remove(key);
            }
            id
        };
        let reason = if crashed {
            StopReason::Crashed
        } else {
            StopReason::Exited
        };
        self.emit(&id, || EventKind::Stopped { reason });
    }
}

/// The crash an exit counts as: its own, or for a permanent child that
/// returned normally, a `normal` crash (permanent children always restart).
fn crash_of(outcome: Result<(), Crash>, restart: Restart) -> Option<Crash> {
    match outcome {
        Err(crash) => Some(crash),
        Ok(()) if restart == Restart::Permanent => Some(Crash::new(
            reason::NORMAL,
            "exited normally; permanent children are always restarted",
        )),
        Ok(()) => None,
    }
}

/// The supervisor's own crash when a child's exit exhausted its intensity.
fn exhausted(judged: &Judged) -> Crash {
    let id = &judged.id;
    // No crash means a permanent child returned normally (which counts as
    // a restart, as in OTP): say so instead of nothing.
    let last = judged.crash.as_ref().map_or_else(
        || format!("{id}: {}", reason::NORMAL),
        |c| format!("{id}: {c}"),
    );
    Crash::new(
        reason::EXHAUSTED,
        format!(
            "more than {} restarts in {:?}; last: {last}",
            judged.policy.intensity, judged.policy.period
        ),
    )
}
