//! A private `mariadbd` on a free port with its own data directory, which a
//! test may SIGKILL and start again (InnoDB then recovers) without harming
//! other tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct MariadbServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// More `mariadbd` options, given at every start.
    options: Vec<String>,
}

impl MariadbServer {
    /// Creates a data directory and starts the server on it.
    pub async fn start() -> MariadbServer {
        MariadbServer::start_with(&[]).await
    }

    /// The same, with more `mariadbd` options.
    pub async fn start_with(options: &[&str]) -> MariadbServer {
        let dir =
            std::env::temp_dir().join(format!("pos-mariadb-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("data directory");
        let installed = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
                &format!("--datadir={}", dir.join("data").display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db runs (scripts/test installs mariadb-server)");
        assert!(installed.success(), "mariadb-install-db failed");
        let mut server = MariadbServer {
            port: super::free_port(),
            dir,
            child: None,
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        server.restart().await;
        server
    }

    /// `mysql://root@127.0.0.1:PORT` (no database).
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// Starts the server on its data directory (after a kill: crash recovery).
    pub async fn restart(&mut self) {
        let data = self.dir.join("data");
        let child = Command::new("mariadbd")
            .args([
                "--no-defaults".to_string(),
                "--user=root".to_string(),
                format!("--datadir={}", data.display()),
                format!("--port={}", self.port),
                format!("--socket={}", self.dir.join("sock").display()),
                "--bind-address=127.0.0.1".to_string(),
                "--innodb-buffer-pool-size=32M".to_string(),
                "--innodb-log-file-size=16M".to_string(),
            ])
            .args(&self.options)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd runs");
        self.child = Some(child);
        let url = self.url();
        let up = super::eventually(Duration::from_secs(60), || {
            let url = url.clone();
            async move {
                match mysql_async::Conn::from_url(url).await {
                    Ok(conn) => {
                        let _ = conn.disconnect().await;
                        true
                    }
                    Err(_) => false,
                }
            }
        })
        .await;
        assert!(up, "private mariadbd did not start");
    }

    /// SIGKILL: no shutdown, no flush beyond what InnoDB made durable.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for MariadbServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
