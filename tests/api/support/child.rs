//! The real `pos` binary: one-shot commands, and `pos serve` as a child
//! process on free ports (for what only a second process can show: a
//! revocation seen by another server, a signal, a kill).

use std::process::Stdio;
use std::time::Duration;

use super::{eventually, free_port};

/// Runs `pos args…` with only `vars` (and PATH) in its environment.
pub async fn pos_cli(vars: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pos"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("pos runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `pos serve` in a child process; killed when dropped.
pub struct ChildServer {
    pub base: String,
    pub metrics_url: String,
    pub client: awc::Client,
    database_url: String,
    extra: Vec<(String, String)>,
    port: u16,
    metrics_port: u16,
    child: Option<tokio::process::Child>,
    /// Where the process's standard error goes.
    log: std::path::PathBuf,
}

impl ChildServer {
    /// Starts `pos serve` on `database_url` with `extra` settings and waits
    /// until it is ready.
    pub async fn start(database_url: &str, extra: &[(&str, &str)]) -> ChildServer {
        // A free port may be taken by another test between choosing it and
        // the child binding it: then the child says so at once, and a
        // start on other ports is as good (a restart keeps its ports).
        for _ in 0..3 {
            let mut server = ChildServer::new(database_url, extra);
            server.launch();
            if server.until_ready().await {
                return server;
            }
            if !server.log_text().contains("Address already in use") {
                panic!("pos serve did not become ready: {}", server.log_text());
            }
            server.kill().await;
        }
        panic!("pos serve found no free ports in three tries");
    }

    /// Starts `pos serve` without waiting for it to be ready.
    pub fn spawn(database_url: &str, extra: &[(&str, &str)]) -> ChildServer {
        let mut server = ChildServer::new(database_url, extra);
        server.launch();
        server
    }

    fn new(database_url: &str, extra: &[(&str, &str)]) -> ChildServer {
        let (port, metrics_port) = (free_port(), free_port());
        let server = ChildServer {
            base: format!("http://127.0.0.1:{port}"),
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(10))
                .finish(),
            database_url: database_url.to_string(),
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            port,
            metrics_port,
            child: None,
            log: std::env::temp_dir()
                .join(format!("pos-child-{}.log", uuid::Uuid::new_v4().simple())),
        };
        server
    }

    /// Starts the process (again, after a kill) on the same ports and waits
    /// until it is ready.
    pub async fn restart(&mut self) {
        self.launch();
        let ready = self.until_ready().await;
        assert!(ready, "pos serve did not become ready: {}", self.log_text());
    }

    /// Whether `/ready` answers 200 within 20 s (or the process exits).
    async fn until_ready(&mut self) -> bool {
        eventually(Duration::from_secs(20), || async {
            self.status("/ready", None).await == Some(200)
        })
        .await
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pos"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("POS_DATABASE_URL", &self.database_url)
            .env("POS_HTTP_ADDR", format!("127.0.0.1:{}", self.port))
            .env(
                "POS_METRICS_ADDR",
                format!("127.0.0.1:{}", self.metrics_port),
            )
            .env("POS_REDIS_URL", "")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (k, v) in &self.extra {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("pos serve starts"));
    }

    /// What the process wrote to standard error so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM: a clean stop (in-flight requests answered, lease released).
    pub fn terminate(&self) {
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Whether it says, within 30 s, that it waits for its shard's lease
    /// (another instance holds it): a standby.
    pub async fn until_waiting_for_lease(&self) -> bool {
        eventually(Duration::from_secs(30), || async {
            self.log_text()
                .contains("another instance holds this shard's lease")
        })
        .await
    }

    /// Starts the process again (after a kill) on the same ports without
    /// waiting: it may wait for its shard's lease as a standby.
    pub fn relaunch(&mut self) {
        self.launch();
    }

    /// Whether the process ran and has exited (a kill leaves none running).
    pub fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| !matches!(c.try_wait(), Ok(None)))
    }

    /// Sends `signal` (`-STOP`, `-CONT`, …) to the process, if it runs.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            let sent = std::process::Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
            assert!(
                sent.as_ref().is_ok_and(|s| s.success()),
                "kill {signal} {pid}: {sent:?}"
            );
        }
    }

    /// SIGKILL: no shutdown, nothing flushed.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// The status of `GET path` with this token (`None` if no answer).
    pub async fn status(&self, path: &str, token: Option<&str>) -> Option<u16> {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.ok().map(|r| r.status().as_u16())
    }

    /// The metrics text (empty if no answer).
    pub async fn metrics(&self) -> String {
        match self.client.get(&self.metrics_url).send().await {
            Ok(mut r) => r
                .body()
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The API address, `host:port`.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// The metrics address, `host:port`.
    pub fn metrics_addr(&self) -> String {
        format!("127.0.0.1:{}", self.metrics_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(|c| c.id()).expect("running")
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        tokio::time::timeout(timeout, child.wait())
            .await
            .expect("exits in time")
            .expect("exit status")
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}
