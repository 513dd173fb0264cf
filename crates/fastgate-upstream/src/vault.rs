//! Provider keys encrypted at rest under a master key.
//!
//! Provider keys (the `sk-...` values FastGate sends upstream) are stored in
//! the database sealed with AES-256-GCM under a master key that lives outside
//! the database: in `FASTGATE_MASTER_KEY` or in a key file next to the data.
//! A database dump alone therefore does not leak provider keys.
//!
//! Sealed values are text so they fit in any column:
//! `v1.<key id>.<base64url-nopad(nonce || ciphertext || tag)>`. The key id is
//! a short public fingerprint of the master key, so a value sealed under an
//! older master key is reported as such (`WrongKey`) instead of as corruption,
//! and a rotation command can find the values it still has to re-seal
//! ([`sealed_key_id`]). Each value is bound to a context string (AEAD
//! associated data, e.g. `"upstream/credential-name"`): a sealed value copied
//! into another row does not decrypt there.
//!
//! Transient copies of key bytes and plaintexts are not zeroized (no unsafe
//! code, no zeroize dependency): the threat addressed is data at rest, not an
//! attacker who can read this process's memory.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use fastgate_config::Secret;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// The environment variable holding the master key's text form. Read by the
/// caller and passed to [`MasterKey::load_or_create`] / [`MasterKey::load`],
/// so tests and tools do not depend on the process environment.
pub const MASTER_KEY_ENV: &str = "FASTGATE_MASTER_KEY";

/// Raw key length: AES-256.
const KEY_LEN: usize = 32;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Hex characters of the key id (64 bits of SHA-256: enough to tell keys apart,
/// far too little to say anything about the key).
const ID_LEN: usize = 16;
/// Format version prefix of sealed values.
const SEALED_VERSION: &str = "v1";
/// Domain separation for the key id, so the id is not a plain hash of the key
/// that could collide with some other use of the same bytes.
const ID_DOMAIN: &[u8] = b"fastgate master key id v1\0";
/// HKDF salt and info used to stretch a passphrase into a key. Fixed (not
/// random) so the same passphrase yields the same key on every instance.
const HKDF_SALT: &[u8] = b"fastgate master key passphrase salt v1";
const HKDF_INFO: &[u8] = b"fastgate vault aes-256-gcm key v1";
/// Shortest accepted passphrase, in characters.
const MIN_PASSPHRASE_CHARS: usize = 32;

/// Base64 decoders that accept input with or without `=` padding: operators
/// paste keys from many tools.
const B64_STANDARD_ANY: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_URL_SAFE_ANY: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Everything that can go wrong with the master key or a sealed value.
/// No variant ever carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The master key text is unusable; the message says why (never echoes it).
    #[error("invalid master key: {0}")]
    InvalidMasterKey(String),
    #[error("master key file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A key file others can read is as good as leaked: refuse to use it.
    #[error(
        "master key file {} is accessible by group or others (mode {mode:o}); \
         restrict it to the owner (chmod 600)",
        path.display()
    )]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    /// The value was sealed under another master key (e.g. before a rotation).
    #[error(
        "value was sealed under master key {sealed_id}, the current master key is {current_id}"
    )]
    WrongKey {
        sealed_id: String,
        current_id: String,
    },
    /// Malformed or tampered sealed value, or sealed for another context.
    #[error("sealed value is corrupt: {0}")]
    Corrupt(String),
}

/// Where the key came from (for the startup log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Env,
    File(PathBuf),
    Generated(PathBuf),
}

/// The master key: an AES-256-GCM key plus its public fingerprint.
///
/// The raw bytes are not kept (ring holds the expanded key); `Debug` shows the
/// id only, so the key can sit in structs that get logged.
#[derive(Clone)]
pub struct MasterKey {
    key: LessSafeKey,
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// Parse a master key's text form: base64 (standard or url-safe, padded or
    /// not) of exactly 32 bytes, or 64 hex chars; otherwise any passphrase of
    /// at least 32 characters, stretched with HKDF-SHA256 (fixed salt/info
    /// strings naming fastgate). Shorter => `InvalidMasterKey`.
    ///
    /// Surrounding whitespace is ignored, so the same text gives the same key
    /// whether it comes from the environment or from a file with a trailing
    /// newline. Note that a damaged base64/hex key of 32+ characters is taken
    /// as a passphrase; its id then differs from the expected one, which
    /// `open` reports as `WrongKey`.
    pub fn from_text(text: &str) -> Result<MasterKey, VaultError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(VaultError::InvalidMasterKey("the key is empty".into()));
        }
        if let Some(bytes) = decode_hex_key(text).or_else(|| decode_base64_key(text)) {
            return Self::from_bytes(&bytes);
        }
        let chars = text.chars().count();
        if chars < MIN_PASSPHRASE_CHARS {
            return Err(VaultError::InvalidMasterKey(format!(
                "expected base64 of 32 bytes, 64 hex characters, or a passphrase of at least \
                 {MIN_PASSPHRASE_CHARS} characters (got {chars} characters)"
            )));
        }
        let mut bytes = [0u8; KEY_LEN];
        hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT)
            .extract(text.as_bytes())
            .expand(&[HKDF_INFO], &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut bytes))
            .map_err(|_| VaultError::InvalidMasterKey("key derivation failed".into()))?;
        Self::from_bytes(&bytes)
    }

    /// A fresh random key (ring::rand::SystemRandom) and its text form
    /// (base64 of 32 bytes).
    pub fn generate() -> Result<(MasterKey, String), VaultError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| rng_error())?;
        Ok((Self::from_bytes(&bytes)?, STANDARD.encode(bytes)))
    }

    /// `env` (the value of FASTGATE_MASTER_KEY if set and non-empty) wins; else
    /// read `file` (trim whitespace; refuse if mode & 0o077 != 0 on unix); else
    /// generate one and write it to `file` atomically (temp file in the same
    /// dir created with mode 0600, fsync, rename; create the parent dir).
    ///
    /// The generated file is put in place without overwriting: if another
    /// instance sharing the directory created the file first, its key is read
    /// and used, so both instances end up sealing under the same key.
    pub fn load_or_create(
        env: Option<&str>,
        file: &Path,
    ) -> Result<(MasterKey, MasterKeySource), VaultError> {
        if let Some(found) = Self::load(env, file)? {
            return Ok(found);
        }
        let (key, text) = Self::generate()?;
        match install_key_file(file, &text, false)? {
            Installed::Written => Ok((key, MasterKeySource::Generated(file.to_path_buf()))),
            // Lost a race with another instance: use the key it wrote.
            Installed::AlreadyExists => match read_key_file(file)? {
                Some(other) => Ok((other, MasterKeySource::File(file.to_path_buf()))),
                None => Err(VaultError::Io {
                    path: file.to_path_buf(),
                    source: io::Error::new(
                        io::ErrorKind::NotFound,
                        "key file disappeared while it was being created",
                    ),
                }),
            },
        }
    }

    /// Read only (no generation): env, else the file; `Ok(None)` when neither
    /// exists. For tools (e.g. rotation) that must not invent a key.
    pub fn load(
        env: Option<&str>,
        file: &Path,
    ) -> Result<Option<(MasterKey, MasterKeySource)>, VaultError> {
        if let Some(text) = env.filter(|v| !v.trim().is_empty()) {
            let key = Self::from_text(text).map_err(|e| match e {
                VaultError::InvalidMasterKey(msg) => {
                    VaultError::InvalidMasterKey(format!("{MASTER_KEY_ENV}: {msg}"))
                }
                other => other,
            })?;
            return Ok(Some((key, MasterKeySource::Env)));
        }
        Ok(read_key_file(file)?.map(|key| (key, MasterKeySource::File(file.to_path_buf()))))
    }

    /// Short public fingerprint: first 16 hex chars of SHA-256 over a fixed
    /// domain string + key bytes. Safe to log and to store next to sealed values.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypt `plaintext` bound to `context` (AEAD associated data, e.g.
    /// "upstream/credential-name"), fresh random 96-bit nonce each call.
    /// Output: "v1.<id>.<base64url-nopad(nonce || ciphertext+tag)>".
    ///
    /// Random nonces are safe here: the number of values sealed under one key
    /// (provider credentials) is far below the 2^32 bound for 96-bit nonces.
    pub fn seal(&self, plaintext: &str, context: &str) -> Result<String, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| rng_error())?;
        let mut buf = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        buf.extend_from_slice(&nonce);
        let mut in_out = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut in_out,
            )
            // ring only refuses inputs beyond AES-GCM's ~64 GiB limit.
            .map_err(|_| VaultError::Corrupt("value too large to seal".into()))?;
        buf.extend_from_slice(&in_out);
        Ok(format!(
            "{SEALED_VERSION}.{}.{}",
            self.id,
            URL_SAFE_NO_PAD.encode(&buf)
        ))
    }

    /// Decrypt a `seal` output with the same context. `WrongKey` when the id
    /// differs; `Corrupt` when the format, the base64, the tag or the context
    /// do not check out, or the plaintext is not UTF-8.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Secret<String>, VaultError> {
        let (id, payload) = split_sealed(sealed).ok_or_else(|| {
            VaultError::Corrupt("not a sealed value (expected v1.<key id>.<data>)".into())
        })?;
        if id != self.id {
            return Err(VaultError::WrongKey {
                sealed_id: id.to_string(),
                current_id: self.id.clone(),
            });
        }
        let mut data = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| VaultError::Corrupt("payload is not valid base64url".into()))?;
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(VaultError::Corrupt("payload is too short".into()));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[..NONCE_LEN]);
        let plain_len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data[NONCE_LEN..],
            )
            .map_err(|_| {
                VaultError::Corrupt(
                    "authentication failed (tampered value or wrong context)".into(),
                )
            })?
            .len();
        data.truncate(NONCE_LEN + plain_len);
        data.drain(..NONCE_LEN);
        String::from_utf8(data)
            .map(Secret::new)
            .map_err(|_| VaultError::Corrupt("plaintext is not UTF-8".into()))
    }

    fn from_bytes(bytes: &[u8]) -> Result<MasterKey, VaultError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| VaultError::InvalidMasterKey("the key must be 32 bytes".into()))?;
        let mut hasher = Sha256::new();
        hasher.update(ID_DOMAIN);
        hasher.update(bytes);
        let mut id = hex_encode(&hasher.finalize());
        id.truncate(ID_LEN);
        Ok(MasterKey {
            key: LessSafeKey::new(unbound),
            id,
        })
    }
}

/// The master-key id a sealed value names, without decrypting (None if not
/// our format). Lets a rotation find values still sealed under an old key.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    split_sealed(sealed).map(|(id, _)| id)
}

/// Write a key's text form to `path` atomically with mode 0600 (used by
/// `generate` in load_or_create and by the master-key rotation command).
/// Replaces an existing file; readers see the old or the new key, never a
/// partial one.
pub fn write_key_file(path: &Path, text: &str) -> Result<(), VaultError> {
    install_key_file(path, text, true).map(|_| ())
}

/// The last 4 characters of a provider key for listings ("…abcd"); keys
/// shorter than 8 chars show only "…" (4 characters would be half the key).
pub fn key_hint(key: &str) -> String {
    let chars = key.chars().count();
    if chars < 8 {
        return "…".to_string();
    }
    let tail: String = key.chars().skip(chars - 4).collect();
    format!("…{tail}")
}

/// `v1.<16 lowercase hex>.<payload>` -> (id, payload).
fn split_sealed(sealed: &str) -> Option<(&str, &str)> {
    let rest = sealed.strip_prefix(SEALED_VERSION)?.strip_prefix('.')?;
    let (id, payload) = rest.split_once('.')?;
    let id_ok = id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    id_ok.then_some((id, payload))
}

fn rng_error() -> VaultError {
    VaultError::Io {
        path: PathBuf::from("(system random source)"),
        source: io::Error::other("the system random number generator failed"),
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn decode_hex_key(text: &str) -> Option<[u8; KEY_LEN]> {
    if text.len() != KEY_LEN * 2 {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

fn decode_base64_key(text: &str) -> Option<[u8; KEY_LEN]> {
    // 32 bytes encode to 43 characters, 44 with padding: skip longer text
    // (passphrases) without trying to decode it.
    if text.len() > 44 {
        return None;
    }
    let bytes = B64_STANDARD_ANY
        .decode(text)
        .or_else(|_| B64_URL_SAFE_ANY.decode(text))
        .ok()?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).ok()
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VaultError + '_ {
    move |source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read and parse a key file; `Ok(None)` when it does not exist.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, VaultError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    // Check the mode of the file we opened (not of the path) so a swap between
    // the check and the read cannot slip a different file in.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(io_err(path))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(VaultError::InsecureKeyFile {
                path: path.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io_err(path))?;
    match MasterKey::from_text(&text) {
        Ok(key) => Ok(Some(key)),
        Err(VaultError::InvalidMasterKey(msg)) => Err(VaultError::InvalidMasterKey(format!(
            "{}: {msg}",
            path.display()
        ))),
        Err(e) => Err(e),
    }
}

enum Installed {
    Written,
    AlreadyExists,
}

/// Write `text` to a 0600 temp file in `path`'s directory, fsync it, then put
/// it in place: `rename` when `replace`, else a hard link that fails if
/// `path` exists (no-clobber, for first-start generation racing another
/// instance). The directory is fsynced so the new name survives a crash.
fn install_key_file(path: &Path, text: &str, replace: bool) -> Result<Installed, VaultError> {
    let name = path.file_name().ok_or_else(|| VaultError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            "key file path has no file name",
        ),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir).map_err(io_err(&dir))?;

    let mut suffix = [0u8; 8];
    SystemRandom::new()
        .fill(&mut suffix)
        .map_err(|_| rng_error())?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        hex_encode(&suffix)
    ));
    let tmp = dir.join(tmp_name);

    let result = write_temp_and_install(&tmp, path, text, replace);
    // The temp name is gone after a rename; after a link (or a failure) it
    // still exists. Removing it is cleanup, not correctness.
    if tmp.exists() {
        let _ = fs::remove_file(&tmp);
    }
    let installed = result?;
    if matches!(installed, Installed::Written) {
        sync_dir(&dir).map_err(io_err(&dir))?;
    }
    Ok(installed)
}

fn write_temp_and_install(
    tmp: &Path,
    path: &Path,
    text: &str,
    replace: bool,
) -> Result<Installed, VaultError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(tmp).map_err(io_err(tmp))?;
    file.write_all(text.trim().as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(io_err(tmp))?;
    drop(file);

    if replace {
        fs::rename(tmp, path).map_err(io_err(path))?;
        return Ok(Installed::Written);
    }
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(Installed::Written),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Installed::AlreadyExists),
        // Filesystems without hard links: fall back to rename, unless the
        // file appeared meanwhile.
        Err(_) if !path.exists() => {
            fs::rename(tmp, path).map_err(io_err(path))?;
            Ok(Installed::Written)
        }
        Err(_) => Ok(Installed::AlreadyExists),
    }
}

/// Create the key directory (and parents) owner-only on unix; existing
/// directories are left as they are.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key() -> MasterKey {
        MasterKey::from_text(HEX_KEY).unwrap()
    }

    fn payload_bytes(sealed: &str) -> Vec<u8> {
        let (_, payload) = split_sealed(sealed).unwrap();
        URL_SAFE_NO_PAD.decode(payload).unwrap()
    }

    fn with_payload(sealed: &str, bytes: &[u8]) -> String {
        let (id, _) = split_sealed(sealed).unwrap();
        format!("v1.{id}.{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    #[test]
    fn round_trip() {
        let k = key();
        let sealed = k.seal("sk-live-abcdef", "upstream/openai").unwrap();
        assert!(sealed.starts_with(&format!("v1.{}.", k.id())));
        assert!(!sealed.contains("sk-live"));
        let opened = k.open(&sealed, "upstream/openai").unwrap();
        assert_eq!(opened.expose(), "sk-live-abcdef");
        // Empty plaintext too.
        let sealed = k.seal("", "c").unwrap();
        assert_eq!(k.open(&sealed, "c").unwrap().expose(), "");
    }

    #[test]
    fn seals_differ_by_nonce() {
        let k = key();
        let a = k.seal("same", "ctx").unwrap();
        let b = k.seal("same", "ctx").unwrap();
        assert_ne!(a, b);
        assert_ne!(
            payload_bytes(&a)[..NONCE_LEN],
            payload_bytes(&b)[..NONCE_LEN]
        );
    }

    #[test]
    fn wrong_context_is_corrupt() {
        let k = key();
        let sealed = k.seal("secret", "upstream/a").unwrap();
        assert!(matches!(
            k.open(&sealed, "upstream/b"),
            Err(VaultError::Corrupt(_))
        ));
        assert!(matches!(k.open(&sealed, ""), Err(VaultError::Corrupt(_))));
    }

    #[test]
    fn tampered_bytes_are_corrupt() {
        let k = key();
        let sealed = k.seal("secret value", "ctx").unwrap();
        let bytes = payload_bytes(&sealed);
        // Flip one bit at every position: nonce, ciphertext and tag.
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            let err = k.open(&with_payload(&sealed, &t), "ctx").unwrap_err();
            assert!(matches!(err, VaultError::Corrupt(_)), "byte {i}: {err:?}");
        }
        // Changing a character of the text form is caught as well.
        let (prefix, payload) = sealed.rsplit_once('.').unwrap();
        for (i, c) in payload.char_indices() {
            let replacement = if c == 'A' { 'B' } else { 'A' };
            let mut p = payload.to_string();
            p.replace_range(i..i + 1, &replacement.to_string());
            let err = k.open(&format!("{prefix}.{p}"), "ctx").unwrap_err();
            assert!(matches!(err, VaultError::Corrupt(_)), "char {i}: {err:?}");
        }
    }

    #[test]
    fn other_key_is_wrong_key_with_both_ids() {
        let a = key();
        let (b, _) = MasterKey::generate().unwrap();
        assert_ne!(a.id(), b.id());
        let sealed = a.seal("secret", "ctx").unwrap();
        match b.open(&sealed, "ctx") {
            Err(VaultError::WrongKey {
                sealed_id,
                current_id,
            }) => {
                assert_eq!(sealed_id, a.id());
                assert_eq!(current_id, b.id());
            }
            other => panic!("expected WrongKey, got {other:?}"),
        }
        // Claiming the current id does not help a value sealed under another key.
        let forged = sealed.replacen(a.id(), b.id(), 1);
        assert!(matches!(
            b.open(&forged, "ctx"),
            Err(VaultError::Corrupt(_))
        ));
    }

    #[test]
    fn garbage_is_corrupt_not_panic() {
        let k = key();
        let sealed = k.seal("secret", "ctx").unwrap();
        let id = k.id();
        let mut inputs = vec![
            String::new(),
            "v1".into(),
            "v1.".into(),
            "v1..".into(),
            format!("v1.{id}"),
            format!("v1.{id}."),
            format!("v1.{id}.!!!!"),
            format!("v1.{id}.AAAA"),
            format!("v2.{id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            "v1.nothex!nothex!.AAAA".into(),
            "v1.x.y".into(),
            "plain sk-value".into(),
            "v1.é.€".into(),
        ];
        // Every truncation of a valid value.
        for cut in 0..sealed.len() {
            inputs.push(sealed[..cut].to_string());
        }
        for input in &inputs {
            match k.open(input, "ctx") {
                Err(VaultError::Corrupt(msg)) => assert!(!msg.contains("secret")),
                other => panic!("{input:?}: expected Corrupt, got {other:?}"),
            }
        }
        // Valid envelope, non-UTF-8 plaintext.
        let mut buf = vec![0u8; NONCE_LEN];
        let mut ct = vec![0xff, 0xfe, 0x80];
        k.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key([0u8; NONCE_LEN]),
                Aad::from(&b"ctx"[..]),
                &mut ct,
            )
            .unwrap();
        buf.extend_from_slice(&ct);
        let bad_utf8 = format!("v1.{id}.{}", URL_SAFE_NO_PAD.encode(&buf));
        assert!(matches!(
            k.open(&bad_utf8, "ctx"),
            Err(VaultError::Corrupt(_))
        ));
    }

    #[test]
    fn sealed_key_id_reads_the_id() {
        let k = key();
        let sealed = k.seal("x", "c").unwrap();
        assert_eq!(sealed_key_id(&sealed), Some(k.id()));
        assert_eq!(sealed_key_id("sk-plain"), None);
        assert_eq!(sealed_key_id("v1.short.AAAA"), None);
        assert_eq!(sealed_key_id("v1.0123456789abcdef"), None);
    }

    #[test]
    fn from_text_forms() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let hex = MasterKey::from_text(HEX_KEY).unwrap();
        let hex_upper = MasterKey::from_text(&HEX_KEY.to_uppercase()).unwrap();
        let b64 = MasterKey::from_text(&STANDARD.encode(&bytes)).unwrap();
        let b64_nopad =
            MasterKey::from_text(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes))
                .unwrap();
        let b64_url = MasterKey::from_text(&URL_SAFE_NO_PAD.encode(&bytes)).unwrap();
        let b64_url_pad =
            MasterKey::from_text(&base64::engine::general_purpose::URL_SAFE.encode(&bytes))
                .unwrap();
        // All encodings of the same 32 bytes are the same key.
        for k in [&hex_upper, &b64, &b64_nopad, &b64_url, &b64_url_pad] {
            assert_eq!(k.id(), hex.id());
        }
        // ... and that key really is those bytes: interoperable with a key built directly.
        let direct = MasterKey::from_bytes(&bytes).unwrap();
        let sealed = direct.seal("v", "c").unwrap();
        assert_eq!(b64_url.open(&sealed, "c").unwrap().expose(), "v");

        // A url-safe key with '-'/'_' in it (bytes chosen so the encoding has them).
        let odd = [0xfbu8; 32];
        let url = URL_SAFE_NO_PAD.encode(odd);
        assert!(url.contains('-') || url.contains('_'));
        assert_eq!(
            MasterKey::from_text(&url).unwrap().id(),
            MasterKey::from_text(&STANDARD.encode(odd)).unwrap().id()
        );

        let pass = MasterKey::from_text("correct horse battery staple, 32+").unwrap();
        assert_ne!(pass.id(), hex.id());
        assert_eq!(pass.id().len(), 16);

        // Base64 of the wrong length is not a 32-byte key, and too short for a passphrase.
        for bad in [
            "",
            "   ",
            "short",
            &STANDARD.encode([0u8; 16]),
            &"a".repeat(31),
        ] {
            match MasterKey::from_text(bad) {
                Err(VaultError::InvalidMasterKey(msg)) => {
                    assert!(bad.trim().is_empty() || !msg.contains(bad.trim()))
                }
                other => panic!("{bad:?}: expected InvalidMasterKey, got {other:?}"),
            }
        }
        assert!(MasterKey::from_text(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn same_text_same_id() {
        let a = MasterKey::from_text("a long passphrase that is long enough").unwrap();
        let b = MasterKey::from_text("  a long passphrase that is long enough\n").unwrap();
        assert_eq!(a.id(), b.id());
        let sealed = a.seal("v", "c").unwrap();
        assert_eq!(b.open(&sealed, "c").unwrap().expose(), "v");
        let (g, text) = MasterKey::generate().unwrap();
        assert_eq!(MasterKey::from_text(&text).unwrap().id(), g.id());
        assert_eq!(STANDARD.decode(&text).unwrap().len(), 32);
    }

    #[test]
    fn debug_shows_id_only() {
        let k = key();
        let dbg = format!("{k:?}");
        assert!(dbg.contains(k.id()));
        assert!(!dbg.contains("0001020304"));
        assert!(!dbg.contains("LessSafeKey"));
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn load_or_create_generates_then_rereads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/dir/master.key");
        assert!(MasterKey::load(None, &file).unwrap().is_none());

        let (k1, src1) = MasterKey::load_or_create(None, &file).unwrap();
        assert_eq!(src1, MasterKeySource::Generated(file.clone()));
        #[cfg(unix)]
        assert_eq!(mode(&file), 0o600);
        // Only the key file is left behind, no temp files.
        let names: Vec<_> = fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("master.key")]);

        let (k2, src2) = MasterKey::load_or_create(None, &file).unwrap();
        assert_eq!(src2, MasterKeySource::File(file.clone()));
        assert_eq!(k1.id(), k2.id());
        let sealed = k1.seal("sk-x", "ctx").unwrap();
        assert_eq!(k2.open(&sealed, "ctx").unwrap().expose(), "sk-x");

        // Empty env counts as unset.
        let (k3, src3) = MasterKey::load_or_create(Some(""), &file).unwrap();
        assert_eq!(src3, MasterKeySource::File(file.clone()));
        assert_eq!(k3.id(), k1.id());
        let (k4, src4) = MasterKey::load(Some("  "), &file).unwrap().unwrap();
        assert_eq!(src4, MasterKeySource::File(file));
        assert_eq!(k4.id(), k1.id());
    }

    #[test]
    fn env_wins_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        let (file_key, text) = MasterKey::generate().unwrap();
        write_key_file(&file, &text).unwrap();

        let (k, src) = MasterKey::load_or_create(Some(HEX_KEY), &file).unwrap();
        assert_eq!(src, MasterKeySource::Env);
        assert_eq!(k.id(), key().id());
        assert_ne!(k.id(), file_key.id());

        // Env wins even when no file exists, and nothing gets generated.
        let missing = dir.path().join("none.key");
        let (_, src) = MasterKey::load_or_create(Some(HEX_KEY), &missing).unwrap();
        assert_eq!(src, MasterKeySource::Env);
        assert!(!missing.exists());

        // A bad env key is an error naming the variable, not a silent fallback.
        match MasterKey::load_or_create(Some("too-short"), &file) {
            Err(VaultError::InvalidMasterKey(msg)) => {
                assert!(msg.contains(MASTER_KEY_ENV));
                assert!(!msg.contains("too-short"));
            }
            other => panic!("expected InvalidMasterKey, got {other:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn insecure_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        let (_, text) = MasterKey::generate().unwrap();
        write_key_file(&file, &text).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        for result in [
            MasterKey::load_or_create(None, &file).map(|_| ()),
            MasterKey::load(None, &file).map(|_| ()),
        ] {
            match result {
                Err(VaultError::InsecureKeyFile { path, mode }) => {
                    assert_eq!(path, file);
                    assert_eq!(mode, 0o644);
                }
                other => panic!("expected InsecureKeyFile, got {other:?}"),
            }
        }
        // Not overwritten by a fresh key either.
        assert_eq!(fs::read_to_string(&file).unwrap().trim(), text);
    }

    #[test]
    fn write_key_file_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        let (_, a) = MasterKey::generate().unwrap();
        let (kb, b) = MasterKey::generate().unwrap();
        write_key_file(&file, &a).unwrap();
        write_key_file(&file, &b).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), format!("{b}\n"));
        #[cfg(unix)]
        assert_eq!(mode(&file), 0o600);
        let (k, _) = MasterKey::load(None, &file).unwrap().unwrap();
        assert_eq!(k.id(), kb.id());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn generation_does_not_clobber_a_key_written_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        let (first, a) = MasterKey::generate().unwrap();
        write_key_file(&file, &a).unwrap();
        // What load_or_create does after losing the race to another instance.
        let (_, b) = MasterKey::generate().unwrap();
        assert!(matches!(
            install_key_file(&file, &b, false).unwrap(),
            Installed::AlreadyExists
        ));
        assert_eq!(fs::read_to_string(&file).unwrap(), format!("{a}\n"));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let (k, _) = MasterKey::load_or_create(None, &file).unwrap();
        assert_eq!(k.id(), first.id());
    }

    #[test]
    fn invalid_key_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        write_key_file(&file, "tiny").unwrap();
        match MasterKey::load_or_create(None, &file) {
            Err(VaultError::InvalidMasterKey(msg)) => {
                assert!(msg.contains("master.key"));
                assert!(!msg.contains("tiny"));
            }
            other => panic!("expected InvalidMasterKey, got {other:?}"),
        }
    }

    #[test]
    fn key_hint_shows_last_four() {
        assert_eq!(key_hint("sk-proj-abcdefgh1234"), "…1234");
        assert_eq!(key_hint("12345678"), "…5678");
        assert_eq!(key_hint("1234567"), "…");
        assert_eq!(key_hint(""), "…");
        assert_eq!(key_hint("ключ-секрет-éèêë"), "…éèêë");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn seal_open_round_trip(plain in ".*", context in ".*") {
            let k = key();
            let sealed = k.seal(&plain, &context).unwrap();
            let opened = k.open(&sealed, &context).unwrap();
            proptest::prop_assert_eq!(opened.expose(), &plain);
        }
    }
}
