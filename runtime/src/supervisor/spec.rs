//! The supervisor spec: strategy, restart policy and children, checked
//! before anything starts so that a bad tree is refused with a clear error.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use super::source::{ChildSource, Source};
use crate::child::{ChildSpec, ChildStart};
use crate::crash::Crash;
use crate::error::SpecError;
use crate::policy::RestartPolicy;

/// Which siblings a child's restart takes along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Only the failed child restarts.
    OneForOne,
    /// Every child stops (reverse order) and restarts (start order).
    OneForAll,
    /// The failed child and those started after it.
    RestForOne,
    /// OTP's simple_one_for_one: children of one kind added at run time,
    /// each restarted alone, at most `max_children` at once.
    Dynamic {
        /// Further start requests are refused with a clear error.
        max_children: usize,
    },
}

impl Strategy {
    /// The config word: `one_for_one`, `one_for_all`, `rest_for_one`, `dynamic`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
            Strategy::Dynamic { .. } => "dynamic",
        }
    }
}

/// What a supervisor is: its strategy, its restart policy (the shared window
/// of children without a policy of their own) and its children in start
/// order.
#[derive(Clone, Debug)]
pub struct SupervisorSpec {
    pub(crate) strategy: Strategy,
    /// Shared with the run loop (and every decision on its window) rather
    /// than copied into each running supervisor.
    pub(crate) policy: Arc<RestartPolicy>,
    pub(crate) children: Vec<ChildSpec>,
    /// Where children added at run time come from, if anywhere.
    pub(crate) source: Option<Source>,
}

impl SupervisorSpec {
    /// An empty supervisor with the default policy.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            policy: Arc::new(RestartPolicy::default()),
            children: Vec::new(),
            source: None,
        }
    }

    /// Sets the restart policy (an `Arc` lets many supervisors share one).
    pub fn policy(mut self, policy: impl Into<Arc<RestartPolicy>>) -> Self {
        self.policy = policy.into();
        self
    }

    /// Appends a child; children start in the order they are added.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// Appends many children.
    pub fn children(mut self, children: impl IntoIterator<Item = ChildSpec>) -> Self {
        self.children.extend(children);
        self
    }

    /// Gives the supervisor a source of children: `open` runs at each of its
    /// starts (after its initial children) and returns a stream whose every
    /// item is added as a child, as [`start_child`] would add it. See
    /// `source.rs` for what a failed open or an ended stream means.
    ///
    /// [`start_child`]: crate::SupervisorHandle::start_child
    pub fn source<F, Fut>(mut self, open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ChildSource, Crash>> + Send + 'static,
    {
        self.source = Some(Source::new(open));
        self
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Checks this spec and every nested one; `path` names this supervisor.
    pub(crate) fn validate(&self, path: &str) -> Result<(), SpecError> {
        self.policy.validate_for(path)?;
        if let Strategy::Dynamic { max_children } = self.strategy {
            if max_children == 0 {
                return Err(SpecError::Dynamic {
                    supervisor: path.to_string(),
                    why: "max_children is 0: no child could ever start; set it to at least 1"
                        .into(),
                });
            }
            if self.children.len() > max_children {
                return Err(SpecError::Dynamic {
                    supervisor: path.to_string(),
                    why: format!(
                        "{} initial children exceed max_children {max_children}",
                        self.children.len()
                    ),
                });
            }
        }
        let mut seen = HashSet::with_capacity(self.children.len());
        for child in &self.children {
            validate_child(path, child)?;
            if !seen.insert(child.id.clone()) {
                return Err(SpecError::DuplicateChild {
                    supervisor: path.to_string(),
                    id: child.id.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// Checks one child's id, own policy and (for a supervisor) its subtree.
pub(crate) fn validate_child(supervisor: &str, child: &ChildSpec) -> Result<(), SpecError> {
    let invalid = |why| SpecError::InvalidId {
        supervisor: supervisor.to_string(),
        id: child.id.to_string(),
        why,
    };
    if child.id.is_empty() {
        return Err(invalid("ids must not be empty"));
    }
    if child.id.contains('/') {
        return Err(invalid(
            "ids must not contain '/', which separates path segments",
        ));
    }
    let path = format!("{supervisor}/{}", child.id);
    if let Some(policy) = &child.policy {
        policy.validate_for(&path)?;
    }
    if let ChildStart::Supervisor(spec) = &child.start {
        spec.validate(&path)?;
    }
    Ok(())
}
