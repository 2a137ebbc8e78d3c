//! Where the operator keys that seal webhook secrets come from: `HOOKRELAY_ENCRYPTION_KEY`
//! (required with PostgreSQL, where every node must share it), or for SQLite a key file kept
//! beside the database (`<database>.key`, mode 0600), generated on the first start.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{KeySettings, SecretString};
use crate::domain::crypto::{KEY_LEN, Keyring};
use crate::store;

/// Checks the configured keys without touching any file: what `hookrelay config` reports.
pub fn check_settings(database_url: &str, settings: &KeySettings) -> anyhow::Result<()> {
    configured(database_url, settings).map(drop)
}

/// The configured keyring; `None` when the SQLite key file is to be used.
fn configured(database_url: &str, settings: &KeySettings) -> anyhow::Result<Option<Keyring>> {
    let old = decode_list(settings.old_keys.as_ref())?;
    if let Some(key) = &settings.key {
        let primary = Keyring::decode_key(key.expose())
            .map_err(|e| anyhow::anyhow!("HOOKRELAY_ENCRYPTION_KEY {e}"))?;
        return Ok(Some(Keyring::new(&primary, &old)));
    }
    if store::is_postgres(database_url) {
        anyhow::bail!(
            "HOOKRELAY_ENCRYPTION_KEY is required with PostgreSQL, so that every node seals \
             webhook secrets with the same key (generate one: openssl rand -base64 32)"
        );
    }
    Ok(None)
}

/// The keyring for `database_url`, creating the SQLite key file if there is none yet.
pub fn load(database_url: &str, settings: &KeySettings) -> anyhow::Result<Keyring> {
    if let Some(keyring) = configured(database_url, settings)? {
        return Ok(keyring);
    }
    let old = decode_list(settings.old_keys.as_ref())?;
    let path = key_file(database_url);
    let mut keys = match read_key_file(&path)? {
        Some(keys) => keys,
        None => {
            let key = Keyring::generate_key();
            write_key_file(&path, &[key])?;
            tracing::info!(path = %path.display(), "generated the key that seals webhook secrets; back it up with the database");
            vec![key]
        }
    };
    keys.extend(old);
    let (primary, older) = keys.split_first().context("empty key file")?;
    Ok(Keyring::new(primary, older))
}

/// `hookrelay rotate-encryption-key`: seals every secret with the primary key. With
/// configured keys, the new key is `HOOKRELAY_ENCRYPTION_KEY` and the old ones are in
/// `HOOKRELAY_OLD_ENCRYPTION_KEYS`. With a SQLite key file, a new key is generated and
/// replaces the old one once every secret is sealed with it.
pub async fn rotate(
    database_url: &str,
    max_connections: u32,
    settings: &KeySettings,
) -> anyhow::Result<u64> {
    if settings.key.is_some() || store::is_postgres(database_url) {
        let keyring = std::sync::Arc::new(load(database_url, settings)?);
        let store = store::connect(database_url, max_connections, keyring).await?;
        let sealed = store.reencrypt_secrets().await?;
        store.close().await;
        return Ok(sealed);
    }
    let path = key_file(database_url);
    let old = read_key_file(&path)?.unwrap_or_default();
    let new = Keyring::generate_key();
    // New key first, old ones kept until every secret is sealed with the new one.
    let mut both = vec![new];
    both.extend(old.iter().copied());
    write_key_file(&path, &both)?;
    let keyring = std::sync::Arc::new(Keyring::new(&new, &old));
    let store = store::connect(database_url, max_connections, keyring).await?;
    let sealed = store.reencrypt_secrets().await?;
    store.close().await;
    write_key_file(&path, &[new])?;
    Ok(sealed)
}

/// `<database file>.key`.
pub fn key_file(database_url: &str) -> PathBuf {
    let mut path = store::sqlite_path(database_url).into_os_string();
    path.push(".key");
    PathBuf::from(path)
}

fn decode_list(list: Option<&SecretString>) -> anyhow::Result<Vec<[u8; KEY_LEN]>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    list.expose()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|k| {
            Keyring::decode_key(k)
                .map_err(|e| anyhow::anyhow!("HOOKRELAY_OLD_ENCRYPTION_KEYS: a key {e}"))
        })
        .collect()
}

fn read_key_file(path: &Path) -> anyhow::Result<Option<Vec<[u8; KEY_LEN]>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            Keyring::decode_key(l).map_err(|e| anyhow::anyhow!("{}: a key {e}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if keys.is_empty() {
        anyhow::bail!("{} holds no key", path.display());
    }
    Ok(Some(keys))
}

/// Writes the key file with owner-only permissions, replacing it atomically.
fn write_key_file(path: &Path, keys: &[[u8; KEY_LEN]]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    writeln!(
        file,
        "# hookrelay: keys sealing webhook secrets; the first seals, all open. Keep with backups of the database, and secret."
    )?;
    for key in keys {
        writeln!(file, "{}", Keyring::encode_key(key))?;
    }
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
