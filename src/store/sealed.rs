//! Tokens at rest: XChaCha20-Poly1305 under the keys of `CUSP_ENCRYPTION_KEY`.
//!
//! It lives in `store/` because the store is the only code that reads or writes a
//! ciphertext: callers hand it a token and get a token back, and a database dump alone
//! never reveals one. The code here is pure (no I/O): parse the keys, seal, open.
//!
//! Stored form: `v1.<key id>.<base64(nonce ‖ ciphertext ‖ tag)>`. The key id is the
//! first 4 bytes of a SHA-256 of the key (domain-separated), so decryption picks the right
//! key among several and an operator can see which key a row needs without seeing the
//! key. The associated data binds the ciphertext to its version, key id, row (enterprise
//! id, team id) and column: a ciphertext copied into another team's row, or from the bot
//! token column into the refresh token column, fails to open.
//!
//! Rotation: `CUSP_ENCRYPTION_KEY=new,old` encrypts with `new` and opens rows sealed under
//! either; `cusp rotate-key` re-seals every row under `new`, after which `old` can go.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

/// The one stored format so far; a later format gets `v2` and both are read.
const VERSION: &str = "v1";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const KEY_ID_LEN: usize = 4;

/// A key problem in `CUSP_ENCRYPTION_KEY`, found when the keys are read (at startup).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "CUSP_ENCRYPTION_KEY is not set. Generate a key with `openssl rand -base64 32` and set \
         CUSP_ENCRYPTION_KEY to it; keep a copy somewhere safe, since stored Slack tokens cannot \
         be read without it"
    )]
    Missing,
    #[error(
        "CUSP_ENCRYPTION_KEY: key #{position} is not valid base64. Each key is 32 random bytes in \
         base64, as `openssl rand -base64 32` prints them; separate several keys with commas"
    )]
    NotBase64 { position: usize },
    #[error(
        "CUSP_ENCRYPTION_KEY: key #{position} is {len} bytes long, but a key must be exactly 32 \
         bytes; generate one with `openssl rand -base64 32`"
    )]
    WrongLength { position: usize, len: usize },
    #[error("CUSP_ENCRYPTION_KEY: key #{position} repeats key #{first}; list each key once")]
    Duplicate { position: usize, first: usize },
}

/// A stored token that cannot be opened.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "a stored token was encrypted with key {key_id}, which is not in CUSP_ENCRYPTION_KEY. Add \
         that key back after the current one (CUSP_ENCRYPTION_KEY=new,old), run `cusp rotate-key`, \
         then remove it"
    )]
    UnknownKey { key_id: String },
    #[error("a stored token is not in a format this version of cusp reads")]
    Malformed,
    #[error(
        "a stored token failed authentication: it was altered, or copied from another row or column"
    )]
    Tampered,
    #[error("encryption failed")]
    Encrypt,
}

/// Which row and column a ciphertext belongs to; part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// `""` when the installation is not part of an Enterprise Grid org.
    pub enterprise_id: &'a str,
    /// `""` for an org-wide (enterprise) install.
    pub team_id: &'a str,
    pub column: &'a str,
}

struct Key {
    id: [u8; KEY_ID_LEN],
    secret: SecretBox<[u8; KEY_LEN]>,
}

impl Key {
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.secret.expose_secret().into())
    }

    fn id_hex(&self) -> String {
        hex::encode(self.id)
    }
}

/// The keys of `CUSP_ENCRYPTION_KEY`: the first seals, every one opens.
pub struct Keyring {
    keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    // Key ids only: they identify a key without revealing anything usable about it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(Key::id_hex).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

fn key_id(key: &[u8; KEY_LEN]) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::new()
        .chain_update(b"cusp key id v1\0")
        .chain_update(key)
        .finalize();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

fn associated_data(key_id: &str, binding: &Binding<'_>) -> Vec<u8> {
    // NUL separators: Slack ids and our column names never contain one, so two
    // different bindings cannot produce the same bytes.
    [
        "cusp sealed",
        VERSION,
        key_id,
        binding.enterprise_id,
        binding.team_id,
        binding.column,
    ]
    .join("\0")
    .into_bytes()
}

impl Keyring {
    /// Parses `CUSP_ENCRYPTION_KEY`: comma-separated base64 keys of 32 bytes each.
    pub fn parse(value: &str) -> Result<Keyring, KeyError> {
        let mut keys: Vec<Key> = Vec::new();
        for (index, part) in value
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let position = index + 1;
            let bytes = STANDARD
                .decode(part)
                .or_else(|_| URL_SAFE.decode(part))
                .map_err(|_| KeyError::NotBase64 { position })?;
            let bytes = secrecy::SecretSlice::from(bytes);
            let raw: [u8; KEY_LEN] =
                bytes
                    .expose_secret()
                    .try_into()
                    .map_err(|_| KeyError::WrongLength {
                        position,
                        len: bytes.expose_secret().len(),
                    })?;
            let secret = SecretBox::new(Box::new(raw));
            let id = key_id(secret.expose_secret());
            if let Some(first) = keys.iter().position(|k| k.id == id) {
                return Err(KeyError::Duplicate {
                    position,
                    first: first + 1,
                });
            }
            keys.push(Key { id, secret });
        }
        if keys.is_empty() {
            return Err(KeyError::Missing);
        }
        Ok(Keyring { keys })
    }

    /// [`Keyring::parse`] of an optional value (unset and blank are both "missing").
    pub fn from_env_value(value: Option<&str>) -> Result<Keyring, KeyError> {
        Keyring::parse(value.unwrap_or(""))
    }

    fn primary(&self) -> &Key {
        // `parse` refuses an empty list, so there is always a first key.
        &self.keys[0]
    }

    /// The id of the key that seals (e.g. for `cusp rotate-key`'s report).
    pub fn primary_key_id(&self) -> String {
        self.primary().id_hex()
    }

    /// Encrypts `plaintext` for the row and column `binding` names, with a fresh random
    /// nonce (24 bytes: random nonces never realistically repeat).
    pub fn seal(&self, plaintext: &str, binding: &Binding<'_>) -> Result<String, SealError> {
        let key = self.primary();
        let id = key.id_hex();
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let aad = associated_data(&id, binding);
        let ciphertext = key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        let mut body = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        body.extend_from_slice(&nonce_bytes);
        body.extend_from_slice(&ciphertext);
        Ok(format!("{VERSION}.{id}.{}", STANDARD.encode(body)))
    }

    /// Decrypts a value [`Keyring::seal`] produced for the same `binding`.
    pub fn open(&self, sealed: &str, binding: &Binding<'_>) -> Result<SecretString, SealError> {
        let (key_id, body) = parse_sealed(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id_hex() == key_id)
            .ok_or_else(|| SealError::UnknownKey {
                key_id: key_id.to_owned(),
            })?;
        let body = STANDARD.decode(body).map_err(|_| SealError::Malformed)?;
        if body.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let aad = associated_data(key_id, binding);
        let plaintext = key
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Tampered)?;
        String::from_utf8(plaintext)
            .map(SecretString::from)
            .map_err(|_| SealError::Malformed)
    }

    /// Whether `sealed` was sealed under the current first key (rotation skips those).
    pub fn is_current(&self, sealed: &str) -> bool {
        parse_sealed(sealed).is_ok_and(|(id, _)| id == self.primary().id_hex())
    }
}

/// Splits `v1.<key id>.<body>` into the key id and the body.
fn parse_sealed(sealed: &str) -> Result<(&str, &str), SealError> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(VERSION), Some(id), Some(body)) if id.len() == KEY_ID_LEN * 2 => Ok((id, body)),
        _ => Err(SealError::Malformed),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const KEY_A: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
    const KEY_B: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    /// The error of opening `sealed`, which must fail.
    fn open_err(ring: &Keyring, sealed: &str, binding: &Binding<'_>) -> SealError {
        match ring.open(sealed, binding) {
            Ok(_) => panic!("{sealed} opened"),
            Err(err) => err,
        }
    }

    fn bot(team: &str) -> Binding<'_> {
        Binding {
            enterprise_id: "",
            team_id: team,
            column: "bot_token",
        }
    }

    #[test]
    fn a_sealed_token_opens_to_itself_and_does_not_contain_it() {
        let ring = Keyring::parse(KEY_A).unwrap();
        let sealed = ring.seal("xoxb-123-secret", &bot("T1")).unwrap();
        assert!(!sealed.contains("xoxb"), "{sealed}");
        assert!(sealed.starts_with(&format!("v1.{}.", ring.primary_key_id())));
        let opened = ring.open(&sealed, &bot("T1")).unwrap();
        assert_eq!(opened.expose_secret(), "xoxb-123-secret");
        let again = ring.seal("xoxb-123-secret", &bot("T1")).unwrap();
        assert_ne!(sealed, again, "every seal draws a fresh nonce");
    }

    #[test]
    fn a_ciphertext_copied_to_another_row_or_column_fails() {
        let ring = Keyring::parse(KEY_A).unwrap();
        let sealed = ring.seal("xoxb-1", &bot("T1")).unwrap();
        assert_eq!(open_err(&ring, &sealed, &bot("T2")), SealError::Tampered);
        let other_column = Binding {
            column: "refresh_token",
            ..bot("T1")
        };
        assert_eq!(open_err(&ring, &sealed, &other_column), SealError::Tampered);
        let other_org = Binding {
            enterprise_id: "E1",
            ..bot("T1")
        };
        assert_eq!(open_err(&ring, &sealed, &other_org), SealError::Tampered);
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let ring = Keyring::parse(KEY_A).unwrap();
        let sealed = ring.seal("xoxb-1", &bot("T1")).unwrap();
        let (head, body) = sealed.rsplit_once('.').unwrap();
        let bytes = STANDARD.decode(body).unwrap();
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            let forged = format!("{head}.{}", STANDARD.encode(&tampered));
            assert_eq!(
                open_err(&ring, &forged, &bot("T1")),
                SealError::Tampered,
                "byte {i}"
            );
        }
        let truncated = format!("{head}.{}", STANDARD.encode(&bytes[..10]));
        assert_eq!(
            open_err(&ring, &truncated, &bot("T1")),
            SealError::Malformed
        );
        assert_eq!(
            open_err(&ring, "xoxb-plain", &bot("T1")),
            SealError::Malformed
        );
        assert_eq!(
            open_err(&ring, &sealed.replacen("v1.", "v9.", 1), &bot("T1")),
            SealError::Malformed
        );
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_any() {
        let old = Keyring::parse(KEY_A).unwrap();
        let sealed_old = old.seal("xoxb-old", &bot("T1")).unwrap();
        let rotated = Keyring::parse(&format!("{KEY_B}, {KEY_A}")).unwrap();
        assert!(!rotated.is_current(&sealed_old));
        assert_eq!(
            rotated
                .open(&sealed_old, &bot("T1"))
                .unwrap()
                .expose_secret(),
            "xoxb-old"
        );
        let sealed_new = rotated.seal("xoxb-new", &bot("T1")).unwrap();
        assert!(rotated.is_current(&sealed_new));
        let new_only = Keyring::parse(KEY_B).unwrap();
        assert_eq!(
            new_only
                .open(&sealed_new, &bot("T1"))
                .unwrap()
                .expose_secret(),
            "xoxb-new"
        );
        let err = open_err(&new_only, &sealed_old, &bot("T1"));
        assert_eq!(
            err,
            SealError::UnknownKey {
                key_id: old.primary_key_id()
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("CUSP_ENCRYPTION_KEY") && message.contains("rotate-key"),
            "{message}"
        );
    }

    #[test]
    fn bad_keys_are_refused_with_the_fix() {
        assert_eq!(
            Keyring::from_env_value(None).unwrap_err(),
            KeyError::Missing
        );
        assert_eq!(Keyring::parse(" , ").unwrap_err(), KeyError::Missing);
        assert_eq!(
            Keyring::parse(&format!("{KEY_A},not base64!")).unwrap_err(),
            KeyError::NotBase64 { position: 2 }
        );
        assert_eq!(
            Keyring::parse("c2hvcnQ=").unwrap_err(),
            KeyError::WrongLength {
                position: 1,
                len: 5
            }
        );
        assert_eq!(
            Keyring::parse(&format!("{KEY_A},{KEY_B},{KEY_A}")).unwrap_err(),
            KeyError::Duplicate {
                position: 3,
                first: 1
            }
        );
        for err in [
            KeyError::Missing,
            KeyError::NotBase64 { position: 1 },
            KeyError::WrongLength {
                position: 1,
                len: 5,
            },
        ] {
            let message = err.to_string();
            assert!(
                message.contains("CUSP_ENCRYPTION_KEY")
                    && message.contains("openssl rand -base64 32"),
                "{message}"
            );
        }
    }

    #[test]
    fn debug_output_shows_key_ids_but_no_key_material() {
        let ring = Keyring::parse(&format!("{KEY_A},{KEY_B}")).unwrap();
        let shown = format!("{ring:?}");
        assert!(shown.contains(&ring.primary_key_id()), "{shown}");
        for key in [KEY_A, KEY_B] {
            let raw = STANDARD.decode(key).unwrap();
            assert!(!shown.contains(key) && !shown.contains(&hex::encode(&raw)));
            assert!(!shown.contains(&format!("{:?}", &raw[..4])), "{shown}");
        }
    }
}
