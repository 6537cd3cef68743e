//! A TCP proxy in front of MySQL that a test can cut and restore, to see
//! the service lose its database without stopping the shared server; it can
//! also let a COMMIT through and lose its answer, or swallow a COMMIT (it
//! never reaches MySQL, which rolls back) and cut: the failures after which
//! the client cannot know whether its rows are stored.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Whether `chunk` ends a query whose last statement is `COMMIT` (the
/// service sends each transaction, COMMIT included, as one query).
fn ends_a_commit(chunk: &[u8]) -> bool {
    chunk.ends_with(b";COMMIT")
}

/// What happens to the next COMMIT.
const COMMIT_PASSES: u8 = 0;
const COMMIT_ANSWER_LOST: u8 = 1;
const COMMIT_SWALLOWED: u8 = 2;

/// Longest wait for MySQL's answer to a COMMIT whose answer is to be lost.
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// Whether `answer`, MySQL's answer to one query from its first byte, holds
/// its last result: an error packet (MySQL stops at the first error) or an
/// OK packet without the "more results" status flag.
fn answers_complete(mut answer: &[u8]) -> bool {
    const MORE_RESULTS_EXIST: u16 = 0x0008;
    while answer.len() >= 4 {
        let len = u32::from_le_bytes([answer[0], answer[1], answer[2], 0]) as usize;
        let Some(payload) = answer.get(4..4 + len) else {
            return false;
        };
        match payload.first() {
            Some(0xff) => return true,
            Some(0x00) => {
                // Affected rows and last insert id, then the status flags.
                let flags = skip_length_encoded(&payload[1..])
                    .and_then(skip_length_encoded)
                    .and_then(|rest| rest.get(..2))
                    .map(|f| u16::from_le_bytes([f[0], f[1]]));
                if flags.is_some_and(|f| f & MORE_RESULTS_EXIST == 0) {
                    return true;
                }
            }
            _ => {}
        }
        answer = &answer[4 + len..];
    }
    false
}

/// What follows a MySQL length-encoded integer at the start of `bytes`.
fn skip_length_encoded(bytes: &[u8]) -> Option<&[u8]> {
    let width = match *bytes.first()? {
        0xfc => 3,
        0xfd => 4,
        0xfe => 9,
        _ => 1,
    };
    bytes.get(width..)
}

pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    next_commit: Arc<AtomicU8>,
    /// Set once MySQL answered a COMMIT whose answer was then dropped: it
    /// is committed, and the client does not know.
    answer_dropped: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Forwards a free local port to `target` (host:port).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let next_commit = Arc::new(AtomicU8::new(COMMIT_PASSES));
        let answer_dropped = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (u, fault, l, d) = (
            up.clone(),
            next_commit.clone(),
            links.clone(),
            answer_dropped.clone(),
        );
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let target = target.clone();
                let (fault, up, links, dropped) = (fault.clone(), u.clone(), l.clone(), d.clone());
                let link = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        relay(inbound, outbound, fault, up, links, dropped).await;
                    }
                });
                l.lock().expect("links").push(link);
            }
        });
        Proxy {
            port,
            up,
            next_commit,
            answer_dropped,
            links,
            accept,
        }
    }

    /// The next COMMIT reaches MySQL, but its answer never reaches the
    /// client: the connection closes first.
    pub fn lose_next_commit_answer(&self) {
        self.next_commit.store(COMMIT_ANSWER_LOST, Ordering::SeqCst);
    }

    /// The next COMMIT never reaches MySQL (which rolls the transaction
    /// back when the connection closes), and the proxy is cut from then on,
    /// until [`Proxy::restore`].
    pub fn swallow_next_commit_and_cut(&self) {
        self.next_commit.store(COMMIT_SWALLOWED, Ordering::SeqCst);
    }

    /// Whether the answer of a COMMIT armed by [`Proxy::lose_next_commit_answer`]
    /// came back from MySQL and was dropped.
    pub fn commit_answer_dropped(&self) -> bool {
        self.answer_dropped.load(Ordering::SeqCst)
    }

    /// Whether the proxy refuses connections (after `cut`, or after a swallowed COMMIT).
    pub fn is_cut(&self) -> bool {
        !self.up.load(Ordering::SeqCst)
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

/// Copies both ways until either side closes, or until the COMMIT that
/// `fault` arms: its answer is dropped and both connections close once MySQL
/// has answered the whole query, COMMIT included; or it is not forwarded at
/// all and the proxy goes down.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    fault: Arc<AtomicU8>,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    dropped: Arc<AtomicBool>,
) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let muted = Arc::new(AtomicBool::new(false));
    let m = muted.clone();
    let to_client = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut withheld = Vec::new();
        while let Ok(n) = server_rx.read(&mut buf).await {
            if n > 0 && m.load(Ordering::SeqCst) {
                withheld.extend_from_slice(&buf[..n]);
                if answers_complete(&withheld) {
                    dropped.store(true, Ordering::SeqCst);
                    break;
                }
                continue;
            }
            if n == 0 || client_tx.write_all(&buf[..n]).await.is_err() {
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
            let armed = if ends_a_commit(chunk) {
                fault.swap(COMMIT_PASSES, Ordering::SeqCst)
            } else {
                COMMIT_PASSES
            };
            if armed == COMMIT_SWALLOWED {
                // Down at once, every connection: no retry may get through
                // before the test says so.
                up.store(false, Ordering::SeqCst);
                muted.store(true, Ordering::SeqCst);
                for link in links.lock().expect("links").drain(..) {
                    link.abort();
                }
                break;
            }
            if armed == COMMIT_ANSWER_LOST {
                muted.store(true, Ordering::SeqCst);
            }
            if server_tx.write_all(chunk).await.is_err() {
                break;
            }
            if armed == COMMIT_ANSWER_LOST {
                // The other direction ends the relay once MySQL has answered;
                // this only bounds the wait.
                tokio::time::sleep(ANSWER_DEADLINE).await;
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
