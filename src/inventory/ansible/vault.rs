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

/// A vault password (see [`VaultId`]).
/// Its `Debug` never shows the password.
#[derive(Clone)]
pub struct Password {
    bytes: Vec<u8>,
    /// The file or script it came from (`prompt` for the terminal), for messages.
    pub file: PathBuf,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Password(from {})", self.file.display())
    }
}

/// ansible-core's `DEFAULT_VAULT_IDENTITY`: the label of a secret given without one
/// (`--vault-password-file`, `--ask-vault-pass`, `--vault-id SOURCE`) and of a format 1.1
/// vault, which names none.
pub const DEFAULT_LABEL: &str = "default";

/// The source ansible-core's `--ask-vault-pass` becomes (`default@prompt_ask_vault_pass`):
/// prompted as `Vault password: ` and tried after every other secret.
pub const ASK_VAULT_PASS: &str = "prompt_ask_vault_pass";

/// Largest password a file or script may give (1 MiB).
const MAX_PASSWORD: u64 = 1024 * 1024;

/// One vault secret, as ansible-core's `--vault-id LABEL@SOURCE` names it: read once, when
/// the run starts; a failure is kept for the first vault that needs a password (a team's
/// shell may set `ANSIBLE_VAULT_PASSWORD_FILE` for every project, and an inventory without
/// vaults is read regardless).
#[derive(Debug)]
pub struct VaultId {
    /// The label (`dev` of `dev@…`); [`DEFAULT_LABEL`] when none was given.
    pub label: String,
    /// The source as given: a file, an executable script, `prompt` or [`ASK_VAULT_PASS`].
    pub source: String,
    /// The password, or why it could not be had (the message names the source, never the
    /// password or a script's output).
    pub read: Result<Password, String>,
}

/// The vault secrets of a run, in the order ansible-core tries them: each
/// `ANSIBLE_VAULT_IDENTITY_LIST` entry, each `--vault-id`, the `--vault-password-file`
/// (else `ANSIBLE_VAULT_PASSWORD_FILE`), then `--ask-vault-pass`.
#[derive(Debug)]
pub struct VaultIds {
    /// The secrets in that order.
    pub ids: Vec<VaultId>,
    /// ansible-core's `DEFAULT_VAULT_ID_MATCH` (`ANSIBLE_VAULT_ID_MATCH`): only a secret whose
    /// label is the vault's own is tried (a 1.1 vault's label is [`DEFAULT_LABEL`]).
    pub id_match: bool,
}

/// ansible-core's `DEFAULT_VAULT_ID_MATCH` from `ANSIBLE_VAULT_ID_MATCH` (its boolean
/// spellings: `1`, `true`, `yes`, `on`, `y`, `t`, any case); off when unset.
pub fn id_match_from_env() -> bool {
    std::env::var("ANSIBLE_VAULT_ID_MATCH").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on" | "y" | "t"
        )
    })
}

/// Splits ansible-core's vault id slug `LABEL@SOURCE` (`CLI.split_vault_id`: at the first
/// `@`; without one, the whole text is the source and the label is [`DEFAULT_LABEL`]; an
/// empty label, as in `@prompt`, is [`DEFAULT_LABEL`] too).
pub fn split_vault_id(slug: &str) -> (String, String) {
    match slug.split_once('@') {
        Some((label, source)) if !label.is_empty() => (label.to_string(), source.to_string()),
        Some((_, source)) => (DEFAULT_LABEL.to_string(), source.to_string()),
        None => (DEFAULT_LABEL.to_string(), slug.to_string()),
    }
}

impl VaultIds {
    /// Reads every secret now, in ansible-core's order: the `slugs` (`LABEL@SOURCE`: the
    /// identity list, then `--vault-id`) except [`ASK_VAULT_PASS`] ones, the `password_file`
    /// as `default@FILE`, then the [`ASK_VAULT_PASS`] prompt. `None` when there is no secret.
    /// A source is `prompt` (asked on the terminal, not echoed, as `Vault password (LABEL): `),
    /// an executable file (run without a shell; its standard output is the password; a name
    /// ending in `-client` before its extension is given `--vault-id LABEL`, as ansible-core
    /// does), or a file holding the password.
    pub fn load(slugs: &[String], password_file: Option<&Path>, id_match: bool) -> Option<Self> {
        let mut order: Vec<(String, String)> = slugs
            .iter()
            .map(|s| split_vault_id(s))
            .filter(|(_, source)| source != ASK_VAULT_PASS)
            .collect();
        if let Some(f) = password_file {
            order.push((DEFAULT_LABEL.into(), f.to_string_lossy().into_owned()));
        }
        order.extend(
            slugs
                .iter()
                .map(|s| split_vault_id(s))
                .filter(|(_, source)| source == ASK_VAULT_PASS),
        );
        if order.is_empty() {
            return None;
        }
        let ids = order
            .into_iter()
            .map(|(label, source)| VaultId {
                read: Password::obtain(&label, &source),
                label,
                source,
            })
            .collect();
        Some(VaultIds { ids, id_match })
    }

    /// Every password worth redacting: those of at least [`MIN_DERIVED_BYTES`]
    /// (`crate::secret`) bytes.
    ///
    /// A shorter one (`wrong`, `vault`) is left out on purpose. rollout never sends a vault
    /// password anywhere nor prints it: it only derives the vault's keys on the controller.
    /// Redacted as a value, a short one would be cut out of rollout's own messages wherever
    /// the word occurs ("the <redacted> vault password"), which garbles them and tells the
    /// reader what the password is. A password that is also a value in the inventory (a
    /// `!vault` plaintext, a `{secret: ...}`) is redacted as that value all the same.
    ///
    /// [`MIN_DERIVED_BYTES`]: crate::secret::MIN_DERIVED_BYTES
    pub fn passwords(&self) -> Vec<String> {
        self.ids
            .iter()
            .filter_map(|i| i.read.as_ref().ok())
            .filter(|p| p.bytes.len() >= crate::secret::MIN_DERIVED_BYTES)
            .map(|p| String::from_utf8_lossy(&p.bytes).into_owned())
            .collect()
    }

    /// Decrypts a vault text as ansible-core's `VaultLib.decrypt` does: the secrets labelled
    /// as the vault (its 1.2 header's label, else [`DEFAULT_LABEL`]) first, then every other
    /// one in order (none with [`VaultIds::id_match`]); the first whose HMAC matches wins.
    ///
    /// A secret that could not be had (a missing file named by `ANSIBLE_VAULT_PASSWORD_FILE`,
    /// `--ask-vault-pass` without a terminal) matters only when no other secret tried opens
    /// the vault.
    ///
    /// # Errors
    /// No readable secret opens the vault and one tried could not be read (named by label
    /// and source); a malformed vault; no secret with the vault's label under `id_match`; no
    /// secret decrypts it (the labels tried are named). Never a password or plaintext.
    pub fn decrypt(&self, text: &str) -> Result<Vec<u8>, String> {
        let label = vault_label(text)?;
        let mut tried: Vec<&VaultId> = self.ids.iter().filter(|i| i.label == label).collect();
        if !self.id_match {
            tried.extend(self.ids.iter().filter(|i| i.label != label));
        }
        if tried.is_empty() {
            return Err(format!(
                "no vault password with this vault's label `{label}` was given, and \
                 ANSIBLE_VAULT_ID_MATCH allows no other (given: {})",
                self.labels(self.ids.iter())
            ));
        }
        for id in &tried {
            let Ok(password) = &id.read else { continue };
            match decrypt(text, password) {
                Ok(plain) => return Ok(plain),
                Err(VaultError::WrongPassword) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        // Only now does a secret that could not be had matter: it might have opened this one.
        if let Some(bad) = tried.iter().find(|i| i.read.is_err()) {
            let e = bad.read.as_ref().err().map(String::as_str).unwrap_or("");
            return Err(format!(
                "the vault password of vault id `{}` ({}) cannot be read: {e}",
                bad.label,
                source_name(&bad.source)
            ));
        }
        Err(format!(
            "wrong vault password: none of vault ids {} decrypts this vault (labelled `{label}`)",
            self.labels(tried.into_iter())
        ))
    }

    fn labels<'a>(&self, ids: impl Iterator<Item = &'a VaultId>) -> String {
        ids.map(|i| format!("`{}` ({})", i.label, source_name(&i.source)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks, before anything runs, a vault secret source given on the command line
/// (`--vault-id LABEL@SOURCE`, `--vault-password-file FILE`): a file must exist and, unless
/// it is an executable script (run when the inventory is read), be a readable, non-empty
/// password file. `prompt` and [`ASK_VAULT_PASS`] pass. As ansible-core's
/// `get_file_vault_secret` refuses at start ("The vault password file ... was not found");
/// sources from the environment are not checked here (see [`VaultIds::decrypt`]).
///
/// # Errors
/// What is wrong, naming the file (never its content).
pub fn check_given_source(source: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if source == "prompt" || source == ASK_VAULT_PASS {
        return Ok(());
    }
    let path = Path::new(source);
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("the vault password file {source} was not found"))
        }
        Err(e) => Err(format!(
            "the vault password file {source} cannot be read: {e}"
        )),
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Password::read(path).map(|_| ()).map_err(|e| {
            let e = e.strip_prefix("vault password file: ").unwrap_or(&e);
            format!("the vault password file {source} cannot be read: {e}")
        }),
    }
}

/// How a source is named in messages.
fn source_name(source: &str) -> String {
    match source {
        "prompt" | ASK_VAULT_PASS => "prompt".into(),
        s => format!("from {s}"),
    }
}

/// The label a vault text names: field 4 of a 1.2 header, else [`DEFAULT_LABEL`].
fn vault_label(text: &str) -> Result<String, String> {
    let header = text.lines().next().unwrap_or("").trim();
    match header.split(';').nth(3).map(str::trim) {
        Some(l) if !l.is_empty() => Ok(l.to_string()),
        Some(_) => Err(VaultError::Header(header.chars().take(60).collect()).to_string()),
        None => Ok(DEFAULT_LABEL.to_string()),
    }
}

impl Password {
    /// Has the password of vault id `label` from `source`: `prompt`/[`ASK_VAULT_PASS`] asks
    /// on the terminal, an executable file is run, any other file is read (see
    /// [`VaultIds::load`]).
    ///
    /// # Errors
    /// Why not, naming the source (never the password or a script's output).
    pub fn obtain(label: &str, source: &str) -> Result<Password, String> {
        use std::os::unix::fs::PermissionsExt;
        if source == "prompt" || source == ASK_VAULT_PASS {
            return Password::prompt(label, source == ASK_VAULT_PASS);
        }
        let path = Path::new(source);
        let meta = std::fs::metadata(path).map_err(|e| format!("vault password file: {e}"))?;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Password::run(label, path);
        }
        Password::read(path)
    }

    /// Asks on the terminal without echo, as ansible-core's `PromptVaultSecret`:
    /// `Vault password: ` for `--ask-vault-pass`, `Vault password (LABEL): ` for `prompt`.
    ///
    /// # Errors
    /// No terminal to ask on (no controlling terminal: `/dev/tty` cannot be opened), saying
    /// what to give instead; the terminal failing; an empty answer.
    fn prompt(label: &str, ask: bool) -> Result<Password, String> {
        // rpassword reads /dev/tty; without one its error is a bare "No such device or
        // address (os error 6)".
        if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_err()
        {
            return Err(if ask {
                "--ask-vault-pass needs a terminal; give --vault-password-file or --vault-id \
                 LABEL@FILE"
                    .into()
            } else {
                format!(
                    "--vault-id {label}@prompt needs a terminal; give --vault-password-file or \
                     --vault-id {label}@FILE"
                )
            });
        }
        let question = if ask {
            "Vault password: ".to_string()
        } else {
            format!("Vault password ({label}): ")
        };
        let text = rpassword::prompt_password(question)
            .map_err(|e| format!("cannot prompt for the vault password: {e}"))?;
        let text = text.trim();
        if text.is_empty() {
            return Err("the vault password given at the prompt is empty".into());
        }
        Ok(Password {
            bytes: text.as_bytes().to_vec(),
            file: PathBuf::from("prompt"),
        })
    }

    /// Runs a vault password script without a shell, as ansible-core's `ScriptVaultSecret`
    /// (and `ClientScriptVaultSecret`, given `--vault-id LABEL`, for a name ending in
    /// `-client` before its extension): standard input and error are the terminal's, the
    /// standard output (at most 1 MiB, whitespace around it stripped) is the password.
    fn run(label: &str, path: &Path) -> Result<Password, String> {
        use std::io::Read;
        // An absolute path, as ansible-core's `unfrackpath`: a relative one is not looked up
        // in $PATH.
        let abs = std::path::absolute(path).map_err(|e| format!("vault password script: {e}"))?;
        let mut cmd = std::process::Command::new(abs);
        if is_client_script(path) {
            cmd.args(["--vault-id", label]);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("vault password script cannot be run: {e}"))?;
        let mut out = Vec::new();
        let read = child
            .stdout
            .take()
            .map(|s| s.take(MAX_PASSWORD + 1).read_to_end(&mut out));
        let status = child
            .wait()
            .map_err(|e| format!("vault password script: {e}"))?;
        if !status.success() {
            return Err(match status.code() {
                Some(2) if is_client_script(path) => format!(
                    "vault password client script exited with code 2: it has no secret for vault id `{label}`"
                ),
                Some(c) => format!("vault password script exited with code {c}"),
                None => "vault password script was killed by a signal".into(),
            });
        }
        if !matches!(read, Some(Ok(_))) || out.len() as u64 > MAX_PASSWORD {
            return Err("vault password script: its output is unreadable or over 1 MiB".into());
        }
        let text = out.trim_ascii().to_vec();
        if text.is_empty() {
            return Err("vault password script printed no password".into());
        }
        Ok(Password {
            bytes: text,
            file: path.to_path_buf(),
        })
    }

    /// Reads a password file as ansible-core's `FileVaultSecret`: the whole file, surrounding
    /// whitespace stripped. Only a regular file of at most 1 MiB is read.
    ///
    /// # Errors
    /// Unreadable, not a regular file, too large or empty; the message does not repeat the
    /// path.
    pub fn read(path: &Path) -> Result<Password, String> {
        let bytes = crate::bounded::read(path, MAX_PASSWORD)
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

/// ansible-core's `script_is_client`: the file name without its extension ends in `-client`.
fn is_client_script(path: &Path) -> bool {
    path.file_stem()
        .is_some_and(|s| s.to_string_lossy().ends_with("-client"))
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

    const IDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vault_ids");

    /// The secrets `(label, password file of the fixture)`, in order.
    fn ids(pairs: &[(&str, &str)], id_match: bool) -> VaultIds {
        let slugs: Vec<String> = pairs
            .iter()
            .map(|(l, f)| format!("{l}@{IDS}/{f}"))
            .collect();
        VaultIds::load(&slugs, None, id_match).unwrap()
    }

    fn prod_file() -> String {
        std::fs::read_to_string(format!("{IDS}/inventory/group_vars/bbb/vault.yml")).unwrap()
    }

    #[test]
    fn short_passwords_are_not_registered_for_redaction() {
        let short = VaultIds {
            ids: vec![VaultId {
                label: "dev".into(),
                source: "x".into(),
                read: Ok(Password::from_bytes(b"wrong")),
            }],
            id_match: false,
        };
        assert!(short.passwords().is_empty());
        let long = ids(&[("dev", "dev-pass.txt")], false);
        assert_eq!(long.passwords(), vec!["dev-vault-pass".to_string()]);
    }

    #[test]
    fn a_vault_id_is_split_at_the_first_at_sign() {
        assert_eq!(split_vault_id("dev@a@b"), ("dev".into(), "a@b".into()));
        assert_eq!(
            split_vault_id("@prompt"),
            ("default".into(), "prompt".into())
        );
        assert_eq!(split_vault_id("file"), ("default".into(), "file".into()));
    }

    #[test]
    fn the_vaults_label_is_tried_first_then_the_others() {
        // The right label decrypts the 1.2 file to what ansible-vault encrypted.
        let plain = ids(&[("dev", "dev-pass.txt"), ("prod", "prod-pass.txt")], false)
            .decrypt(&prod_file())
            .unwrap();
        assert_eq!(plain, b"bbb_prod_secret: prod-plaintext-secret-42\n");
        // Under another label it is found by falling back, not under ANSIBLE_VAULT_ID_MATCH.
        let swapped = [("dev", "prod-pass.txt"), ("prod", "dev-pass.txt")];
        assert!(ids(&swapped, false).decrypt(&prod_file()).is_ok());
        let e = ids(&swapped, true).decrypt(&prod_file()).unwrap_err();
        assert!(
            e.contains("wrong vault password") && e.contains("`prod`") && !e.contains("`dev`"),
            "{e}"
        );
        // No password fits: the labels tried, never a password.
        let e = ids(&[("dev", "dev-pass.txt")], false)
            .decrypt(&prod_file())
            .unwrap_err();
        assert!(e.contains("`dev`") && e.contains("labelled `prod`"), "{e}");
        assert!(!e.contains("dev-vault-pass"), "{e}");
    }
}
