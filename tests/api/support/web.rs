//! The web back office as a browser without JavaScript sees it: sign in,
//! sign out, a page's status.

/// A client that shows redirects instead of following them.
pub fn plain_client() -> awc::Client {
    awc::Client::builder().disable_redirects().finish()
}

/// Signs in to the web back office at `base` with `key`: the session
/// cookie it sets, as `name=value`.
pub async fn web_session(base: &str, key: &str) -> String {
    let res = plain_client()
        .post(format!("{base}/app/session"))
        .insert_header(("Origin", base))
        .send_form(&[("key", key)])
        .await
        .expect("the sign-in answers");
    assert_eq!(res.status().as_u16(), 303, "{base}");
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/app"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // The secret is all after `pos_<id>_` (base64url: it may hold `_`).
    let secret = key.splitn(3, '_').nth(2).unwrap_or(key);
    assert!(!cookie.contains(secret), "the key is not in the cookie");
    cookie.split(';').next().unwrap_or_default().to_string()
}

/// Signs out of the web back office at `base` with a session `cookie`: the
/// answer's status.
pub async fn web_sign_out(base: &str, cookie: &str) -> u16 {
    plain_client()
        .post(format!("{base}/app/session/end"))
        .insert_header(("Origin", base))
        .insert_header(("Cookie", cookie))
        .send()
        .await
        .expect("the sign-out answers")
        .status()
        .as_u16()
}

/// The status of a web page at `url` with a session `cookie`.
pub async fn page_status(url: &str, cookie: &str) -> u16 {
    plain_client()
        .get(url)
        .insert_header(("Cookie", cookie))
        .send()
        .await
        .expect("the page answers")
        .status()
        .as_u16()
}
