//! A TCP proxy in front of MySQL that a test can cut and restore, to see
//! the service lose its database without stopping the shared server; it can
//! also let a COMMIT through and lose its answer, or swallow a COMMIT (it
//! never reaches MySQL, which rolls back) and cut: the failures after which
//! the client cannot know whether its rows are stored. It can also hold
//! every byte for a while (a black hole: they flow again when it heals, as
//! TCP's retransmissions do) or delay each one (a slow network).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
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
/// Sent on, and its connection cut at once: MySQL may still be running it.
const COMMIT_SENT_THEN_CUT: u8 = 3;
/// Reaches MySQL, its answer is lost, and the proxy goes down.
const COMMIT_ANSWER_LOST_THEN_DOWN: u8 = 4;

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
    /// Queries ending in COMMIT sent on to MySQL.
    commits: Arc<AtomicUsize>,
    /// Set once MySQL answered a COMMIT whose answer was then dropped: it
    /// is committed, and the client does not know.
    answer_dropped: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Bytes wait while set (a black hole).
    stalled: Arc<AtomicBool>,
    /// Added before each piece of traffic is passed on (ms).
    delay_ms: Arc<AtomicU64>,
    /// Bytes are thrown away while set.
    losing: Arc<AtomicBool>,
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
        let commits = Arc::new(AtomicUsize::new(0));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (stalled, delay_ms) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let losing = Arc::new(AtomicBool::new(false));
        let faults = Faults {
            losing: losing.clone(),
            stalled: stalled.clone(),
            delay_ms: delay_ms.clone(),
            next_commit: next_commit.clone(),
            up: up.clone(),
            links: links.clone(),
            dropped: answer_dropped.clone(),
            commits: commits.clone(),
        };
        let (u, l) = (up.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let target = target.clone();
                let faults = faults.clone();
                let link = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        relay(inbound, outbound, faults).await;
                    }
                });
                l.lock().expect("links").push(link);
            }
        });
        Proxy {
            port,
            up,
            next_commit,
            commits,
            answer_dropped,
            links,
            stalled,
            delay_ms,
            losing,
            accept,
        }
    }

    /// Holds every byte, both ways, on open and new connections, until
    /// [`Proxy::heal`].
    pub fn blackhole(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Delays every piece of traffic by `ms`, until [`Proxy::heal`].
    pub fn slow(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Throws every byte away, both ways, until [`Proxy::heal`]: what was
    /// sent meanwhile on a connection never arrives, so a client waiting
    /// for its answer waits forever (a peer gone without a word).
    pub fn lose_everything(&self) {
        self.losing.store(true, Ordering::SeqCst);
    }

    /// Ends every fault: connections accepted, bytes flow at once.
    pub fn heal(&self) {
        self.losing.store(false, Ordering::SeqCst);
        self.delay_ms.store(0, Ordering::SeqCst);
        self.stalled.store(false, Ordering::SeqCst);
        self.restore();
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

    /// The next COMMIT reaches MySQL and its connection is cut right after,
    /// before any answer: MySQL may still be running the transaction (it
    /// waits for a lock, say) while the client settles and retries.
    pub fn cut_right_after_next_commit(&self) {
        self.next_commit
            .store(COMMIT_SENT_THEN_CUT, Ordering::SeqCst);
    }

    /// The next COMMIT reaches MySQL, its answer is lost, and the proxy
    /// refuses connections from then on, until [`Proxy::restore`]: the
    /// client cannot learn the outcome.
    pub fn lose_next_commit_answer_and_go_down(&self) {
        self.next_commit
            .store(COMMIT_ANSWER_LOST_THEN_DOWN, Ordering::SeqCst);
    }

    /// Queries ending in COMMIT sent on to MySQL so far.
    pub fn commits_sent(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
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

/// What a relay shares with the proxy.
#[derive(Clone)]
struct Faults {
    next_commit: Arc<AtomicU8>,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    dropped: Arc<AtomicBool>,
    commits: Arc<AtomicUsize>,
    stalled: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    losing: Arc<AtomicBool>,
}

impl Faults {
    fn losing(&self) -> bool {
        self.losing.load(Ordering::SeqCst)
    }

    /// Waits out a black hole and a slow link before bytes pass.
    async fn hold(&self) {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        while self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Closes every open connection and refuses new ones.
    fn go_down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }
}

/// Copies both ways until either side closes, or until the COMMIT that
/// `fault` arms: its answer is dropped and both connections close once MySQL
/// has answered the whole query, COMMIT included (and with
/// `COMMIT_ANSWER_LOST_THEN_DOWN` the proxy goes down); or it is not
/// forwarded at all and the proxy goes down; or it is forwarded and both
/// connections close at once.
async fn relay(client: TcpStream, server: TcpStream, faults: Faults) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let muted = Arc::new(AtomicBool::new(false));
    let down_after_answer = Arc::new(AtomicBool::new(false));
    let (m, down, f) = (muted.clone(), down_after_answer.clone(), faults.clone());
    let to_client = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut withheld = Vec::new();
        while let Ok(n) = server_rx.read(&mut buf).await {
            if n > 0 && m.load(Ordering::SeqCst) {
                withheld.extend_from_slice(&buf[..n]);
                if answers_complete(&withheld) {
                    f.dropped.store(true, Ordering::SeqCst);
                    if down.load(Ordering::SeqCst) {
                        f.go_down();
                    }
                    break;
                }
                continue;
            }
            if n == 0 {
                break;
            }
            f.hold().await;
            if f.losing() {
                continue;
            }
            if client_tx.write_all(&buf[..n]).await.is_err() {
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
            faults.hold().await;
            if faults.losing() {
                continue;
            }
            let armed = if ends_a_commit(chunk) {
                faults.next_commit.swap(COMMIT_PASSES, Ordering::SeqCst)
            } else {
                COMMIT_PASSES
            };
            if armed == COMMIT_SWALLOWED {
                // Down at once, every connection: no retry may get through
                // before the test says so.
                muted.store(true, Ordering::SeqCst);
                faults.go_down();
                break;
            }
            if armed == COMMIT_ANSWER_LOST || armed == COMMIT_ANSWER_LOST_THEN_DOWN {
                muted.store(true, Ordering::SeqCst);
                down_after_answer.store(armed == COMMIT_ANSWER_LOST_THEN_DOWN, Ordering::SeqCst);
            }
            if server_tx.write_all(chunk).await.is_err() {
                break;
            }
            if ends_a_commit(chunk) {
                faults.commits.fetch_add(1, Ordering::SeqCst);
            }
            if armed == COMMIT_SENT_THEN_CUT {
                break;
            }
            if armed == COMMIT_ANSWER_LOST || armed == COMMIT_ANSWER_LOST_THEN_DOWN {
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
