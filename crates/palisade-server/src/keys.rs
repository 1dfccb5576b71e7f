//! The master key and the keys derived from it.
//!
//! The master key is 32 random bytes kept in a file of mode 0600 (`<data-dir>/master.key`,
//! or the file named by `PALISADE_MASTER_KEY_FILE`), outside the database: a copy of the
//! database alone reveals no secret. From it are derived, by HMAC-SHA256 over a label:
//! the AEAD key that encrypts LMv1 access keys at rest, the pepper of Bearer token hashes,
//! and the key of the audit hash chain. Portal instances that share a database must share
//! the master key file.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use palisade_core::secret::Secret;
use rand::RngCore;
use sha2::Sha256;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Environment variable naming the master key file.
pub const MASTER_KEY_ENV: &str = "PALISADE_MASTER_KEY_FILE";

/// Errors loading or using keys. No key material in messages.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or created.
    #[error("master key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file does not hold a key.
    #[error("master key file {0} does not contain 64 hex characters")]
    Malformed(PathBuf),
    /// The key file is readable by others.
    #[error("master key file {path} has mode {mode:o}; it must be readable by its owner only (chmod 600 {path})")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// Decryption failed: wrong key or corrupted data.
    #[error("a secret could not be decrypted (wrong master key or corrupted data)")]
    Decrypt,
}

/// The keys of a portal.
pub struct Keys {
    aead: XChaCha20Poly1305,
    bearer_pepper: Secret<[u8; 32]>,
    chain_key: Secret<[u8; 32]>,
    code_key: Secret<[u8; 32]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

fn derive(master: &[u8; 32], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl Keys {
    /// Keys derived from a master key.
    pub fn from_master(master: &Secret<[u8; 32]>) -> Self {
        let aead_key = derive(master.expose(), "palisade/aead/v1");
        Keys {
            aead: XChaCha20Poly1305::new((&aead_key).into()),
            bearer_pepper: Secret::new(derive(master.expose(), "palisade/bearer-pepper/v1")),
            chain_key: Secret::new(derive(master.expose(), "palisade/audit-chain/v1")),
            code_key: Secret::new(derive(master.expose(), "palisade/one-time-codes/v1")),
        }
    }

    /// Loads the master key file, creating it (mode 0600) when absent.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_mode(path)?;
                let mut key = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut key)
                    .map_err(|_| KeyError::Malformed(path.to_path_buf()))?;
                Ok((Keys::from_master(&Secret::new(key)), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                if let Some(dir) = path.parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir).map_err(io)?;
                    }
                }
                write_new_private(path, format!("{}\n", hex::encode(key)).as_bytes())
                    .map_err(io)?;
                Ok((Keys::from_master(&Secret::new(key)), true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The key of the audit hash chain.
    pub fn chain_key(&self) -> Vec<u8> {
        self.chain_key.expose().to_vec()
    }

    /// The key under which one-time codes and recovery codes are hashed.
    pub fn code_key(&self) -> Vec<u8> {
        self.code_key.expose().to_vec()
    }

    /// Encrypts a secret, bound to `context` (e.g. the token's access id).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        B64.encode(out)
    }

    /// Decrypts what [`Keys::seal`] produced for the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Secret<Vec<u8>>, KeyError> {
        let raw = B64.decode(sealed).map_err(|_| KeyError::Decrypt)?;
        if raw.len() < 24 + 16 {
            return Err(KeyError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(24);
        self.aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map(Secret::new)
            .map_err(|_| KeyError::Decrypt)
    }

    /// The keyed hash under which a Bearer token is stored and looked up (hex).
    pub fn bearer_hash(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.bearer_pepper.expose())
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Creates a file that only its owner can read, writing it under a temporary name with its
/// final mode first and renaming it into place.
pub fn write_new_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp-new");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    drop(f);
    std::fs::hard_link(&tmp, path).and_then(|_| std::fs::remove_file(&tmp))
}

fn check_mode(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_bound_to_context() {
        let k = Keys::from_master(&Secret::new([3u8; 32]));
        let s = k.seal(b"palk_secret", "AID1");
        assert!(!s.contains("palk_secret"));
        assert_eq!(k.open(&s, "AID1").unwrap().expose(), b"palk_secret");
        assert!(k.open(&s, "AID2").is_err());
        let other = Keys::from_master(&Secret::new([4u8; 32]));
        assert!(other.open(&s, "AID1").is_err());
        assert_ne!(k.bearer_hash("a"), other.bearer_hash("a"));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("palisade-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("master.key");
        let (k1, created) = Keys::load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (k2, created) = Keys::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.bearer_hash("x"), k2.bearer_hash("x"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Keys::load_or_create(&path),
            Err(KeyError::Permissions { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
