//! Back-office sessions, in one place. After a sign-in proved a key's
//! secret, the browser holds a cookie naming only the key's id, when the
//! session began and when it was last used, signed with
//! `POS_SESSION_SECRET` (HMAC-SHA256); the cookie's headers are
//! `http::app::session`'s. Nothing is stored per session, so a session made
//! on one instance is valid on every one that shares the secret; the key
//! itself is checked on every request (revocation within 2 s), and the
//! secret never reaches the browser. A sign-out records, with the key, that
//! its sessions begun until then are over (`session_ends`), which every
//! instance learns like a revocation: a copy of the cookie is no use after
//! it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use moka::future::Cache;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{Auth, CheckedKey, PROVEN_CAPACITY};
use crate::clock::{UnixMs, UnixSecs};
use crate::domain::KeyId;

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

/// How long a sign-out made here is kept apart from the key cache: past
/// the revocation poll's look-back and a key read's deadline, by when the
/// cache holds the key as MySQL has it since the sign-out.
const SIGNED_OUT_KEEP: Duration = Duration::from_secs(10);

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

impl CheckedKey {
    /// When a new session of this key may begin: now,
    /// or just after the last one a sign-out ended if that is later (a
    /// shard whose clock runs ahead stored it), so a new session is never
    /// ended before it starts.
    pub fn next_session_start(&self, now: UnixMs) -> UnixMs {
        now.max(self.sessions_ended.next())
    }
}

/// Sign-outs this instance knows of before the key cache does.
pub(super) struct SignOuts {
    /// Sign-outs made here and stored, by key id: the latest session start
    /// they ended, kept [`SIGNED_OUT_KEEP`]. A key read already under way
    /// when one is stored may fill the cache with the key as it was before;
    /// this keeps the end in force here until the revocation poll has seen
    /// it.
    stored: Cache<KeyId, UnixMs>,
    /// Sign-outs made here that MySQL could not store yet, by key id: in
    /// force here until stored (however long MySQL is away), then kept in
    /// `stored` while the poll spreads them. The revocation watch
    /// stores them once MySQL answers again.
    /// (A map, not a cache: it is empty but for MySQL outages, and the
    /// watch looks at it four times a second.)
    unstored: Mutex<HashMap<KeyId, UnixMs>>,
}

impl Default for SignOuts {
    fn default() -> Self {
        SignOuts {
            stored: Cache::builder()
                .max_capacity(PROVEN_CAPACITY)
                .time_to_live(SIGNED_OUT_KEEP)
                .build(),
            unstored: Mutex::default(),
        }
    }
}

impl SignOuts {
    fn unstored(&self) -> std::sync::MutexGuard<'_, HashMap<KeyId, UnixMs>> {
        self.unstored.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Auth {
    /// Whether `key`'s back-office session that began at `began` is
    /// still open: no sign-out ended it, here (stored or not yet) or (as of
    /// the key's read) anywhere.
    pub async fn session_open(&self, key: &CheckedKey, began: UnixMs) -> bool {
        began > key.sessions_ended && !self.ended_here(&key.id, began).await
    }

    /// Whether a sign-out made here (stored or not yet) ended `id`'s
    /// session that began at `began`: known without reading the key,
    /// so it holds while MySQL is away.
    pub async fn ended_here(&self, id: &KeyId, began: UnixMs) -> bool {
        let here = self.sign_outs.stored.get(id).await.unwrap_or_default();
        let unstored = self
            .sign_outs
            .unstored()
            .get(id)
            .copied()
            .unwrap_or_default();
        began <= here.max(unstored)
    }

    /// A sign-out of `id`'s sessions begun until `began`, in force here
    /// at once. `stored`: MySQL has it, and every instance learns it from
    /// the poll; else it is kept here until the revocation watch stores it.
    pub async fn signed_out(&self, id: &KeyId, began: UnixMs, stored: bool) {
        if stored {
            let here = self.sign_outs.stored.get(id).await.unwrap_or_default();
            self.sign_outs
                .stored
                .insert(id.clone(), here.max(began))
                .await;
        } else {
            let mut unstored = self.sign_outs.unstored();
            let room = unstored.len() < PROVEN_CAPACITY as usize;
            match unstored.get_mut(id) {
                Some(here) => *here = (*here).max(began),
                None if room => {
                    unstored.insert(id.clone(), began);
                }
                None => tracing::warn!("too many sign-outs wait for MySQL; this one is not kept"),
            }
        }
        self.forget(std::slice::from_ref(id)).await;
    }

    /// Stores the sign-outs MySQL could not take when they were made;
    /// each one stored moves to the sign-outs the poll spreads.
    pub(crate) async fn store_sign_outs(&self, conn: &mut mysql_async::Conn) -> Result<(), String> {
        let waiting: Vec<(KeyId, UnixMs)> = self
            .sign_outs
            .unstored()
            .iter()
            .map(|(id, began)| (id.clone(), *began))
            .collect();
        for (id, began) in waiting {
            crate::store::end_sessions(conn, &id, began)
                .await
                .map_err(|e| e.to_string())?;
            self.signed_out(&id, began, true).await;
            // A later sign-out of the key made meanwhile stays unstored.
            let mut unstored = self.sign_outs.unstored();
            if unstored.get(&id).is_some_and(|later| *later <= began) {
                unstored.remove(&id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::NewKey;

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
    fn a_new_session_begins_after_the_last_one_a_sign_out_ended() {
        let key = NewKey::generate().expect("random bytes");
        let mut checked = crate::auth::tests::operator_key(&key);
        let start = |now| checked.next_session_start(UnixMs(now)).0;
        assert_eq!(start(1_000), 1_000);
        // Ended by a shard whose clock runs 5 s ahead of this one.
        checked.sessions_ended = UnixMs(6_000);
        let start = |now| checked.next_session_start(UnixMs(now)).0;
        assert_eq!(start(1_000), 6_001);
        assert_eq!(start(9_000), 9_000);
    }
}
