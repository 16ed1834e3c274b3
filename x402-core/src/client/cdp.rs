//! The Coinbase-hosted facilitator's authentication (feature `cdp`): every request carries a
//! short-lived JWT signed with the operator's CDP secret API key, as the CDP SDKs build it.
//!
//! * header: `alg` (`ES256` for an EC key, `EdDSA` for an Ed25519 key), `kid` the key's name,
//!   `typ` `JWT`, and `nonce`, 16 random bytes in hex;
//! * claims: `sub` the key's name, `iss` `cdp`, `aud` `["cdp_service"]`, `uris`
//!   `["METHOD host/path"]` of the one request, `iat` = `nbf` = now, `exp` = now + 120 s.
//!
//! The key is the secret the CDP portal shows: an EC key in PEM (`-----BEGIN EC PRIVATE
//! KEY-----`, or PKCS #8) or an Ed25519 key as base64 of 64 bytes (seed, then public key).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, Url};

use super::auth::{AuthError, AuthHeaders};

/// The Coinbase-hosted facilitator's base URL.
pub const CDP_FACILITATOR_URL: &str = "https://api.cdp.coinbase.com/platform/v2/x402";
/// How long a token is valid by default.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(120);

enum Key {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Es256(k) => {
                let signature: p256::ecdsa::Signature =
                    p256::ecdsa::signature::Signer::sign(k, message);
                signature.to_bytes().to_vec()
            }
            Self::EdDsa(k) => ed25519_dalek::Signer::sign(k, message).to_bytes().to_vec(),
        }
    }
}

/// Signs a JWT for each request with a CDP secret API key. Its `Debug` shows the key's name
/// and algorithm, never the key.
pub struct CdpJwt {
    name: String,
    key: Key,
    lifetime: Duration,
}

impl fmt::Debug for CdpJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CdpJwt")
            .field("name", &self.name)
            .field("alg", &self.key.alg())
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl CdpJwt {
    /// The key named `name` (its id, or `organizations/…/apiKeys/…`) with secret `secret`.
    pub fn new(name: impl Into<String>, secret: &str) -> Result<Self, AuthError> {
        let name = name.into();
        if name.is_empty() {
            return Err(AuthError("the CDP API key name is empty".to_owned()));
        }
        let secret = secret.trim();
        let key = if secret.starts_with("-----BEGIN") {
            use p256::pkcs8::DecodePrivateKey as _;
            let key = p256::SecretKey::from_sec1_pem(secret)
                .or_else(|_| p256::SecretKey::from_pkcs8_pem(secret))
                .map_err(|_| {
                    AuthError("the CDP API key is not a P-256 EC key in PEM".to_owned())
                })?;
            Key::Es256(key.into())
        } else {
            let bytes = STANDARD
                .decode(secret)
                .ok()
                .filter(|b| b.len() == 64)
                .ok_or_else(|| {
                    AuthError(
                        "the CDP API key is neither an EC key in PEM nor 64 bytes of base64 \
                         (Ed25519)"
                            .to_owned(),
                    )
                })?;
            let mut seed = [0u8; 32];
            seed.copy_from_slice(&bytes[..32]);
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            if key.verifying_key().as_bytes()[..] != bytes[32..] {
                return Err(AuthError(
                    "the CDP Ed25519 key's public half does not match its seed".to_owned(),
                ));
            }
            Key::EdDsa(key)
        };
        Ok(Self {
            name,
            key,
            lifetime: DEFAULT_LIFETIME,
        })
    }

    /// The key named by the environment variable `name_var` with the secret in `secret_var`
    /// (the CDP SDKs' `CDP_API_KEY_ID` and `CDP_API_KEY_SECRET`); errors name the variables,
    /// never their values.
    pub fn from_env(name_var: &str, secret_var: &str) -> Result<Self, AuthError> {
        let get =
            |var: &str| std::env::var(var).map_err(|_| AuthError(format!("${var} is not set")));
        let secret = get(secret_var)?.replace("\\n", "\n");
        Self::new(get(name_var)?, &secret).map_err(|e| AuthError(format!("${secret_var}: {}", e.0)))
    }

    /// Tokens valid for `lifetime` instead of [`DEFAULT_LIFETIME`].
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The token for a `method` request to `url`, issued at `now` (seconds since the epoch).
    pub fn token(&self, method: &Method, url: &Url, now: u64) -> Result<String, AuthError> {
        let host = url
            .host_str()
            .ok_or_else(|| AuthError("the facilitator URL has no host".to_owned()))?;
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let nonce: [u8; 16] = rand::random();
        let header = serde_json::json!({
            "alg": self.key.alg(),
            "kid": self.name,
            "typ": "JWT",
            "nonce": nonce.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        let claims = serde_json::json!({
            "sub": self.name,
            "iss": "cdp",
            "aud": ["cdp_service"],
            "uris": [format!("{method} {host}{}", url.path())],
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime.as_secs(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(signing_input.as_bytes());
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[async_trait]
impl AuthHeaders for CdpJwt {
    async fn headers(&self, method: &Method, url: &Url) -> Result<HeaderMap, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| AuthError("the system clock is before 1970".to_owned()))?
            .as_secs();
        let token = self.token(method, url, now)?;
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| AuthError("the token is not a valid header value".to_owned()))?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        Ok(headers)
    }
}

#[cfg(test)]
mod tests;
