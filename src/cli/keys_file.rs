//! The keys file `pos seed --keys-file` writes and `pos loadgen --keys-file`
//! reads: an operator key, and a till key and a back-office key per seeded
//! tenant, by tenant id. It holds secrets, so it is created readable by its
//! owner only (mode 0600).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

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

impl KeysFile {
    pub fn read(path: &Path) -> Result<KeysFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a keys file: {e}", path.display()))
    }

    /// Writes the file with mode 0600 (also when it existed with another mode).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(fail)?;
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(fail)?;
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.write_all(b"\n").map_err(fail)
    }
}
