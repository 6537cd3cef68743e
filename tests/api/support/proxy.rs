//! A TCP proxy in front of MySQL that a test can cut and restore, to see
//! the service lose its database without stopping the shared server; it can
//! also let a COMMIT through and lose its answer, the one failure after
//! which the client cannot know whether its rows are stored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A MySQL `COM_QUERY` packet holding exactly `COMMIT`: length 7, sequence 0.
const COMMIT_PACKET: &[u8] = b"\x07\x00\x00\x00\x03COMMIT";

pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    lose_commit_answer: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Forwards a free local port to `target` (host:port).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let lose_commit_answer = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (u, lose, l) = (up.clone(), lose_commit_answer.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let target = target.clone();
                let lose = lose.clone();
                let link = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        relay(inbound, outbound, lose).await;
                    }
                });
                l.lock().expect("links").push(link);
            }
        });
        Proxy {
            port,
            up,
            lose_commit_answer,
            links,
            accept,
        }
    }

    /// The next COMMIT reaches MySQL, but its answer never reaches the
    /// client: the connection closes first.
    pub fn lose_next_commit_answer(&self) {
        self.lose_commit_answer.store(true, Ordering::SeqCst);
    }

    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Copies both ways until either side closes, or until a COMMIT armed by
/// `lose` went through: then the server's answer is dropped and both
/// connections close once MySQL has had time to commit.
async fn relay(client: TcpStream, server: TcpStream, lose: Arc<AtomicBool>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let muted = Arc::new(AtomicBool::new(false));
    let m = muted.clone();
    let to_client = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = server_rx.read(&mut buf).await {
            if n == 0 || m.load(Ordering::SeqCst) || client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let to_server = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = client_rx.read(&mut buf).await {
            let chunk = &buf[..n];
            if n == 0 {
                break;
            }
            let lost = chunk == COMMIT_PACKET && lose.swap(false, Ordering::SeqCst);
            if lost {
                muted.store(true, Ordering::SeqCst);
            }
            if server_tx.write_all(chunk).await.is_err() {
                break;
            }
            if lost {
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
        }
    };
    tokio::select! {
        _ = to_client => {}
        _ = to_server => {}
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
