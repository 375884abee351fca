//! Modbus TCP for the simulated slave: a server on an ephemeral port,
//! each connection served in its own task, one request at a time (a slow
//! reply holds back the next request on that connection, as on a real
//! device).
//!
//! Framing is the MBAP header: transaction id (echoed), protocol id 0,
//! length (unit id plus PDU, 2 to 254), unit id. Corrupt means a protocol
//! id other than 0 or a length outside that range: a TCP stream has no way
//! to find the next header after that, so the connection is closed.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::pdu;
use super::service::{Outgoing, Shared};

/// A running Modbus TCP server; dropping it closes the listener and every
/// connection.
#[derive(Debug)]
pub struct TcpSim {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TcpSim {
    pub(crate) async fn start(shared: Arc<Shared>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            // Owned here so that aborting this task aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            connections.spawn(connection(Arc::clone(&shared), stream));
                        }
                        Err(e) => tracing::warn!(error = %e, "modbus tcp sim: accept failed"),
                    },
                    Some(_) = connections.join_next() => {}
                }
            }
        });
        Ok(TcpSim { addr, task })
    }

    /// Where the master should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TcpSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request: the header fields a reply needs, and the PDU.
struct Request {
    transaction: u16,
    unit: u8,
    pdu: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut header = [0u8; 7];
    stream.read_exact(&mut header).await.ok()?;
    let transaction = u16::from_be_bytes([header[0], header[1]]);
    let protocol = u16::from_be_bytes([header[2], header[3]]);
    let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
    if protocol != 0 || !(2..=254).contains(&length) {
        tracing::warn!(
            protocol,
            length,
            "modbus tcp sim: corrupt MBAP header, closing"
        );
        return None;
    }
    let mut pdu = vec![0; length - 1];
    stream.read_exact(&mut pdu).await.ok()?;
    Some(Request {
        transaction,
        unit: header[6],
        pdu,
    })
}

/// The MBAP frame carrying `pdu`.
fn mbap(transaction: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(7 + pdu.len());
    frame.extend_from_slice(&transaction.to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    // A reply PDU is at most 253 bytes (2 + 250 of data, or a write echo).
    frame.extend_from_slice(&(pdu.len() as u16 + 1).to_be_bytes());
    frame.push(unit);
    frame.extend_from_slice(pdu);
    frame
}

async fn connection(shared: Arc<Shared>, mut stream: TcpStream) {
    while let Some(req) = read_request(&mut stream).await {
        let Some(bytes) = answer(&shared, &req).await else {
            continue;
        };
        if stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// The bytes to send for `req`, if any.
async fn answer(shared: &Shared, req: &Request) -> Option<Vec<u8>> {
    if !shared.units.contains_key(&req.unit) {
        let fc = *req.pdu.first()?;
        if !shared.unknown_unit_exception.load(Ordering::Relaxed) {
            return None;
        }
        let pdu = pdu::exception(fc, pdu::GATEWAY_TARGET_FAILED);
        return Some(mbap(req.transaction, req.unit, &pdu));
    }
    // No CRC on TCP: a BadCrc fault comes back as garbage.
    Some(match shared.respond(req.unit, &req.pdu, false).await? {
        Outgoing::Reply { unit, pdu, .. } => mbap(req.transaction, unit, &pdu),
        Outgoing::Garbage(bytes) => bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbap_length_counts_the_unit_id_and_pdu() {
        assert_eq!(
            mbap(0x0102, 9, &[3, 2, 0xab, 0xcd]),
            [1, 2, 0, 0, 0, 5, 9, 3, 2, 0xab, 0xcd]
        );
    }
}
