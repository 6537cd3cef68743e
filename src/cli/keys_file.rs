//! The keys file `pos seed --keys-file` writes and `pos loadgen --keys-file`
//! reads: an operator key, and a till key and a back-office key per seeded
//! tenant, by tenant id. It holds secrets, so it is created readable by its
//! owner only (mode 0600).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::TenantId;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct KeysFile {
    /// Token of an operator key (reads any tenant and the top sellers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Token of a till key of each tenant (any branch).
    #[serde(default)]
    pub tills: BTreeMap<TenantId, String>,
    /// Token of a back-office key of each tenant (reads its sales).
    #[serde(default)]
    pub backoffices: BTreeMap<TenantId, String>,
}

/// Why a keys file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeysFileError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a keys file: {source}", .path.display())]
    NotAKeysFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl KeysFile {
    pub fn read(path: &Path) -> Result<KeysFile, KeysFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeysFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| KeysFileError::NotAKeysFile {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes the file with mode 0600 (also when it existed with another mode).
    pub fn write(&self, path: &Path) -> Result<(), KeysFileError> {
        let fail = |source: std::io::Error| KeysFileError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(fail)?;
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(fail)?;
        let text = serde_json::to_string_pretty(self).map_err(|e| fail(e.into()))?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.write_all(b"\n").map_err(fail)
    }
}
