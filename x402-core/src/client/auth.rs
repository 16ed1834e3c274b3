//! Authentication sent with every facilitator request: an [`AuthHeaders`] provider is asked for
//! headers once per request (so a signed, short-lived token can cover exactly that request).
//!
//! * [`BearerToken`]: a static `Authorization: Bearer <token>`, the API key our facilitator
//!   expects (`[[auth.keys]]` in its configuration);
//! * `CdpJwt` (feature `cdp`): the per-request JWT the Coinbase-hosted facilitator expects,
//!   signed with the operator's CDP API key.

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, Url};

/// A provider of authentication could not produce its headers. The message never holds the
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("facilitator authentication: {0}")]
pub struct AuthError(pub String);

/// Headers that authenticate one request to a facilitator.
#[async_trait]
pub trait AuthHeaders: Send + Sync + fmt::Debug {
    /// The headers to send with a `method` request to `url` (the facilitator's base URL joined
    /// with `/verify`, `/settle` or `/supported`).
    async fn headers(&self, method: &Method, url: &Url) -> Result<HeaderMap, AuthError>;
}

/// A static bearer token: `Authorization: Bearer <token>`. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct BearerToken {
    value: HeaderValue,
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

/// The environment variable the seller and tools read a facilitator API key from by convention.
pub const FACILITATOR_KEY_VAR: &str = "X402_FACILITATOR_KEY";

impl BearerToken {
    /// A token (visible ASCII, no spaces).
    pub fn new(token: impl AsRef<str>) -> Result<Self, AuthError> {
        let token = token.as_ref();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AuthError(
                "a bearer token is visible ASCII without spaces".to_owned(),
            ));
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| AuthError("the bearer token is not a valid header value".to_owned()))?;
        value.set_sensitive(true);
        Ok(Self { value })
    }

    /// The token held by the environment variable `var` (e.g. [`FACILITATOR_KEY_VAR`]); an
    /// error names the variable, never its value.
    pub fn from_env(var: &str) -> Result<Self, AuthError> {
        let token = std::env::var(var).map_err(|_| AuthError(format!("${var} is not set")))?;
        Self::new(token.trim()).map_err(|e| AuthError(format!("${var}: {}", e.0)))
    }
}

#[async_trait]
impl AuthHeaders for BearerToken {
    async fn headers(&self, _: &Method, _: &Url) -> Result<HeaderMap, AuthError> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, self.value.clone());
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bearer_token_is_sent_and_never_shown() {
        let token = BearerToken::new("s3cr3t-0123456789").unwrap();
        let url = Url::parse("http://127.0.0.1:1/verify").unwrap();
        let headers = token.headers(&Method::POST, &url).await.unwrap();
        assert_eq!(headers[AUTHORIZATION], "Bearer s3cr3t-0123456789");
        assert!(headers[AUTHORIZATION].is_sensitive());
        for shown in [format!("{token:?}"), format!("{headers:?}")] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        for bad in ["", "a b", "tab\tx", "é"] {
            assert!(BearerToken::new(bad).is_err(), "{bad:?}");
        }
        let e = BearerToken::from_env("X402_SURELY_UNSET_VAR_FOR_TEST").unwrap_err();
        assert_eq!(
            e.to_string(),
            "facilitator authentication: $X402_SURELY_UNSET_VAR_FOR_TEST is not set"
        );
    }
}
