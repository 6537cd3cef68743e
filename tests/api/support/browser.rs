//! Debian's headless Chromium, driven through `chromedriver` (WebDriver)
//! with `fantoccini`: the web back office as a person's browser sees it.
//! `scripts/test` installs both packages; a run without them fails, unless
//! `POS_TEST_SKIP_BROWSER=1` says so on purpose.

use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::{eventually, free_port};

/// A browser with its own driver process; both end when dropped.
pub struct Browser {
    pub client: Client,
    driver: tokio::process::Child,
}

/// Whether this run leaves the browser tests out (`POS_TEST_SKIP_BROWSER=1`).
pub fn skipped() -> bool {
    super::skipped_on_purpose("POS_TEST_SKIP_BROWSER")
}

impl Browser {
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let http = awc::Client::default();
        let up = eventually(Duration::from_secs(20), || async {
            http.get(format!("{url}/status")).send().await.is_ok()
        })
        .await;
        assert!(up, "chromedriver did not start");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,900"]}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a Chromium session");
        Browser { client, driver }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    }

    /// Types `text` into the field `css` names.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("the field clears");
        field.send_keys(text).await.expect("the field takes text");
    }

    /// Clicks what `css` names and waits until the page it leads to is
    /// there (the page before is gone from the browser).
    pub async fn click(&self, css: &str) {
        let before = self.find("html").await;
        self.find(css)
            .await
            .click()
            .await
            .expect("the element clicks");
        let left = eventually(Duration::from_secs(10), || async {
            before.tag_name().await.is_err()
        })
        .await;
        assert!(left, "clicking {css} led nowhere");
        self.find("body").await;
    }

    /// Picks what `css` names on the page (an option), going nowhere.
    pub async fn choose(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .expect("the option is chosen");
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .expect("the element has text")
    }

    /// The element `css` names, or `None` when the page has none.
    pub async fn maybe_text(&self, css: &str) -> Option<String> {
        let found = self.client.find(Locator::Css(css)).await.ok()?;
        found.text().await.ok()
    }

    /// The element `css` names, waiting up to 10 s for the page to show it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let wait = self.client.wait().at_most(Duration::from_secs(10));
        match wait.for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => {
                let source = self.client.source().await.unwrap_or_default();
                panic!("no {css} on {}: {e}\n{source}", self.path().await);
            }
        }
    }

    /// Saves what the browser shows as `target/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("target/screenshots");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is written");
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}
