//! Restart policies: the SPEC defaults, and one table's keys layered over
//! the policy it inherits (`[supervisor]` over the defaults, a group over
//! the root, a sensor over its group or the root), then checked.

use std::time::Duration;

use edgevisor_runtime::{OnExhausted, PolicyError, RestartPolicy};

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

/// The rules a layered policy must keep, as the runtime defines them
/// ([`RestartPolicy::problems`]); this only places each at the table's
/// `intensity` key when it has one and adds a hint in the file's words.
fn check(p: &Policy, raw: &RawPolicy, owner: &str, problems: &mut Vec<Problem>) {
    let span = raw.intensity.as_ref().map(|s| s.span());
    for problem in p.restart_policy().problems() {
        let hint = match problem {
            PolicyError::ZeroPeriod { .. } => "use e.g. period = \"60s\"",
            PolicyError::BackoffInverted { .. } => "lower backoff_initial or raise backoff_max",
            PolicyError::ZeroQuarantine => "use e.g. quarantine_for = \"10m\"",
            // The config has no jitter key: the runtime default always holds.
            PolicyError::Jitter(_) => "jitter is not configurable; report this as a bug",
        };
        problems.push(Problem::at(span.clone(), format!("{owner}: {problem}")).hint(hint));
    }
}

impl Policy {
    /// The runtime's form of this policy (the runtime's default jitter).
    pub fn restart_policy(&self) -> RestartPolicy {
        let policy = RestartPolicy::default()
            .intensity(self.intensity, self.period)
            .backoff(self.backoff_initial, self.backoff_max, self.backoff_reset);
        match self.on_exhausted {
            OnExhausted::Escalate => policy.escalate(),
            OnExhausted::Quarantine => policy.quarantine(self.quarantine_for),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    const MINIMAL: &str = "[gateway]\nid = \"gw\"\n\n[upstream]\nurl = \"mqtt://127.0.0.1:1883\"\n";

    #[test]
    fn every_broken_rule_is_reported_at_the_intensity_key_with_a_hint() {
        let text = format!(
            "{MINIMAL}\n[supervisor]\nintensity = 3\nperiod = \"0s\"\nbackoff_initial = \"10s\"\nbackoff_max = \"1s\"\nquarantine_for = \"0s\"\n"
        );
        let errors = Config::parse(Path::new("t.toml"), &text).unwrap_err().0;
        let found: Vec<(usize, &str, &str)> = errors
            .iter()
            .map(|e| {
                let rule = e.message.split(':').nth(1).unwrap_or("").trim();
                (
                    e.line,
                    rule.split(' ').next().unwrap_or(""),
                    e.hint.as_deref().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (8, "period", "use e.g. period = \"60s\""),
                (
                    8,
                    "backoff_initial",
                    "lower backoff_initial or raise backoff_max"
                ),
                (8, "quarantine_for", "use e.g. quarantine_for = \"10m\""),
            ],
            "{errors:?}"
        );
    }
}
