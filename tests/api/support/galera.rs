//! A private 3-node MariaDB Galera cluster (`scripts/galera`) behind HAProxy
//! in TCP mode with the project's own config (`docker/haproxy/galera.cfg`):
//! one node takes every connection, the next takes over when it dies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::*;

use super::{eventually, free_port};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub struct Galera {
    dir: PathBuf,
    pub haproxy_port: u16,
    haproxy: Child,
}

impl Galera {
    /// Starts the three nodes and HAProxy in front of them.
    pub async fn start() -> Galera {
        let dir =
            std::env::temp_dir().join(format!("pos-galera-{}", uuid::Uuid::new_v4().simple()));
        let out = tokio::process::Command::new("bash")
            .arg(repo("scripts/galera"))
            .arg("start")
            .arg(&dir)
            .output()
            .await
            .expect("scripts/galera runs");
        assert!(
            out.status.success(),
            "scripts/galera start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ports: Vec<u16> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        assert_eq!(ports.len(), 3, "three nodes: {out:?}");
        let haproxy_port = free_port();
        let node = |i: usize| format!("127.0.0.1:{}", ports[i]);
        let haproxy = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(repo("docker/haproxy/galera.cfg"))
            .env("HAPROXY_BIND", format!("127.0.0.1:{haproxy_port}"))
            .env("NODE0", node(0))
            .env("NODE1", node(1))
            .env("NODE2", node(2))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let haproxy = match haproxy {
            Ok(h) => h,
            Err(e) => {
                // The nodes run already: they must not outlive the test.
                stop_nodes(&dir);
                panic!("haproxy runs (scripts/test installs it): {e}");
            }
        };
        let galera = Galera {
            dir,
            haproxy_port,
            haproxy,
        };
        let up = eventually(Duration::from_secs(20), || async {
            galera.writer().await.is_some()
        })
        .await;
        assert!(up, "no node answers through HAProxy");
        galera
    }

    /// `mysql://root@127.0.0.1:PORT`: the cluster through HAProxy.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.haproxy_port)
    }

    /// The node that takes the connections now.
    pub async fn writer(&self) -> Option<usize> {
        let mut conn = mysql_async::Conn::from_url(self.url()).await.ok()?;
        let name: Option<String> = conn.query_first("SELECT @@wsrep_node_name").await.ok()?;
        let _ = conn.disconnect().await;
        name?.strip_prefix("node")?.parse().ok()
    }

    async fn script(&self, args: &[&str]) {
        let out = tokio::process::Command::new("bash")
            .arg(repo("scripts/galera"))
            .arg(args[0])
            .arg(&self.dir)
            .args(&args[1..])
            .output()
            .await
            .expect("scripts/galera runs");
        assert!(
            out.status.success(),
            "scripts/galera {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGKILL node `n`.
    pub async fn kill(&self, n: usize) {
        self.script(&["kill", &n.to_string()]).await;
    }

    /// Starts node `n` again; returns once it is Synced with the others.
    pub async fn restart(&self, n: usize) {
        self.script(&["restart", &n.to_string()]).await;
    }
}

impl Drop for Galera {
    fn drop(&mut self) {
        let _ = self.haproxy.kill();
        let _ = self.haproxy.wait();
        stop_nodes(&self.dir);
    }
}

fn stop_nodes(dir: &Path) {
    let _ = Command::new("bash")
        .arg(repo("scripts/galera"))
        .arg("stop")
        .arg(dir)
        .status();
}
