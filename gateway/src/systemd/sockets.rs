//! Listening sockets passed by systemd (socket activation, `LISTEN_FDS`):
//! with `edgevisor.socket` holding the `tcp-listen` sensors' ports, the
//! kernel keeps accepting connections into the socket's backlog while the
//! service restarts or is upgraded, and the new process accepts them.
//! Nothing is refused.
//!
//! Each passed socket goes to the `tcp-listen` sensor whose `listen`
//! address it is bound to. The process keeps every passed socket open for
//! its whole life and hands a sensor a duplicate, so a sensor that
//! crashes and restarts leaves the port open too. A sensor with no passed
//! socket binds its own, as without systemd.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;

/// The sockets passed at start, by the address they are bound to.
#[derive(Debug, Default)]
pub struct InheritedSockets {
    listeners: Mutex<HashMap<SocketAddr, TcpListener>>,
}

impl InheritedSockets {
    /// Takes the sockets of `LISTEN_FDS` (and clears those variables, so
    /// child processes do not see them). Sockets that are not TCP
    /// listeners are logged and closed.
    pub fn from_env() -> Self {
        let mut passed = listenfd::ListenFd::from_env();
        let mut listeners = HashMap::new();
        for index in 0..passed.len() {
            match passed.take_tcp_listener(index) {
                Ok(Some(listener)) => match listener.local_addr() {
                    Ok(addr) => {
                        tracing::info!(%addr, "socket passed by systemd");
                        listeners.insert(addr, listener);
                    }
                    Err(error) => {
                        tracing::warn!(index, %error, "a passed socket has no address; ignored")
                    }
                },
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(index, %error, "a passed socket is not a TCP listener; ignored (edgevisor.socket takes ListenStream= entries only)");
                }
            }
        }
        Self {
            listeners: Mutex::new(listeners),
        }
    }

    /// A duplicate of the socket passed for `listen`, if any (see
    /// [`serves`]): an exact match first.
    pub fn listener(&self, listen: SocketAddr) -> Option<std::io::Result<TcpListener>> {
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let matching = listeners.get(&listen).or_else(|| {
            listeners
                .iter()
                .find_map(|(addr, l)| serves(*addr, listen).then_some(l))
        })?;
        Some(matching.try_clone())
    }

    /// Passed sockets that no sensor of `listens` takes: a socket unit out
    /// of step with the config.
    pub fn unused(&self, listens: &[SocketAddr]) -> Vec<SocketAddr> {
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        listeners
            .keys()
            .filter(|addr| !listens.iter().any(|l| serves(**addr, *l)))
            .copied()
            .collect()
    }
}

/// Whether a socket bound to `passed` serves a sensor listening on
/// `listen`: the same address, or the same port when both addresses are
/// unspecified (`ListenStream=5000` binds `[::]:5000`, which takes IPv4
/// too).
fn serves(passed: SocketAddr, listen: SocketAddr) -> bool {
    passed == listen
        || (passed.port() == listen.port()
            && passed.ip().is_unspecified()
            && listen.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(listeners: Vec<TcpListener>) -> InheritedSockets {
        let map = listeners
            .into_iter()
            .map(|l| (l.local_addr().unwrap(), l))
            .collect();
        InheritedSockets {
            listeners: Mutex::new(map),
        }
    }

    #[test]
    fn a_sensor_gets_a_duplicate_of_the_socket_bound_to_its_address() {
        let passed = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = passed.local_addr().unwrap();
        let sockets = with(vec![passed]);
        let dup = sockets.listener(addr).unwrap().unwrap();
        assert_eq!(dup.local_addr().unwrap(), addr);
        drop(dup);
        // The original stays open: a second start gets it again.
        assert!(sockets.listener(addr).unwrap().is_ok());
        let other = SocketAddr::from(([127, 0, 0, 1], addr.port().wrapping_add(1)));
        assert!(sockets.listener(other).is_none());
        assert_eq!(sockets.unused(&[addr]), Vec::<SocketAddr>::new());
        assert_eq!(sockets.unused(&[other]), vec![addr]);
    }

    #[test]
    fn an_any_address_matches_the_other_familys_any_address() {
        let Ok(passed) = TcpListener::bind("[::]:0") else {
            return; // no IPv6 here
        };
        let port = passed.local_addr().unwrap().port();
        let sockets = with(vec![passed]);
        let v4_any = SocketAddr::from(([0, 0, 0, 0], port));
        assert!(sockets.listener(v4_any).is_some());
        assert!(sockets
            .listener(SocketAddr::from(([127, 0, 0, 1], port)))
            .is_none());
    }
}
