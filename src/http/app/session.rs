//! The back-office session's cookie as HTTP carries it: its names, its
//! `Set-Cookie` attributes, and finding it among a request's cookies. What
//! a session is, and how its cookie is signed and checked, is
//! `auth::sessions`'.

use crate::auth::IDLE_LIMIT;

/// The cookie's name over plain HTTP.
pub const COOKIE: &str = "pos_session";
/// Its name over TLS: a browser takes a `__Host-` cookie only from a
/// secure page of this very host, for the whole host (`Path=/`), so
/// neither a plain-HTTP page nor a sibling domain can plant or shadow it.
pub const TLS_COOKIE: &str = "__Host-pos_session";

/// The `Set-Cookie` value of a session cookie (`value` empty: the cookie
/// removed). `HttpOnly`: no script reads it; `SameSite=Strict`: no other
/// site's page sends it; over TLS `Secure`, with the `__Host-` name.
pub fn set_cookie(value: &str, secure: bool) -> String {
    let age = if value.is_empty() {
        0
    } else {
        IDLE_LIMIT.as_secs()
    };
    let (name, path, secure) = if secure {
        (TLS_COOKIE, "/", "; Secure")
    } else {
        (COOKIE, "/app", "")
    };
    format!("{name}={value}; Path={path}; Max-Age={age}; HttpOnly; SameSite=Strict{secure}")
}

/// The session cookie's value among a request's `Cookie` headers: over
/// TLS only the `__Host-` one counts.
pub fn cookie_value<'a>(headers: impl Iterator<Item = &'a str>, secure: bool) -> Option<&'a str> {
    let wanted = if secure { TLS_COOKIE } else { COOKIE };
    headers
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let headers = ["a=1; pos_session=v.1.2.s", "b=2"];
        assert_eq!(cookie_value(headers.into_iter(), false), Some("v.1.2.s"));
        assert_eq!(cookie_value(["pos_sessionx=1"].into_iter(), false), None);
        assert_eq!(cookie_value(headers.into_iter(), true), None);
        let tls = ["pos_session=plain; __Host-pos_session=v.1.2.s"];
        assert_eq!(cookie_value(tls.into_iter(), true), Some("v.1.2.s"));
        assert_eq!(cookie_value(tls.into_iter(), false), Some("plain"));
    }

    #[test]
    fn over_tls_the_cookie_is_a_secure_host_cookie() {
        assert_eq!(
            set_cookie("v", true),
            format!(
                "__Host-pos_session=v; Path=/; Max-Age={}; HttpOnly; SameSite=Strict; Secure",
                IDLE_LIMIT.as_secs()
            )
        );
        assert!(set_cookie("v", false).starts_with("pos_session=v; Path=/app;"));
        assert!(!set_cookie("v", false).contains("Secure"));
        assert!(set_cookie("", false).contains("Max-Age=0"));
    }
}
