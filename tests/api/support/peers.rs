//! Real peers from Debian's packages on free local ports: HAProxy with the
//! project's own config (`docker/haproxy/haproxy.cfg`), and Prometheus.
//! `scripts/test` installs both when missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{eventually, free_port};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn spawn(cmd: &mut Command, what: &str) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} runs (scripts/test installs it): {e}"))
}

/// HAProxy routing to two shards (their API addresses, `host:port`).
pub struct Haproxy {
    pub base: String,
    child: Child,
}

impl Haproxy {
    pub async fn start(shard0: &str, shard1: &str) -> Haproxy {
        Haproxy::start_with(shard0, shard1, &[]).await
    }

    /// With HTTPS on `tls_port` too, the certificate and key in `cert` (PEM).
    pub async fn start_tls(shard0: &str, shard1: &str, tls_port: u16, cert: &Path) -> Haproxy {
        let cert = cert.display().to_string();
        let bind = format!("127.0.0.1:{tls_port}");
        Haproxy::start_with(
            shard0,
            shard1,
            &[("HAPROXY_TLS_BIND", &bind), ("HAPROXY_CERT", &cert)],
        )
        .await
    }

    /// With a hot standby for shard 0 (`SHARD0_STANDBY`).
    pub async fn start_with_standby(shard0: &str, standby0: &str, shard1: &str) -> Haproxy {
        Haproxy::start_with(shard0, shard1, &[("SHARD0_STANDBY", standby0)]).await
    }

    /// With more of the config's variables (`SHARD1_STANDBY`, …).
    pub async fn start_with(shard0: &str, shard1: &str, env: &[(&str, &str)]) -> Haproxy {
        let port = free_port();
        let child = spawn(
            Command::new("haproxy")
                .args(["-db", "-f"])
                .arg(repo("docker/haproxy/haproxy.cfg"))
                .env("HAPROXY_BIND", format!("127.0.0.1:{port}"))
                .env("SHARD0", shard0)
                .env("SHARD1", shard1)
                .env("HAPROXY_ERRORS", repo("docker/haproxy/errors"))
                .envs(env.iter().copied()),
            "haproxy",
        );
        let base = format!("http://127.0.0.1:{port}");
        let client = awc::Client::default();
        let up = eventually(Duration::from_secs(10), || async {
            client
                .get(format!("{base}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(up, "haproxy did not start");
        Haproxy { base, child }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus scraping `targets` (metrics addresses, `host:port`) every second.
pub struct Prometheus {
    pub base: String,
    dir: PathBuf,
    child: Child,
}

impl Prometheus {
    pub async fn start(targets: &[String]) -> Prometheus {
        Prometheus::start_with(targets, None).await
    }

    /// With the alert rules of `rules` (a file of the project) too.
    pub async fn start_with(targets: &[String], rules: Option<&str>) -> Prometheus {
        let dir =
            std::env::temp_dir().join(format!("pos-prometheus-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        let list = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{}scrape_configs:\n  - job_name: pos\n    static_configs:\n      - targets: [{list}]\n",
                rules.map_or(String::new(), |r| format!(
                    "rule_files: [\"{}/{r}\"]\n",
                    env!("CARGO_MANIFEST_DIR")
                ))
            ),
        )
        .expect("config written");
        let port = free_port();
        let child = spawn(
            Command::new("prometheus")
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}")),
            "prometheus",
        );
        let prometheus = Prometheus {
            base: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        };
        let up = eventually(Duration::from_secs(30), || async {
            prometheus.query("up").await.is_some()
        })
        .await;
        assert!(up, "prometheus did not start");
        prometheus
    }

    /// The state of alert `name` (`pending`, `firing`), if it is active.
    pub async fn alert_state(&self, name: &str) -> Option<String> {
        let client = awc::Client::default();
        let mut res = client
            .get(format!("{}/api/v1/alerts", self.base))
            .send()
            .await
            .ok()?;
        let body: Value = res.json().limit(1 << 24).await.ok()?;
        body["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == name)
            .and_then(|a| a["state"].as_str().map(String::from))
    }

    /// The result vector of an instant query (`None` if Prometheus did not answer).
    pub async fn query(&self, expr: &str) -> Option<Vec<Value>> {
        let client = awc::Client::default();
        let mut res = client
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", expr)])
            .ok()?
            .send()
            .await
            .ok()?;
        let body: Value = res.json().limit(1 << 24).await.ok()?;
        body["data"]["result"].as_array().cloned()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1 in `dir`, made
/// as the README tells a trial user: `cert.pem` (what a client trusts) and
/// `haproxy.pem` (certificate and key, for `HAPROXY_CERT`).
pub fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("scratch folder");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs (scripts/test installs it)");
    assert!(made.success(), "openssl made no certificate");
    let mut pem = std::fs::read(&cert).expect("cert");
    pem.extend(std::fs::read(&key).expect("key"));
    let both = dir.join("haproxy.pem");
    std::fs::write(&both, pem).expect("pem written");
    (cert, both)
}
