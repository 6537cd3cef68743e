//! A private RabbitMQ node (`rabbitmq-server` with its own name, ports and
//! data directory), which a test may SIGKILL and start again on the same
//! data without harming the shared broker other tests use.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RabbitmqServer {
    pub port: u16,
    dist_port: u16,
    name: String,
    dir: PathBuf,
    child: Option<Child>,
}

/// The Debian package's server script (no wrapper switching users).
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

impl RabbitmqServer {
    pub async fn start() -> RabbitmqServer {
        let name = format!("pos-test-{}", uuid::Uuid::new_v4().simple());
        let dir = std::env::temp_dir().join(&name);
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("the node's directories");
        }
        std::fs::write(dir.join("enabled_plugins"), "[].").expect("no plugins");
        let mut s = RabbitmqServer {
            port: super::free_port(),
            dist_port: super::free_port(),
            name,
            dir,
            child: None,
        };
        s.restart().await;
        s
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node on its data (what a kill left is recovered).
    pub async fn restart(&mut self) {
        let child = Command::new(SERVER)
            .current_dir(&self.dir)
            .env("HOME", &self.dir)
            .env("RABBITMQ_NODENAME", format!("{}@localhost", self.name))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_PID_FILE", self.dir.join("pid"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("none"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                self.dir.join("none.config"),
            )
            .env("RABBITMQ_CONF_ENV_FILE", self.dir.join("none.env"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rabbitmq-server runs (scripts/test installs it)");
        self.child = Some(child);
        let url = self.url();
        let up = super::eventually(Duration::from_secs(90), || {
            let url = url.clone();
            async move {
                lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
                    .await
                    .is_ok()
            }
        })
        .await;
        assert!(up, "the private RabbitMQ node did not start");
    }

    /// SIGKILLs the node (the Erlang VM, found by its data directory's
    /// unique name, then the script that ran it).
    pub fn kill(&mut self) {
        let _ = Command::new("pkill")
            .args(["-9", "-f", &self.name])
            .status();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RabbitmqServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
