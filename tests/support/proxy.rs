//! A small fault-injecting TCP proxy placed between a node and Redis or Postgres: it can cut
//! the link (drop every connection and refuse new ones), reset the current connections once,
//! or delay traffic.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A proxy to one target address.
pub struct FaultProxy {
    port: u16,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    cut: AtomicBool,
    delay_ms: AtomicU64,
    conns: Mutex<Vec<TcpStream>>,
    stopped: AtomicBool,
}

impl ProxyState {
    fn drop_all(&self) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for c in conns.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, state: Arc<ProxyState>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = state.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if state.cut.load(Ordering::Relaxed) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `target` (`host:port`).
    pub fn start(target: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        let state = Arc::new(ProxyState::default());
        let target = target.to_owned();
        let st = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                if st.cut.load(Ordering::Relaxed) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(&target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                    continue;
                };
                {
                    let mut conns = st.conns.lock().unwrap_or_else(|e| e.into_inner());
                    conns.push(c2);
                    conns.push(u2);
                }
                let (Ok(c3), Ok(u3)) = (client.try_clone(), upstream.try_clone()) else {
                    continue;
                };
                let (s1, s2) = (st.clone(), st.clone());
                std::thread::spawn(move || pump(client, upstream, s1));
                std::thread::spawn(move || pump(u3, c3, s2));
            }
        });
        FaultProxy { port, state }
    }

    /// `host:port` to connect to instead of the target.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Drops every connection and refuses new ones until [`FaultProxy::restore`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::Relaxed);
        self.state.drop_all();
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::Relaxed);
    }

    /// Drops the current connections once; new ones go through.
    pub fn reset(&self) {
        self.state.drop_all();
    }

    /// Delays every chunk forwarded by `delay`.
    pub fn delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::Relaxed);
        self.state.drop_all();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    use super::FaultProxy;

    fn echo_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(stream: &mut TcpStream) -> bool {
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 4];
        stream.write_all(b"ping").is_ok() && stream.read_exact(&mut buf).is_ok() && &buf == b"ping"
    }

    #[test]
    fn proxy_forwards_cuts_resets_and_delays() {
        let proxy = FaultProxy::start(&echo_server());
        let mut a = TcpStream::connect(proxy.addr()).unwrap();
        assert!(round_trip(&mut a));

        proxy.reset();
        assert!(!round_trip(&mut a), "reset drops the open connection");
        let mut b = TcpStream::connect(proxy.addr()).unwrap();
        assert!(round_trip(&mut b), "and lets new ones through");

        proxy.cut();
        assert!(!round_trip(&mut b));
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        assert!(!round_trip(&mut c), "new connections are refused while cut");
        proxy.restore();
        let mut d = TcpStream::connect(proxy.addr()).unwrap();
        assert!(round_trip(&mut d));

        proxy.delay(Duration::from_millis(150));
        let started = Instant::now();
        assert!(round_trip(&mut d));
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "both directions delayed"
        );
    }
}
