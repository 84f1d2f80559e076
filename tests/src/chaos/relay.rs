//! The harness's userspace TCP relay. Every connection it accepts is forwarded to a peer
//! node, byte for byte (libp2p's Noise handshake runs end to end through it), under the
//! conditions of its link:
//!
//! - an impairment: delay, jitter and loss, for links of a node behind a slow path (the
//!   kernel here has no netem). A relay sees a byte stream, not packets, so a "lost"
//!   segment arrives one retransmission timeout late and holds back what follows it,
//!   which is what TCP over a lossy path does to the application;
//! - stalled in one direction: bytes are held (and, once the relay's buffer is full, the
//!   sender's window closes) until the stall ends, as over a blackholed path that heals;
//! - severed: every open connection is closed and new ones are closed at once: the TCP
//!   proxy that drops connections of the loopback fallback.
//!
//! It must never change, drop or reorder a byte it forwards; it only delays, holds or
//! closes.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::plan::Impairment;

/// One segment's worth: a read of at most this is delayed (or "lost") as one.
const SEGMENT_BYTES: usize = 1448;
/// Segments in flight inside the relay per direction, before the sender is pushed back.
const SEGMENTS_IN_FLIGHT_MAX: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The conditions of one link between two nodes, end 0 and end 1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkState {
    pub impairment: Option<Impairment>,
    /// `stalled[0]`: bytes from end 0 to end 1 are held; `stalled[1]`: the other way.
    pub stalled: [bool; 2],
    pub severed: bool,
}

/// A link's state, shared by its relays and changed by the harness.
pub struct Link {
    state: Mutex<LinkState>,
    changed: watch::Sender<u64>,
}

impl Link {
    pub fn new(state: LinkState) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(state),
            changed: watch::channel(0).0,
        })
    }

    pub fn state(&self) -> LinkState {
        *self.state.lock().expect("link state lock")
    }

    pub fn set(&self, state: LinkState) {
        let mut s = self.state.lock().expect("link state lock");
        if *s != state {
            *s = state;
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Resolves once bytes in direction `dir` may flow.
    async fn unstalled(&self, dir: usize) {
        let mut rx = self.changed.subscribe();
        while self.state().stalled[dir] {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Resolves once the link is severed.
    async fn severed(&self) {
        let mut rx = self.changed.subscribe();
        while !self.state().severed {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Where an accepted connection goes.
#[derive(Debug, Clone)]
pub enum Route {
    /// Always to `target`; the accepted side is end `from_end` of the link.
    Fixed { target: SocketAddr, from_end: usize },
    /// By the connecting address: from end 0's address to end 1's listener and back.
    BySource { ends: [SocketAddr; 2] },
}

/// Starts a relay on `listener` for `link` (on the current tokio runtime). Outgoing
/// connections are made from `bind`, when given, so that a route in the target's
/// namespace can tell the link's packets apart.
pub fn spawn(listener: TcpListener, route: Route, bind: Option<IpAddr>, link: Arc<Link>) {
    tokio::spawn(async move {
        loop {
            let Ok((inbound, from)) = listener.accept().await else {
                // Out of descriptors, say: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (target, from_end) = match &route {
                Route::Fixed { target, from_end } => (*target, *from_end),
                Route::BySource { ends } => match ends.iter().position(|e| e.ip() == from.ip()) {
                    Some(end) => (ends[1 - end], end),
                    None => continue,
                },
            };
            if link.state().severed {
                continue;
            }
            tokio::spawn(forward(inbound, target, bind, from_end, link.clone()));
        }
    });
}

async fn connect(target: SocketAddr, bind: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = bind {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(target)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn forward(
    inbound: TcpStream,
    target: SocketAddr,
    bind: Option<IpAddr>,
    from_end: usize,
    link: Arc<Link>,
) {
    let Ok(outbound) = connect(target, bind).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (ir, iw) = inbound.into_split();
    let (or, ow) = outbound.into_split();
    let both = async {
        tokio::join!(
            pump(ir, ow, from_end, link.clone()),
            pump(or, iw, 1 - from_end, link.clone())
        )
    };
    // Severing drops both sockets: the nodes see their connection closed.
    tokio::select! {
        _ = both => {}
        () = link.severed() => {}
    }
}

/// Moves bytes from `from` to `to`, travelling in direction `dir` of the link.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    dir: usize,
    link: Arc<Link>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(SEGMENTS_IN_FLIGHT_MAX);
    let reader = {
        let link = link.clone();
        async move {
            let mut rng = StdRng::from_entropy();
            let mut buf = vec![0u8; SEGMENT_BYTES];
            let mut last = Instant::now();
            loop {
                let n = match from.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut at = Instant::now();
                if let Some(imp) = link.state().impairment {
                    at += imp.sample(&mut rng);
                }
                // A stream keeps its order: nothing overtakes a late segment.
                at = at.max(last);
                last = at;
                if tx.send((at, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            link.unstalled(dir).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn relay(link: Arc<Link>) -> SocketAddr {
        let target = echo_server().await;
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        spawn(
            l,
            Route::Fixed {
                target,
                from_end: 0,
            },
            None,
            link,
        );
        addr
    }

    async fn round_trip(addr: SocketAddr, payload: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(payload).await?;
        let mut back = vec![0u8; payload.len()];
        s.read_exact(&mut back).await?;
        Ok(back)
    }

    #[tokio::test]
    async fn forwards_every_byte_in_order_through_delay_jitter_and_loss() {
        let link = Link::new(LinkState {
            impairment: Some(Impairment {
                delay: Duration::from_millis(20),
                jitter: Duration::from_millis(15),
                loss_pct: 20.0,
            }),
            ..LinkState::default()
        });
        let addr = relay(link).await;
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        let back = round_trip(addr, &payload).await.expect("echo");
        assert_eq!(back, payload);
        // Two one-way delays at least, each direction.
        assert!(started.elapsed() >= Duration::from_millis(10));
    }

    #[tokio::test]
    async fn a_stall_holds_bytes_until_it_ends_and_severing_closes() {
        let link = Link::new(LinkState::default());
        let addr = relay(link.clone()).await;
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"before").await.expect("write");
        let mut b = [0u8; 6];
        s.read_exact(&mut b).await.expect("read");
        link.set(LinkState {
            stalled: [true, false],
            ..LinkState::default()
        });
        s.write_all(b"held").await.expect("write");
        let mut h = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut h)).await;
        assert!(early.is_err(), "a stalled direction delivered bytes");
        link.set(LinkState::default());
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut h))
            .await
            .expect("delivered after the stall")
            .expect("read");
        assert_eq!(&h, b"held");
        link.set(LinkState {
            severed: true,
            ..LinkState::default()
        });
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
            .await
            .expect("closed when severed");
        assert!(n.map_or(true, |n| n == 0));
        // New connections are closed at once while severed.
        assert!(round_trip(addr, b"x").await.is_err());
    }
}
