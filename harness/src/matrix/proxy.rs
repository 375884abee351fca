//! A TCP proxy between the gateway and its broker that the fault matrix
//! can slow down (a few KB/s, as a congested uplink looks) or cut (a
//! partition: connections are dropped and new ones refused until healed).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Everything, as fast as it comes.
    Open,
    /// At most this many bytes a second in each direction.
    Throttled(u32),
    /// Nothing: open connections are dropped, new ones closed at once.
    Cut,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// Where the gateway connects, on 127.0.0.1.
    pub port: u16,
    link: Arc<watch::Sender<Link>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free port and forwards each connection to
    /// `127.0.0.1:broker_port`.
    pub async fn start(broker_port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let link = Arc::new(watch::channel(Link::Open).0);
        let task = tokio::spawn(accept(listener, broker_port, link.clone()));
        Ok(Self { port, link, task })
    }

    /// Changes what gets through, for connections open and to come.
    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, broker_port: u16, link: Arc<watch::Sender<Link>>) {
    while let Ok((client, _)) = listener.accept().await {
        if *link.borrow() == Link::Cut {
            continue; // dropped: the gateway sees its connection closed
        }
        let link = link.subscribe();
        tokio::spawn(async move {
            let Ok(broker) = TcpStream::connect(("127.0.0.1", broker_port)).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (broker_read, broker_write) = broker.into_split();
            // Either direction ending (or a cut) ends both: dropping the
            // halves closes the sockets.
            tokio::select! {
                _ = pipe(client_read, broker_write, link.clone()) => {}
                _ = pipe(broker_read, client_write, link) => {}
            }
        });
    }
}

/// Copies `from` to `to` under the link's current rule until either side
/// closes or the link is cut.
async fn pipe(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut link: watch::Receiver<Link>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let rule = *link.borrow_and_update();
        let limit = match rule {
            Link::Cut => return,
            Link::Open => buf.len(),
            // A slice of a tenth of a second's allowance per read.
            Link::Throttled(per_s) => (per_s as usize / 10).clamp(1, buf.len()),
        };
        let read = tokio::select! {
            read = from.read(&mut buf[..limit]) => read,
            _ = link.changed() => continue,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if let Link::Throttled(per_s) = rule {
            let pause = Duration::from_secs_f64(n as f64 / f64::from(per_s.max(1)));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = link.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_pass_when_open_and_a_cut_closes_the_connection() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_port = server.local_addr().unwrap().port();
        let proxy = Proxy::start(server_port).await.unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        let (mut far, _) = server.accept().await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        proxy.set(Link::Cut);
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), far.read_to_end(&mut rest))
            .await
            .expect("the cut closes the broker side")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
}
