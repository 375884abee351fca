//! OTP-style supervision trees on tokio.
//!
//! A [`Supervisor`] starts its children in order and, when one crashes
//! (returns an error or panics), restarts it and the siblings its
//! [`Strategy`] names, with exponential backoff and jitter, until more than
//! `intensity` restarts happen within `period`. Then it either escalates
//! (stops everything and fails to its parent, as OTP does) or quarantines
//! the failing child and retries it later, so that one bad sensor never
//! takes a gateway down.
//!
//! The crate knows nothing of I/O, serde or MQTT; the gateway turns sensors
//! into [`ChildSpec`]s and turns [`Event`]s into crash reports.
//!
//! ```no_run
//! use std::time::Duration;
//! use edgevisor_runtime::{ChildSpec, Crash, RestartPolicy, Strategy, Supervisor, SupervisorSpec};
//!
//! # async fn demo() {
//! let spec = SupervisorSpec::new(Strategy::OneForOne)
//!     .policy(RestartPolicy::default().intensity(5, Duration::from_secs(60)))
//!     .child(ChildSpec::worker("sensor", |ctx| async move {
//!         ctx.shutdown_requested().await;
//!         Ok::<(), Crash>(())
//!     }));
//! let tree = Supervisor::new("root", spec).expect("valid spec").spawn();
//! println!("{:?}", tree.snapshot());
//! tree.shutdown().await.expect("clean stop");
//! # }
//! ```

pub mod backoff;
mod child;
mod crash;
pub mod decision;
mod error;
mod event;
mod handle;
pub mod intensity;
mod live;
mod policy;
mod snapshot;
mod stop_signal;
mod supervisor;

pub use child::{ChildContext, ChildKind, ChildSpec, Restart, Running, Shutdown, Starting};
pub use crash::{reason, Crash};
pub use error::{Exhausted, SpecError, StartChildError, SupervisorStopped, TerminateChildError};
pub use event::{Action, Event, EventKind, StopReason};
pub use handle::SupervisorHandle;
pub use live::{ChildView, LiveChildren};
pub use policy::{OnExhausted, PolicyError, RestartPolicy};
pub use snapshot::{ChildSnapshot, ChildState, TreeSnapshot};
pub use stop_signal::StopSignal;
pub use supervisor::{ChildSource, Strategy, Supervisor, SupervisorSpec};
