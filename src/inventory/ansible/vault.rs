//! ansible-vault's format 1.1/1.2 (`$ANSIBLE_VAULT;1.1;AES256`, `$ANSIBLE_VAULT;1.2;AES256;ID`),
//! decrypted as ansible-core's `VaultAES256` does (lib/ansible/parsing/vault/__init__.py):
//! the body is hex of `hex(salt) \n hex(hmac) \n hex(ciphertext)`; PBKDF2-HMAC-SHA256 with
//! 10 000 rounds derives 80 bytes from the password and salt (a 32-byte AES-256 key, a 32-byte
//! HMAC key, a 16-byte initial counter); the HMAC-SHA256 of the ciphertext is checked before
//! anything is decrypted (AES-256-CTR, 128-bit big-endian counter), then the PKCS#7 padding
//! (16-byte blocks) is removed.
//!
//! The crate `ansible-vault` (0.2.1, 2022) does the same on RustCrypto releases from 2020
//! (`aes-ctr`, deprecated) and reads only format 1.1, so the format is implemented here on the
//! current RustCrypto crates and tested against files that `ansible-vault` wrote.

use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{KeyInit, Mac};
use std::path::{Path, PathBuf};

/// The first bytes of every vault: a file or value starting with them is encrypted.
pub const HEADER: &str = "$ANSIBLE_VAULT";

/// PBKDF2 rounds of ansible-core's `VaultAES256._create_key_cryptography`.
const PBKDF2_ROUNDS: u32 = 10_000;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// The vault password, read from `--vault-password-file` or `ANSIBLE_VAULT_PASSWORD_FILE`.
/// Its `Debug` never shows the password.
#[derive(Clone)]
pub struct Password {
    bytes: Vec<u8>,
    /// The file it came from, for messages.
    pub file: PathBuf,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Password(from {})", self.file.display())
    }
}

/// A vault password file named on the command line or in `ANSIBLE_VAULT_PASSWORD_FILE`,
/// read once and used when a vault first needs it: an inventory without vaults is read even
/// when the file cannot be (a team's shell may set the variable for every project).
#[derive(Debug)]
pub struct PasswordFile {
    /// The file as given.
    pub path: PathBuf,
    /// The password, or why the file could not be read (see [`Password::read`]).
    pub read: Result<Password, String>,
}

impl PasswordFile {
    /// Reads `path` now; a failure is kept for the first vault that needs it.
    pub fn new(path: &Path) -> PasswordFile {
        PasswordFile {
            path: path.to_path_buf(),
            read: Password::read(path),
        }
    }
}

impl Password {
    /// Reads a password file as ansible-core does for a non-executable one: the whole file,
    /// surrounding whitespace stripped. Only a regular file of at most 1 MiB is read.
    ///
    /// # Errors
    /// Unreadable, not a regular file, too large, empty, or executable (ansible-core would run
    /// it as a script; rollout runs nothing to read a password); the message does not repeat
    /// the path.
    pub fn read(path: &Path) -> Result<Password, String> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| format!("vault password file: {e}"))?;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Err(
                "vault password file is executable: rollout does not run password \
                        scripts; remove the execute bit or pass a plain file"
                    .into(),
            );
        }
        let bytes = crate::bounded::read(path, 1024 * 1024)
            .map_err(|e| format!("vault password file: {e}"))?;
        let text = bytes.trim_ascii().to_vec();
        if text.is_empty() {
            return Err("vault password file is empty".into());
        }
        Ok(Password {
            bytes: text,
            file: path.to_path_buf(),
        })
    }

    /// A password given directly (tests).
    pub fn from_bytes(bytes: &[u8]) -> Password {
        Password {
            bytes: bytes.to_vec(),
            file: PathBuf::from("<given>"),
        }
    }
}

/// Why a vault could not be decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    /// The header is not `$ANSIBLE_VAULT;1.1;AES256` or `…;1.2;AES256;ID`.
    #[error("not an ansible-vault header: `{0}`")]
    Header(String),
    /// The body is not the hex layout ansible-vault writes.
    #[error("malformed vault body ({0})")]
    Format(&'static str),
    /// The HMAC does not match: the password is wrong (or the data was changed).
    #[error("wrong vault password (the HMAC does not match)")]
    WrongPassword,
    /// Decrypted, but the padding is not PKCS#7.
    #[error("decrypted data has bad padding")]
    Padding,
}

/// Is this text (a file's or a `!vault` value's) a vault?
pub fn is_encrypted(text: &str) -> bool {
    text.starts_with(HEADER)
}

/// Decrypts a whole vault text (header line, then the hex body on any number of lines).
///
/// # Errors
/// See [`VaultError`].
pub fn decrypt(text: &str, password: &Password) -> Result<Vec<u8>, VaultError> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("").trim();
    let fields: Vec<&str> = header.split(';').collect();
    let ok = match fields.as_slice() {
        [HEADER, "1.1", "AES256"] => true,
        [HEADER, "1.2", "AES256", id] => !id.is_empty(),
        _ => false,
    };
    if !ok {
        return Err(VaultError::Header(header.chars().take(60).collect()));
    }
    let body: String = lines.map(str::trim).collect();
    let outer = hex::decode(body.as_bytes()).map_err(|_| VaultError::Format("not hex"))?;
    let mut parts = outer.splitn(3, |b| *b == b'\n');
    let (Some(salt), Some(mac), Some(ciphertext)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(VaultError::Format("expected salt, HMAC and ciphertext"));
    };
    let salt = hex::decode(salt).map_err(|_| VaultError::Format("salt is not hex"))?;
    let mac = hex::decode(mac).map_err(|_| VaultError::Format("HMAC is not hex"))?;
    let mut data =
        hex::decode(ciphertext).map_err(|_| VaultError::Format("ciphertext is not hex"))?;

    let mut derived = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(&password.bytes, &salt, PBKDF2_ROUNDS, &mut derived);
    let (key, rest) = derived.split_at(32);
    let (mac_key, iv) = rest.split_at(32);

    let mut check = hmac::Hmac::<sha2::Sha256>::new_from_slice(mac_key)
        .map_err(|_| VaultError::Format("HMAC key"))?;
    check.update(&data);
    check
        .verify_slice(&mac)
        .map_err(|_| VaultError::WrongPassword)?;

    let mut cipher =
        Aes256Ctr::new_from_slices(key, iv).map_err(|_| VaultError::Format("key length"))?;
    cipher.apply_keystream(&mut data);
    let pad = usize::from(*data.last().ok_or(VaultError::Padding)?);
    if pad == 0
        || pad > 16
        || pad > data.len()
        || !data[data.len() - pad..]
            .iter()
            .all(|b| usize::from(*b) == pad)
    {
        return Err(VaultError::Padding);
    }
    data.truncate(data.len() - pad);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORPUS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ansible-inventories"
    );

    #[test]
    fn decrypts_a_file_ansible_vault_wrote() {
        let text = std::fs::read_to_string(format!(
            "{CORPUS}/04-virtuos-bbb-vaultfile-yaml/group_vars/all/vault.yml"
        ))
        .unwrap();
        let plain = decrypt(&text, &Password::from_bytes(b"corpus-vault-pass")).unwrap();
        let plain = String::from_utf8(plain).unwrap();
        assert!(
            plain.contains("vault_bigbluebutton: placeholder-bbb-api-secret"),
            "{plain}"
        );
    }

    #[test]
    fn decrypts_a_labelled_1_2_value() {
        let inv = std::fs::read_to_string(format!(
            "{CORPUS}/19-docs-network-inventory-vault-yaml/inventory.yml"
        ))
        .unwrap();
        let start = inv.find("$ANSIBLE_VAULT;1.2").unwrap();
        let value: String = inv[start..]
            .lines()
            .take_while(|l| l.starts_with('$') || l.trim().bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|l| format!("{}\n", l.trim()))
            .collect();
        let plain = decrypt(&value, &Password::from_bytes(b"corpus-vault-pass")).unwrap();
        assert_eq!(plain, b"placeholder-vyos-ssh-password");
    }

    #[test]
    fn a_wrong_password_is_refused_before_decrypting() {
        let text = std::fs::read_to_string(format!(
            "{CORPUS}/04-virtuos-bbb-vaultfile-yaml/group_vars/all/vault.yml"
        ))
        .unwrap();
        assert_eq!(
            decrypt(&text, &Password::from_bytes(b"wrong")),
            Err(VaultError::WrongPassword)
        );
        assert!(matches!(
            decrypt("$ANSIBLE_VAULT;9.9;AES\n00\n", &Password::from_bytes(b"x")),
            Err(VaultError::Header(_))
        ));
        assert!(matches!(
            decrypt(
                "$ANSIBLE_VAULT;1.1;AES256\nzz\n",
                &Password::from_bytes(b"x")
            ),
            Err(VaultError::Format(_))
        ));
    }
}
