//! Chromium's cookie encryption on Linux and macOS ("OSCrypt"): AES-128-CBC with a
//! PBKDF2-HMAC-SHA1 key, an IV of 16 spaces and PKCS#7 padding.
//!
//! Values start with a version tag: on Linux `v10` uses the fixed password "peanuts"
//! and `v11` the password Chromium keeps in the Secret Service (or "" when it had none);
//! on macOS `v10` uses the "`<Browser> Safe Storage`" Keychain password, with 1003 PBKDF2
//! iterations instead of 1. Since cookie database version 24 the plaintext starts with
//! the SHA-256 of the cookie's host, which binds the value to its domain.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use secrecy::zeroize::Zeroizing;
use sha2::{Digest, Sha256};

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

const SALT: &[u8] = b"saltysalt";
const IV: [u8; 16] = [b' '; 16];
/// The fixed Linux password used when no keyring was available (`v10`).
pub(crate) const LINUX_V10_PASSWORD: &str = "peanuts";
/// PBKDF2 iterations on Linux.
pub(crate) const LINUX_ITERATIONS: u32 = 1;
/// PBKDF2 iterations on macOS.
pub(crate) const MAC_ITERATIONS: u32 = 1003;
/// The first `meta.version` whose plaintexts carry the SHA-256 of the host.
pub(crate) const HOST_HASH_VERSION: i64 = 24;

/// An AES-128 key derived from a browser password.
pub(crate) struct Key(Zeroizing<[u8; 16]>);

impl Key {
    /// Derives the key Chromium derives from `password`.
    pub fn derive(password: &[u8], iterations: u32) -> Key {
        let mut key = Zeroizing::new([0u8; 16]);
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, SALT, iterations, &mut *key);
        Key(key)
    }
}

/// Splits a stored `encrypted_value` into its version tag (`v10`, `v11`) and ciphertext.
pub(crate) fn split_version(encrypted: &[u8]) -> Option<(&str, &[u8])> {
    let tag = encrypted.get(..3)?;
    let tag = std::str::from_utf8(tag).ok()?;
    (tag.starts_with('v') && tag[1..].bytes().all(|b| b.is_ascii_digit()))
        .then(|| (tag, &encrypted[3..]))
}

/// Decrypts `ciphertext` (without its version tag) and strips the host hash.
///
/// `None` when the key is wrong: bad padding, a missing host hash where the database
/// version requires one, or a plaintext that is not UTF-8 (cookie values are text).
pub(crate) fn decrypt(
    key: &Key,
    ciphertext: &[u8],
    host_key: &str,
    meta_version: Option<i64>,
) -> Option<Zeroizing<Vec<u8>>> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return None;
    }
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let plain_len = Aes128CbcDec::new((&*key.0).into(), (&IV).into())
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .ok()?
        .len();
    buf.truncate(plain_len);

    let hash = Sha256::digest(host_key.as_bytes());
    let has_hash = buf.len() >= hash.len() && buf[..hash.len()] == hash[..];
    if has_hash {
        buf.drain(..hash.len());
    } else if meta_version.is_some_and(|v| v >= HOST_HASH_VERSION) {
        return None;
    }
    std::str::from_utf8(&buf).ok()?;
    Some(buf)
}

#[cfg(test)]
pub(crate) mod testing {
    //! The inverse, for building test stores.
    use super::*;
    use aes::cipher::BlockEncryptMut;

    type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

    /// Encrypts `value` as Chromium would, with `tag` (`v10`/`v11`) and optional host hash.
    pub fn encrypt(key: &Key, tag: &str, value: &str, host_hash_of: Option<&str>) -> Vec<u8> {
        let mut plain = Vec::new();
        if let Some(host) = host_hash_of {
            plain.extend_from_slice(&Sha256::digest(host.as_bytes()));
        }
        plain.extend_from_slice(value.as_bytes());
        let len = plain.len();
        plain.resize(len + 16, 0);
        let ct = Aes128CbcEnc::new((&*key.0).into(), (&IV).into())
            .encrypt_padded_mut::<Pkcs7>(&mut plain, len)
            .unwrap()
            .to_vec();
        let mut out = tag.as_bytes().to_vec();
        out.extend_from_slice(&ct);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::encrypt;
    use super::*;

    #[test]
    fn known_linux_v10_key() {
        // The well-known Linux key: PBKDF2-HMAC-SHA1("peanuts", "saltysalt", 1, 16).
        let key = Key::derive(LINUX_V10_PASSWORD.as_bytes(), LINUX_ITERATIONS);
        assert_eq!(
            *key.0,
            [
                0xfd, 0x62, 0x1f, 0xe5, 0xa2, 0xb4, 0x02, 0x53, 0x9d, 0xfa, 0x14, 0x7c, 0xa9, 0x27,
                0x27, 0x78
            ]
        );
    }

    #[test]
    fn round_trip_with_and_without_host_hash() {
        let key = Key::derive(b"peanuts", 1);
        let ct = encrypt(&key, "v10", "hello", None);
        let (tag, body) = split_version(&ct).unwrap();
        assert_eq!(tag, "v10");
        assert_eq!(
            &**decrypt(&key, body, ".chatgpt.com", Some(23)).unwrap(),
            b"hello"
        );

        let ct = encrypt(&key, "v10", "hello", Some(".chatgpt.com"));
        let (_, body) = split_version(&ct).unwrap();
        for version in [Some(24), Some(23), None] {
            assert_eq!(
                &**decrypt(&key, body, ".chatgpt.com", version).unwrap(),
                b"hello"
            );
        }
        // Version 24 without the hash: treated as a failed decryption.
        let ct = encrypt(&key, "v10", "hello", None);
        assert!(decrypt(&key, &ct[3..], ".chatgpt.com", Some(24)).is_none());
    }

    #[test]
    fn wrong_key_fails() {
        let ct = encrypt(
            &Key::derive(b"right", 1),
            "v11",
            "a-longer-cookie-value",
            None,
        );
        assert!(decrypt(&Key::derive(b"wrong", 1), &ct[3..], "chatgpt.com", None).is_none());
        assert!(decrypt(&Key::derive(b"x", 1), b"short", "chatgpt.com", None).is_none());
        assert!(split_version(b"ab").is_none());
        assert!(split_version(b"xyz123").is_none());
    }
}
