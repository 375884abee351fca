//! Run-time requests from a [`SupervisorHandle`](crate::handle::SupervisorHandle):
//! start a child (checked against the spec rules, duplicates and a dynamic
//! pool's size) or terminate one; and the answer to requests that arrive
//! after the supervisor stopped.

use tokio::time::Instant;

use super::core::Core;
use super::spec::validate_child;
use super::start::StartFailed;
use super::table::Command;
use crate::child::ChildSpec;
use crate::error::{SpecError, StartChildError, TerminateChildError};
use crate::snapshot::ChildState;
use crate::supervisor::Strategy;

impl Core {
    /// Carries out one request and answers it.
    pub(super) async fn on_command(&mut self, command: Command) {
        match command {
            Command::Start(spec, reply) => {
                let result = self.add_child(spec).await;
                let _ = reply.send(result);
            }
            Command::Terminate(id, reply) => {
                let result = self.remove_child(&id).await;
                let _ = reply.send(result);
            }
            Command::Ping(reply) => {
                let _ = reply.send(());
            }
        }
    }

    pub(super) async fn add_child(&mut self, spec: ChildSpec) -> Result<(), StartChildError> {
        let path = self.shared.path.clone();
        validate_child(&path, &spec)?;
        let id = spec.id.clone();
        let key = {
            let mut table = self.shared.table();
            if table.key_of(&id).is_some() {
                return Err(SpecError::DuplicateChild {
                    supervisor: path.to_string(),
                    id: id.to_string(),
                }
                .into());
            }
            if let Strategy::Dynamic { max_children } = self.shared.strategy {
                if table.len() >= max_children {
                    return Err(StartChildError::MaxChildren {
                        supervisor: path.to_string(),
                        id: id.to_string(),
                        max: max_children,
                    });
                }
            }
            table.push(spec, Instant::now())
        };
        match self.start(key, false).await {
            Ok(()) => Ok(()),
            Err(StartFailed { crash, .. }) => {
                self.shared.table().remove(key);
                Err(StartChildError::StartFailed {
                    supervisor: path.to_string(),
                    id: id.to_string(),
                    crash,
                })
            }
        }
    }

    async fn remove_child(&mut self, id: &str) -> Result<(), TerminateChildError> {
        let key = self.shared.table().key_of(id);
        let Some(key) = key else {
            return Err(TerminateChildError::NotFound {
                supervisor: self.shared.path.to_string(),
                id: id.to_string(),
            });
        };
        self.stop_child(key, ChildState::Stopped).await;
        self.shared.table().remove(key);
        Ok(())
    }
}
/// Answers a request that arrived too late.
pub(super) fn refuse(path: &str, command: Command) {
    match command {
        Command::Start(_, reply) => {
            let _ = reply.send(Err(StartChildError::NotRunning(path.to_string())));
        }
        Command::Terminate(_, reply) => {
            let _ = reply.send(Err(TerminateChildError::NotRunning(path.to_string())));
        }
        // Dropping the reply tells the caller nobody serves any more.
        Command::Ping(_) => {}
    }
}
