//! Sealing values for GitHub (libsodium `crypto_box_seal`, via the pure-Rust `crypto_box`)
//! and rescuing an unstored value to an age recipient.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use crypto_box::aead::OsRng;

use crate::secret::Secret;

/// A repository's (environment's, organization's) public key, as GitHub returns it.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// The id GitHub wants back with every value sealed to this key.
    pub key_id: String,
    key: crypto_box::PublicKey,
}

impl PublicKey {
    /// From GitHub's `{key_id, key}` (base64 of 32 bytes).
    pub fn from_base64(key_id: &str, key_b64: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key_b64.trim())
            .map_err(|_| "the public key is not base64".to_owned())?;
        let key = crypto_box::PublicKey::from_slice(&bytes)
            .map_err(|_| format!("the public key is {} bytes, not a 32-byte X25519 key", bytes.len()))?;
        if key_id.is_empty() {
            return Err("the public key has no key_id".to_owned());
        }
        Ok(PublicKey { key_id: key_id.to_owned(), key })
    }

    /// Seals `value` (an anonymous sealed box) and returns it base64-encoded, as GitHub expects.
    pub fn seal(&self, value: &Secret) -> Result<String, String> {
        let sealed =
            self.key.seal(&mut OsRng, value.expose().as_bytes()).map_err(|_| "sealing the value failed".to_owned())?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
    }
}

/// Encrypts `value` to `recipient` and writes it to `secret-rotator-rescue-<name>.age` in
/// `dir` (mode 0600, owned by the directory's owner: see [`crate::files`]), never overwriting an
/// earlier rescue file. Returns the path.
pub fn rescue(dir: &Path, name: &str, recipient: &age::x25519::Recipient, value: &Secret) -> Result<PathBuf, String> {
    let encryptor = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
        .map_err(|e| format!("age: {e}"))?;
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).map_err(|e| format!("age: {e}"))?;
    writer.write_all(value.expose().as_bytes()).map_err(|e| format!("age: {e}"))?;
    writer.finish().map_err(|e| format!("age: {e}"))?;

    let stamp = jiff::Timestamp::now().as_second();
    let mut n = 0;
    let (path, mut file) = loop {
        let path = match n {
            0 => dir.join(format!("secret-rotator-rescue-{name}.age")),
            _ => dir.join(format!("secret-rotator-rescue-{name}-{stamp}-{n}.age")),
        };
        match crate::files::create_private(&path, crate::files::Create::New) {
            Ok(f) => break (path, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
    };
    file.write_all(&out).and_then(|_| file.sync_all()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn keypair() -> (crypto_box::SecretKey, PublicKey) {
        let sk = crypto_box::SecretKey::generate(&mut OsRng);
        let pk_b64 = base64::engine::general_purpose::STANDARD.encode(sk.public_key().as_bytes());
        (sk, PublicKey::from_base64("kid-1", &pk_b64).unwrap())
    }

    proptest! {
        #[test]
        fn seal_then_open_round_trips(value in "[ -~]{1,2048}") {
            let (sk, pk) = keypair();
            let sealed = pk.seal(&Secret::new(value.clone())).unwrap();
            let bytes = base64::engine::general_purpose::STANDARD.decode(sealed).unwrap();
            // 32-byte ephemeral key + 16-byte tag, as libsodium's crypto_box_seal
            prop_assert_eq!(bytes.len(), value.len() + 48);
            let opened = sk.unseal(&bytes).unwrap();
            prop_assert_eq!(opened, value.into_bytes());
        }
    }

    #[test]
    fn sealing_twice_differs() {
        let (_, pk) = keypair();
        let v = Secret::new("same-value");
        assert_ne!(pk.seal(&v).unwrap(), pk.seal(&v).unwrap());
    }

    #[test]
    fn bad_public_keys_are_refused() {
        assert!(PublicKey::from_base64("k", "not base64!").is_err());
        // GitHub's OpenAPI example key is 33 bytes
        let k33 = base64::engine::general_purpose::STANDARD.encode([1u8; 33]);
        assert!(PublicKey::from_base64("k", &k33).unwrap_err().contains("33 bytes"));
    }

    #[test]
    fn rescue_decrypts_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let rec = age::x25519::Recipient::from_str(&id.to_public().to_string()).unwrap();
        let v = Secret::new("r2-rescued-value");
        let p1 = rescue(dir.path(), "demo", &rec, &v).unwrap();
        let p2 = rescue(dir.path(), "demo", &rec, &v).unwrap();
        assert_ne!(p1, p2);
        let data = std::fs::read(&p1).unwrap();
        let dec = age::decrypt(&id, &data).unwrap();
        assert_eq!(dec, b"r2-rescued-value");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p1).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
