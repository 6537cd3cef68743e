//! Back-office sessions: after a sign-in proved a key's secret, the browser
//! holds a cookie naming only the key's id, when the session began and
//! when it was last used, signed with `POS_SESSION_SECRET` (HMAC-SHA256).
//! Nothing is stored per session, so a session made on one instance is
//! valid on every one that shares the secret; the key itself is checked on
//! every request (revocation within 2 s), and the secret never reaches the
//! browser. A sign-out records, with the key, that its sessions begun until
//! then are over (`session_ends`), which every instance learns like a
//! revocation: a copy of the cookie is no use after it.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::clock::{UnixMs, UnixSecs};
use crate::domain::KeyId;

/// The cookie's name over plain HTTP.
pub const COOKIE: &str = "pos_session";
/// Its name over TLS: a browser takes a `__Host-` cookie only from a
/// secure page of this very host, for the whole host (`Path=/`), so
/// neither a plain-HTTP page nor a sibling domain can plant or shadow it.
pub const TLS_COOKIE: &str = "__Host-pos_session";
/// A session ends after this long without a page.
pub const IDLE_LIMIT: Duration = Duration::from_secs(12 * 3600);
/// ... and this long after its sign-in, however busy: a stolen cookie
/// kept alive by a script is no use for ever.
pub const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// A page renews the cookie once it is this old (not on every request).
const RENEW_AFTER: Duration = Duration::from_secs(60);
/// How far ahead of this instance's clock another's may run: a cookie it
/// renewed is still taken here.
const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// What the signature covers besides the fields: a cookie of another
/// purpose signed with the same secret is no session.
const CONTEXT: &[u8] = b"pos-session-v2";

/// The signing key, from `POS_SESSION_SECRET` or random per start.
pub struct SessionKeys {
    mac: Hmac<Sha256>,
}

/// A session the cookie proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub key_id: KeyId,
    /// When the sign-in was; renewals keep it.
    pub began: UnixMs,
    /// When the last renewal was.
    pub since: UnixSecs,
}

impl SessionKeys {
    /// Keys from `secret`. HMAC takes a key of any length, so this fails
    /// only if that ever changes; then nothing is signed at all.
    pub fn new(secret: &[u8]) -> Result<SessionKeys, hmac::digest::InvalidLength> {
        Ok(SessionKeys {
            mac: Hmac::<Sha256>::new_from_slice(secret)?,
        })
    }

    /// A secret for this process only (sessions end with it).
    pub fn random() -> Result<SessionKeys, String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| e.to_string())?;
        SessionKeys::new(&secret).map_err(|e| e.to_string())
    }

    /// The cookie value of `key_id`'s session that began at `began`, as
    /// of `now`.
    pub fn issue(&self, key_id: &KeyId, began: UnixMs, now: UnixSecs) -> String {
        let fields = format!("{key_id}.{began}.{now}");
        let signature = URL_SAFE_NO_PAD.encode(self.sign(&fields));
        format!("{fields}.{signature}")
    }

    /// The session a cookie value proves at `now`: signed by us, used
    /// within [`IDLE_LIMIT`] and begun within [`MAX_LIFETIME`].
    pub fn verify(&self, value: &str, now: UnixSecs) -> Option<Session> {
        let (fields, signature) = value.rsplit_once('.')?;
        let (key_id, times) = fields.split_once('.')?;
        let (began_ms, since) = times.split_once('.')?;
        let key_id = KeyId::parse(key_id)?;
        let given = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if !bool::from(self.sign(fields).as_slice().ct_eq(&given)) {
            return None;
        }
        let since = UnixSecs(since.parse().ok()?);
        let began = UnixMs(began_ms.parse().ok()?);
        let fresh = since <= now.plus(CLOCK_SKEW)
            && now.since(since) <= IDLE_LIMIT
            && now.since(began.secs()) <= MAX_LIFETIME;
        fresh.then_some(Session {
            key_id,
            began,
            since,
        })
    }

    fn sign(&self, fields: &str) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(CONTEXT);
        mac.update(b"|");
        mac.update(fields.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

impl Session {
    /// Whether a page should send a renewed cookie.
    pub fn wants_renewal(&self, now: UnixSecs) -> bool {
        now.since(self.since) >= RENEW_AFTER
    }
}

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

    fn id(text: &str) -> KeyId {
        KeyId::parse(text).expect("a key id")
    }

    fn keys() -> SessionKeys {
        SessionKeys::new(b"0123456789abcdef0123456789abcdef").expect("any length")
    }

    #[test]
    fn a_cookie_proves_its_session_until_it_idles_out() {
        let now = 1_800_000_000;
        let cookie = keys().issue(&id("abc123"), UnixMs(now * 1000), UnixSecs(now));
        let session = keys().verify(&cookie, UnixSecs(now + 5)).expect("valid");
        assert_eq!(session.key_id.as_str(), "abc123");
        assert_eq!(session.began, UnixMs(now * 1000));
        assert!(keys()
            .verify(&cookie, UnixSecs(now + IDLE_LIMIT.as_secs()))
            .is_some());
        assert!(keys()
            .verify(&cookie, UnixSecs(now + IDLE_LIMIT.as_secs() + 1))
            .is_none());
        assert!(!session.wants_renewal(UnixSecs(now + 59)));
        assert!(session.wants_renewal(UnixSecs(now + 60)));
    }

    #[test]
    fn a_changed_or_foreign_cookie_proves_nothing() {
        let now = 1_800_000_000;
        let cookie = keys().issue(&id("abc123"), UnixMs(now * 1000), UnixSecs(now));
        let other = SessionKeys::new(b"another secret of thirty-two bytes").expect("any length");
        assert!(other.verify(&cookie, UnixSecs(now)).is_none());
        for forged in [
            cookie.replace("abc123", "abc124"),
            cookie.replacen(&now.to_string(), &(now + 3600).to_string(), 1),
            cookie.replacen(
                &format!(".{}.", now * 1000),
                &format!(".{}.", now * 1000 + 1),
                1,
            ),
            format!("{cookie}x"),
            "abc123.7.1800000000.".to_string(),
            "ABC.1.AAAA".to_string(),
            String::new(),
            ".".repeat(3),
        ] {
            assert!(
                keys().verify(&forged, UnixSecs(now)).is_none(),
                "{forged:?}"
            );
        }
        let future = keys().issue(&id("abc123"), UnixMs(now * 1000), UnixSecs(now + 3600));
        assert!(
            keys().verify(&future, UnixSecs(now)).is_none(),
            "a cookie from the future"
        );
    }

    #[test]
    fn a_session_ends_a_week_after_its_sign_in_however_busy() {
        let began = 1_800_000_000;
        let last_page = began + MAX_LIFETIME.as_secs() - 10;
        let cookie = keys().issue(&id("abc123"), UnixMs(began * 1000), UnixSecs(last_page));
        assert!(keys().verify(&cookie, UnixSecs(last_page)).is_some());
        assert!(keys()
            .verify(&cookie, UnixSecs(began + MAX_LIFETIME.as_secs()))
            .is_some());
        assert!(keys()
            .verify(&cookie, UnixSecs(began + MAX_LIFETIME.as_secs() + 1))
            .is_none());
    }

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
