//! An HTTP client for a remote facilitator (`POST /verify`, `POST /settle`, `GET /supported`).
//!
//! Every call has a timeout. A response that carries a verdict is read whatever its HTTP status
//! (some facilitators answer a refused payment with 400 or 500 and the reason in the body).
//!
//! A facilitator that requires authentication gets it from an [`AuthHeaders`] provider asked
//! once per request ([`FacilitatorClient::with_auth`]): [`BearerToken`] for an API key (our
//! facilitator's `[[auth.keys]]`), `cdp::CdpJwt` (feature `cdp`) for the Coinbase-hosted one.

mod auth;
#[cfg(feature = "cdp")]
pub mod cdp;

pub use auth::{AuthError, AuthHeaders, BearerToken, FACILITATOR_KEY_VAR};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::facilitator::{Facilitator, FacilitatorError};
use crate::json::{self, JsonLimits};
use crate::timing::SettleTimeouts;
use crate::wire::{
    DiscoveryResponse, SettleRequest, SettleResponse, SupportedResponse, VerifyRequest,
    VerifyResponse,
};

/// The default per-call timeout: the client timeout derived from the default settle bounds, so
/// a facilitator with default settings always answers first (see [`crate::timing`]).
pub const DEFAULT_TIMEOUT: Duration =
    SettleTimeouts::new(SettleTimeouts::DEFAULT_ANSWER_WITHIN).client_timeout();
/// The largest response body read from a facilitator.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A remote facilitator. Its `Debug` shows the facilitator's origin only (a path, query or user
/// part of the URL may carry an API token) and the authentication provider's own `Debug`, which
/// never shows a secret.
#[derive(Clone)]
pub struct FacilitatorClient {
    base: String,
    http: reqwest::Client,
    timeout: Duration,
    auth: Option<Arc<dyn AuthHeaders>>,
}

impl std::fmt::Debug for FacilitatorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacilitatorClient")
            .field("origin", &origin(&self.base))
            .field("timeout", &self.timeout)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// `scheme://host[:port]` of `url`, without user, path, query or fragment.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}")
}

impl FacilitatorClient {
    /// A client for the facilitator at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base: base_url.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            timeout: DEFAULT_TIMEOUT,
            auth: None,
        }
    }

    /// Authenticates every request with the headers `auth` gives for it.
    pub fn with_auth(mut self, auth: impl AuthHeaders + 'static) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// Authenticates every request with a shared provider.
    pub fn with_shared_auth(mut self, auth: Arc<dyn AuthHeaders>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sends requests with `http` (proxies, TLS roots, connection pools of the caller's
    /// choosing). The per-call timeout still applies.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Waits as long as a facilitator whose settles answer within `timeouts` needs (its
    /// [`SettleTimeouts::client_timeout`]).
    pub fn with_settle_timeouts(self, timeouts: SettleTimeouts) -> Self {
        self.with_timeout(timeouts.client_timeout())
    }

    /// Sets the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn transport(e: reqwest::Error) -> FacilitatorError {
        // Never echo the client's text: it names the URL, which may carry an API token.
        let failure = crate::reqwest_failure!(&e);
        FacilitatorError::Transport(failure.to_string())
    }

    /// A `method` request to the facilitator's `path`, with its authentication headers.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, FacilitatorError> {
        let url = reqwest::Url::parse(&format!("{}{path}", self.base))
            // Never echo the URL: it may carry an API token.
            .map_err(|e| FacilitatorError::Transport(format!("invalid facilitator URL: {e}")))?;
        let headers = match &self.auth {
            Some(auth) => auth
                .headers(&method, &url)
                .await
                .map_err(|e| FacilitatorError::Transport(e.to_string()))?,
            None => reqwest::header::HeaderMap::new(),
        };
        Ok(self
            .http
            .request(method, url)
            .headers(headers)
            .timeout(self.timeout))
    }

    /// Sends a request and reads a body of type `T` from any status whose body parses as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        accepts: fn(&serde_json::Value) -> bool,
    ) -> Result<T, FacilitatorError> {
        let response = request.send().await.map_err(Self::transport)?;
        let status = response.status().as_u16();
        let body = read_limited(response).await?;
        let limits = JsonLimits {
            max_bytes: MAX_RESPONSE_BYTES,
            ..JsonLimits::DEFAULT
        };
        let snippet = || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        let value: serde_json::Value =
            json::from_slice(&body, limits).map_err(|_| FacilitatorError::Http {
                status,
                body: snippet(),
            })?;
        if !accepts(&value) {
            return Err(FacilitatorError::Http {
                status,
                body: snippet(),
            });
        }
        serde_json::from_value(value).map_err(|e| FacilitatorError::Http {
            status,
            body: format!("{e}: {}", snippet()),
        })
    }
}

/// Filters and paging of [`FacilitatorClient::list_resources`] (`GET /discovery/resources`);
/// `None` leaves a parameter out (the facilitator's default: 20 items from the first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListResources {
    /// Only this resource type (`http`, `mcp`).
    pub kind: Option<String>,
    /// Only resources paid on this network (CAIP-2).
    pub network: Option<String>,
    /// Only resources paid with this scheme.
    pub scheme: Option<String>,
    /// Only resources paying this recipient.
    pub pay_to: Option<String>,
    /// Page size (1 to 100).
    pub limit: Option<u32>,
    /// Items skipped.
    pub offset: Option<u32>,
}

impl ListResources {
    /// The query string (`?type=http&limit=5`), empty when nothing is set.
    pub fn query_string(&self) -> String {
        let numbers = [("limit", self.limit), ("offset", self.offset)];
        let pairs = [
            ("type", self.kind.clone()),
            ("network", self.network.clone()),
            ("scheme", self.scheme.clone()),
            ("payTo", self.pay_to.clone()),
        ]
        .into_iter()
        .chain(numbers.map(|(k, v)| (k, v.map(|n| n.to_string()))))
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", percent_encode(&v))))
        .collect::<Vec<_>>();
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl FacilitatorClient {
    /// Lists the facilitator's discovery catalogue (the bazaar's `GET /discovery/resources`):
    /// what sellers it settled for offer, a page at a time.
    pub async fn list_resources(
        &self,
        params: &ListResources,
    ) -> Result<DiscoveryResponse, FacilitatorError> {
        let path = format!("/discovery/resources{}", params.query_string());
        let req = self.request(reqwest::Method::GET, &path).await?;
        self.call(req, |v| {
            v.get("items").is_some_and(serde_json::Value::is_array)
        })
        .await
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, FacilitatorError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(FacilitatorClient::transport)?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(FacilitatorError::Transport(format!(
                "response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[async_trait]
impl Facilitator for FacilitatorClient {
    async fn verify(&self, request: &VerifyRequest) -> Result<VerifyResponse, FacilitatorError> {
        let req = self
            .request(reqwest::Method::POST, "/verify")
            .await?
            .json(request);
        self.call(req, |v| {
            v.get("isValid").is_some_and(serde_json::Value::is_boolean)
        })
        .await
    }

    async fn settle(&self, request: &SettleRequest) -> Result<SettleResponse, FacilitatorError> {
        let req = self
            .request(reqwest::Method::POST, "/settle")
            .await?
            .json(request);
        self.call(req, |v| {
            v.get("success").is_some_and(serde_json::Value::is_boolean)
        })
        .await
    }

    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        // Retries a rate-limited answer three times, backing off 1 s, 2 s, 4 s.
        let mut delay = Duration::from_secs(1);
        for attempt in 0..=3 {
            let response = self
                .request(reqwest::Method::GET, "/supported")
                .await?
                .send()
                .await
                .map_err(Self::transport)?;
            if response.status().as_u16() == 429 && attempt < 3 {
                tokio::time::sleep(delay).await;
                delay *= 2;
                continue;
            }
            let status = response.status().as_u16();
            let body = read_limited(response).await?;
            return serde_json::from_slice(&body).map_err(|_| FacilitatorError::Http {
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
        Err(FacilitatorError::Transport("rate limited".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_timeout_outlasts_a_default_facilitator() {
        assert_eq!(DEFAULT_TIMEOUT, SettleTimeouts::default().client_timeout());
    }

    #[test]
    fn list_parameters_are_encoded() {
        assert_eq!(ListResources::default().query_string(), "");
        let all = ListResources {
            kind: Some("http".into()),
            network: Some("eip155:8453".into()),
            pay_to: Some("0xA&b=c".into()),
            limit: Some(5),
            offset: Some(10),
            ..ListResources::default()
        };
        assert_eq!(
            all.query_string(),
            "?type=http&network=eip155%3A8453&payTo=0xA%26b%3Dc&limit=5&offset=10"
        );
    }

    #[test]
    fn debug_shows_the_origin_only() {
        let client = FacilitatorClient::new("https://user:pw@f.example:8443/v1/abc-token?key=k#x");
        let shown = format!("{client:?}");
        assert!(shown.contains("\"https://f.example:8443\""), "{shown}");
        for secret in ["pw", "abc-token", "key=k", "user"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
