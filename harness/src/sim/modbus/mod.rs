//! A simulated Modbus slave, over TCP and over RTU on a pty, written from
//! the Modbus specification alone: it is the independent check of the
//! gateway's own Modbus client.
//!
//! One [`ModbusSim`] holds the units (each with its four tables), their
//! faults and their counts; it is cheap to clone and every clone and every
//! server started from it share that state, so a test changes values and
//! faults while the servers run:
//!
//! ```text
//! let sim = ModbusSim::new(&[1, 2]).with_counter(1, Table::Input, 0)?;
//! sim.set_registers(1, Table::Holding, 0, &[0x1234, 0x5678])?;
//! let tcp = sim.serve_tcp().await?;              // tcp.addr()
//! let rtu = sim.serve_rtu(Some(link)).await?;    // rtu.path(), unplug(), replug()
//! sim.set_fault(2, Some((Fault::Silent, FaultMode::OneIn(3))))?;
//! let c = sim.counts(1);                         // requests, replies, ...
//! ```
//!
//! - Function codes 1 to 4 (reads), 6 and 16 (register writes); exceptions
//!   1 (unsupported function), 2 (range beyond the table), 3 (quantity 0,
//!   over 2000 bits or 125 registers, or a malformed request).
//! - The request counter (optional, per unit): a 32-bit value in two
//!   registers, high word first, that goes up by one just before each
//!   reply that reads it is built, so the replies carry 1, 2, 3 ... and a
//!   gap in what the master received is a reply it lost. Replies a fault
//!   spoils but that still carry data (`Slow`, `WrongUnit`, RTU's
//!   `BadCrc`) use up a number too; `Silent`, `Exception` and `Garbage`
//!   (and `BadCrc` on TCP, where it is garbage) do not.
//! - Faults ([`Fault`], [`FaultMode`]) are set per unit at run time.
//! - Servers stop when their handle ([`TcpSim`], [`RtuSim`]) is dropped.

mod animation;
mod bank;
mod error;
mod faults;
mod pdu;
mod rtu;
mod rtu_frame;
mod service;
mod tcp;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use animation::Animation;
pub use bank::Table;
pub use error::ModbusSimError;
pub use faults::{Fault, FaultMode};
pub use rtu::RtuSim;
pub use service::UnitCounts;
pub use tcp::TcpSim;

use service::{lock, Shared, Unit};

/// Entries in each table unless [`ModbusSim::with_table_size`] says
/// otherwise.
pub const DEFAULT_TABLE_SIZE: usize = 1024;

/// The simulated slave's units, shared with every server started from it.
#[derive(Debug, Clone)]
pub struct ModbusSim {
    shared: Arc<Shared>,
}

impl ModbusSim {
    /// Units with these ids, each with [`DEFAULT_TABLE_SIZE`] zeroed
    /// entries per table.
    pub fn new(units: &[u8]) -> Self {
        Self::with_table_size(units, DEFAULT_TABLE_SIZE)
    }

    /// Units with `size` entries per table (at most 65536, the Modbus
    /// address space), to test the exceptions at the end of a table.
    pub fn with_table_size(units: &[u8], size: usize) -> Self {
        let size = size.min(65536);
        let units = units.iter().map(|&u| (u, Unit::new(size))).collect();
        ModbusSim {
            shared: Arc::new(Shared {
                units,
                unknown_unit_exception: AtomicBool::new(false),
            }),
        }
    }

    /// Puts `unit`'s request counter in the two registers at `address` of
    /// `table` (Input or Holding).
    pub fn with_counter(
        self,
        unit: u8,
        table: Table,
        address: u16,
    ) -> Result<Self, ModbusSimError> {
        lock(&self.unit(unit)?.bank).set_counter(table, address)?;
        Ok(self)
    }

    /// Over TCP, answers requests for unknown units with exception 0x0B
    /// (gateway target failed to respond), as a Modbus gateway does,
    /// instead of not at all.
    pub fn with_unknown_unit_exception(self) -> Self {
        self.shared
            .unknown_unit_exception
            .store(true, Ordering::Relaxed);
        self
    }

    fn unit(&self, unit: u8) -> Result<&Unit, ModbusSimError> {
        self.shared
            .units
            .get(&unit)
            .ok_or(ModbusSimError::UnknownUnit(unit))
    }

    /// Writes registers of an Input or Holding table.
    pub fn set_registers(
        &self,
        unit: u8,
        table: Table,
        address: u16,
        values: &[u16],
    ) -> Result<(), ModbusSimError> {
        lock(&self.unit(unit)?.bank)
            .registers_mut(table, address, values.len())?
            .copy_from_slice(values);
        Ok(())
    }

    /// Reads registers of an Input or Holding table (e.g. what the master
    /// wrote).
    pub fn registers(
        &self,
        unit: u8,
        table: Table,
        address: u16,
        count: usize,
    ) -> Result<Vec<u16>, ModbusSimError> {
        Ok(lock(&self.unit(unit)?.bank)
            .registers(table, address, count)?
            .to_vec())
    }

    /// Writes bits of the Coils or Discrete table.
    pub fn set_bits(
        &self,
        unit: u8,
        table: Table,
        address: u16,
        values: &[bool],
    ) -> Result<(), ModbusSimError> {
        lock(&self.unit(unit)?.bank)
            .bits_mut(table, address, values.len())?
            .copy_from_slice(values);
        Ok(())
    }

    /// Reads bits of the Coils or Discrete table.
    pub fn bits(
        &self,
        unit: u8,
        table: Table,
        address: u16,
        count: usize,
    ) -> Result<Vec<bool>, ModbusSimError> {
        Ok(lock(&self.unit(unit)?.bank)
            .bits(table, address, count)?
            .to_vec())
    }

    /// Makes the register(s) at `address` change on every [`Self::tick`],
    /// so a demo shows moving values.
    pub fn animate(
        &self,
        unit: u8,
        table: Table,
        address: u16,
        animation: Animation,
    ) -> Result<(), ModbusSimError> {
        lock(&self.unit(unit)?.bank).animate(table, address, animation)
    }

    /// Advances every animation of every unit by one step.
    pub fn tick(&self) {
        for u in self.shared.units.values() {
            lock(&u.bank).tick();
        }
    }

    /// Ticks every `period` (at least 1 ms) until the returned [`Animator`]
    /// is dropped. Call it inside a tokio runtime.
    pub fn animate_every(&self, period: Duration) -> Animator {
        let sim = self.clone();
        // A zero period would make `interval` panic.
        let period = period.max(Duration::from_millis(1));
        Animator(tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.tick().await; // the first tick is immediate
            loop {
                every.tick().await;
                sim.tick();
            }
        }))
    }

    /// Sets (or with `None` clears) the fault for requests to `unit`;
    /// takes effect from the next request.
    pub fn set_fault(
        &self,
        unit: u8,
        fault: Option<(Fault, FaultMode)>,
    ) -> Result<(), ModbusSimError> {
        lock(&self.unit(unit)?.fault).set(fault);
        Ok(())
    }

    /// What `unit` has done so far (all zero for an unknown unit).
    pub fn counts(&self, unit: u8) -> UnitCounts {
        self.unit(unit).map(Unit::counts).unwrap_or_default()
    }

    /// Serves Modbus TCP on `127.0.0.1` with an ephemeral port, any
    /// number of connections at once.
    pub async fn serve_tcp(&self) -> std::io::Result<TcpSim> {
        TcpSim::start(Arc::clone(&self.shared)).await
    }

    /// Serves Modbus RTU on a new pty; with `symlink`, a link at that path
    /// follows the current slave, like udev's `/dev/serial/by-id/...`.
    /// (Async only so that it runs inside the runtime it registers with.)
    pub async fn serve_rtu(&self, symlink: Option<&Path>) -> std::io::Result<RtuSim> {
        RtuSim::start(Arc::clone(&self.shared), symlink.map(Path::to_path_buf))
    }

    /// The unit ids simulated, in order.
    pub fn units(&self) -> Vec<u8> {
        self.shared.units.keys().copied().collect()
    }
}

/// Runs the animations (see [`ModbusSim::animate_every`]); dropping it stops
/// them.
#[derive(Debug)]
pub struct Animator(JoinHandle<()>);

impl Drop for Animator {
    fn drop(&mut self) {
        self.0.abort();
    }
}
