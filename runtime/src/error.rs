//! Errors of the supervision library: bad specs (caught when a supervisor is
//! built), refused run-time requests, and a tree that gave up.

use thiserror::Error;

use crate::crash::Crash;

/// A supervisor or child spec that cannot be run; names the offending
/// supervisor path or child and says how to fix it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// Two siblings share an id.
    #[error("{supervisor}: duplicate child id {id:?}; child ids must be unique among siblings")]
    DuplicateChild {
        /// Path of the supervisor holding both.
        supervisor: String,
        /// The repeated id.
        id: String,
    },
    /// An id that cannot appear in a path.
    #[error("{supervisor}: invalid child id {id:?}: {why}")]
    InvalidId {
        /// Path of the supervisor.
        supervisor: String,
        /// The id as given.
        id: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A restart policy that cannot mean anything.
    #[error("{owner}: invalid restart policy: {why}")]
    Policy {
        /// Path of the supervisor or child owning the policy.
        owner: String,
        /// What is wrong and the fix.
        why: String,
    },
    /// A dynamic supervisor set up wrongly.
    #[error("{supervisor}: {why}")]
    Dynamic {
        /// Path of the supervisor.
        supervisor: String,
        /// What is wrong and the fix.
        why: String,
    },
}

/// Why a supervisor refused to add a child at run time.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StartChildError {
    /// A dynamic supervisor is at `max_children`.
    #[error("{supervisor}: refused child {id:?}: max_children {max} reached")]
    MaxChildren {
        /// Path of the supervisor.
        supervisor: String,
        /// The refused child's id.
        id: String,
        /// The limit.
        max: usize,
    },
    /// The spec itself is invalid (duplicate id, bad policy, ...).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The child's start function failed.
    #[error("{supervisor}: child {id:?} failed to start: {crash}")]
    StartFailed {
        /// Path of the supervisor.
        supervisor: String,
        /// The child's id.
        id: String,
        /// What the start function returned.
        crash: Crash,
    },
    /// The supervisor is shutting down or gone.
    #[error("supervisor {0} is not running")]
    NotRunning(String),
}

/// Why a supervisor refused to stop a child at run time.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TerminateChildError {
    /// No child with that id.
    #[error("{supervisor}: no child {id:?}")]
    NotFound {
        /// Path of the supervisor.
        supervisor: String,
        /// The id asked for.
        id: String,
    },
    /// The supervisor is shutting down or gone.
    #[error("supervisor {0} is not running")]
    NotRunning(String),
}

/// A supervisor that no longer serves requests (stopping, stopped, or gave
/// up), named by its path.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("supervisor {0} is not running")]
pub struct SupervisorStopped(pub String);

/// The root supervisor gave up: more restarts than its intensity allows, or a
/// child escalated. The gateway exits with code 3 on this.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("supervisor {path} gave up: {crash}")]
pub struct Exhausted {
    /// Path of the supervisor that gave up.
    pub path: String,
    /// Why.
    pub crash: Crash,
}
