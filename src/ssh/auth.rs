//! User authentication: passwords (plaintext for development, crypt(3)
//! `$6$`/`$5$`/`$1$` hashes, argon2 PHC strings) and public keys.

use std::collections::HashMap;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use russh::keys::PublicKey;

use crate::config::UserConfig;

/// One user as the SSH server needs it.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    password: Option<Password>,
    keys: Vec<PublicKey>,
    pub groups: Vec<String>,
}

#[derive(Clone)]
enum Password {
    Plain(String),
    Hash(String),
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.write_str(match self {
            Password::Plain(_) => "Plain(..)",
            Password::Hash(_) => "Hash(..)",
        })
    }
}

/// Whether `hash` is a format we verify.
pub fn hash_supported(hash: &str) -> bool {
    ["$6$", "$5$", "$1$"].iter().any(|p| hash.starts_with(p))
        || PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

/// The configured users, by name.
#[derive(Debug, Clone, Default)]
pub struct Users {
    by_name: HashMap<String, User>,
}

impl Users {
    /// From the configuration (already checked by `Config::parse`; entries
    /// that still fail to parse are skipped with a log line).
    pub fn from_config(users: &[UserConfig]) -> Users {
        let mut by_name = HashMap::new();
        for u in users {
            let password = match (&u.password, &u.password_hash) {
                (Some(p), _) => Some(Password::Plain(p.clone())),
                (None, Some(h)) => Some(Password::Hash(h.clone())),
                (None, None) => None,
            };
            let keys = u
                .authorized_keys
                .iter()
                .filter_map(|k| match PublicKey::from_openssh(k.trim()) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        tracing::warn!(user = %u.name, error = %e, "ignoring unparsable authorized key");
                        None
                    }
                })
                .collect();
            by_name.insert(
                u.name.clone(),
                User {
                    name: u.name.clone(),
                    password,
                    keys,
                    groups: u.groups.clone(),
                },
            );
        }
        Users { by_name }
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.by_name.get(name)
    }

    /// Checks a password. Unknown users and users without a password fail.
    pub fn check_password(&self, name: &str, password: &str) -> bool {
        let Some(user) = self.by_name.get(name) else {
            return false;
        };
        match &user.password {
            None => false,
            Some(Password::Plain(p)) => constant_time_eq(p.as_bytes(), password.as_bytes()),
            Some(Password::Hash(h)) if h.starts_with('$') && !h.starts_with("$argon2") => {
                pwhash::unix::verify(password, h)
            }
            Some(Password::Hash(h)) => match PasswordHash::new(h) {
                Ok(parsed) => argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => false,
            },
        }
    }

    /// Whether `key` is one of the user's authorized keys.
    pub fn check_key(&self, name: &str, key: &PublicKey) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|u| u.keys.iter().any(|k| k.key_data() == key.key_data()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(password: Option<&str>, hash: Option<&str>) -> Users {
        Users::from_config(&[UserConfig {
            name: "u".into(),
            password: password.map(Into::into),
            password_hash: hash.map(Into::into),
            authorized_keys: vec![],
            groups: vec![],
        }])
    }

    #[test]
    #[allow(deprecated)] // $5$ and $1$ hashes are made only to test verifying them
    fn plain_and_crypt_and_argon2() {
        assert!(user(Some("pw"), None).check_password("u", "pw"));
        assert!(!user(Some("pw"), None).check_password("u", "pW"));
        assert!(!user(Some("pw"), None).check_password("x", "pw"));
        let h6 = pwhash::sha512_crypt::hash("secret").unwrap();
        assert!(hash_supported(&h6));
        assert!(user(None, Some(&h6)).check_password("u", "secret"));
        assert!(!user(None, Some(&h6)).check_password("u", "wrong"));
        let h5 = pwhash::sha256_crypt::hash("secret").unwrap();
        assert!(user(None, Some(&h5)).check_password("u", "secret"));
        let h1 = pwhash::md5_crypt::hash("secret").unwrap();
        assert!(user(None, Some(&h1)).check_password("u", "secret"));
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let ha = argon2::Argon2::default()
            .hash_password(b"secret", &salt)
            .unwrap()
            .to_string();
        assert!(hash_supported(&ha));
        assert!(user(None, Some(&ha)).check_password("u", "secret"));
        assert!(!user(None, Some(&ha)).check_password("u", "nope"));
        assert!(!hash_supported("secret"));
    }
}
