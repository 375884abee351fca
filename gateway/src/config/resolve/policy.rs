//! Restart policies: the SPEC defaults, and one table's keys layered over
//! the policy it inherits (`[supervisor]` over the defaults, a group over
//! the root, a sensor over its group or the root), then checked.

use std::time::Duration;

use edgevisor_runtime::OnExhausted;

use super::super::diagnostics::Problem;
use super::super::raw::RawPolicy;
use super::super::values::Dur;
use super::super::Policy;

/// SPEC section 2 defaults; sensors quarantine by default.
pub(super) const DEFAULT_POLICY: Policy = Policy {
    intensity: 5,
    period: Duration::from_secs(60),
    backoff_initial: Duration::from_millis(100),
    backoff_max: Duration::from_secs(30),
    backoff_reset: Duration::from_secs(60),
    on_exhausted: OnExhausted::Quarantine,
    quarantine_for: Duration::from_secs(600),
};

/// Applies the keys of one table over `base` and checks the result.
pub(super) fn layer(
    base: Policy,
    raw: &RawPolicy,
    owner: &str,
    problems: &mut Vec<Problem>,
) -> Policy {
    let mut p = base;
    if let Some(intensity) = &raw.intensity {
        match u32::try_from(*intensity.get_ref()) {
            Ok(n) if n >= 1 => p.intensity = n,
            _ => problems.push(
                Problem::at(
                    Some(intensity.span()),
                    format!("intensity must be at least 1 (got {})", intensity.get_ref()),
                )
                .hint("intensity is how many restarts are allowed within `period`, e.g. 5"),
            ),
        }
    }
    let set = |slot: &mut Duration, value: Option<Dur>| {
        if let Some(v) = value {
            *slot = v.0;
        }
    };
    set(&mut p.period, raw.period);
    set(&mut p.backoff_initial, raw.backoff_initial);
    set(&mut p.backoff_max, raw.backoff_max);
    set(&mut p.backoff_reset, raw.backoff_reset);
    set(&mut p.quarantine_for, raw.quarantine_for);
    if let Some(on) = &raw.on_exhausted {
        p.on_exhausted = on.get_ref().0;
    }
    check(&p, raw, owner, problems);
    p
}

/// The rules a layered policy must keep; problems are placed at the table's
/// `intensity` key when it has one.
fn check(p: &Policy, raw: &RawPolicy, owner: &str, problems: &mut Vec<Problem>) {
    let span = raw.intensity.as_ref().map(|s| s.span());
    let mut bad = |m: String, h: &str| {
        problems.push(Problem::at(span.clone(), format!("{owner}: {m}")).hint(h))
    };
    if p.period.is_zero() {
        bad(
            "period must be longer than 0".into(),
            "use e.g. period = \"60s\"",
        );
    }
    if p.backoff_initial > p.backoff_max {
        bad(
            format!(
                "backoff_initial ({:?}) is larger than backoff_max ({:?})",
                p.backoff_initial, p.backoff_max
            ),
            "lower backoff_initial or raise backoff_max",
        );
    }
    if p.quarantine_for.is_zero() {
        bad(
            "quarantine_for must be longer than 0".into(),
            "use e.g. quarantine_for = \"10m\"",
        );
    }
}
