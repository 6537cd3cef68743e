//! Ids this process makes up: random ones (persistence writer ids) and
//! request ids.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// A random 63-bit number (fits `BIGINT UNSIGNED` and reads as a positive
/// signed id too); without OS randomness, the time still tells runs apart.
pub fn random_u63() -> u64 {
    let mut bytes = [0u8; 8];
    let n = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    n >> 1
}

/// This machine's host name (for the shard lease's holder), or
/// `localhost` if it cannot be read.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A request id shaped like a UUID (36 characters): a random number drawn
/// once per process, then a counter. Unique across processes with
/// overwhelming odds and in order within one, at no cost per request (a
/// UUID v4 per request was a `getrandom` call each).
pub struct RequestId([u8; 36]);

impl RequestId {
    pub fn next() -> RequestId {
        static PROCESS: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let process = *PROCESS.get_or_init(random_u63);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut hex = [0u8; 32];
        for (i, d) in hex.iter_mut().enumerate() {
            let word = if i < 16 { process } else { count };
            let nibble = (word >> (60 - 4 * (i % 16))) & 0xf;
            *d = b"0123456789abcdef"[nibble as usize];
        }
        let mut id = [b'-'; 36];
        for (range, at) in [
            (0..8, 0),
            (8..12, 9),
            (12..16, 14),
            (16..20, 19),
            (20..32, 24),
        ] {
            id[at..at + range.len()].copy_from_slice(&hex[range]);
        }
        RequestId(id)
    }

    pub fn as_str(&self) -> &str {
        // Hex digits and dashes only.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_shaped_and_differ() {
        let (a, b) = (RequestId::next(), RequestId::next());
        for id in [a.as_str(), b.as_str()] {
            let groups: Vec<usize> = id.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
            assert!(
                id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
                "{id}"
            );
        }
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(
            a.as_str()[..19],
            b.as_str()[..19],
            "one process, one prefix"
        );
    }
}
