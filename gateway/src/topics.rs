//! The upstream topic names of SPEC section 5, all under
//! `<topic_prefix>/<gateway.id>/`.

/// Builds topic names for one gateway.
#[derive(Debug, Clone)]
pub struct Topics {
    base: String,
}

impl Topics {
    /// Topics under `<prefix>/<gateway>/`.
    pub fn new(prefix: &str, gateway: &str) -> Self {
        Self {
            base: format!("{prefix}/{gateway}/"),
        }
    }

    /// `status` (retained; also the Last Will's topic).
    pub fn status(&self) -> String {
        format!("{}status", self.base)
    }

    /// `telemetry/<sensor>`.
    pub fn telemetry(&self, sensor: &str) -> String {
        format!("{}telemetry/{sensor}", self.base)
    }

    /// `crash/<sensor>`.
    pub fn crash(&self, sensor: &str) -> String {
        format!("{}crash/{sensor}", self.base)
    }

    /// `deadletter/<sensor>`.
    pub fn deadletter(&self, sensor: &str) -> String {
        format!("{}deadletter/{sensor}", self.base)
    }

    /// `state/<sensor>` (retained).
    pub fn state(&self, sensor: &str) -> String {
        format!("{}state/{sensor}", self.base)
    }

    /// `tree` (retained).
    pub fn tree(&self) -> String {
        format!("{}tree", self.base)
    }
}
