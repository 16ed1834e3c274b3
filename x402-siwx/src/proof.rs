//! The wire: the challenge a seller declares, the proof a buyer sends in `SIGN-IN-WITH-X`, and
//! the message text both sides sign and check — SIWE (EIP-4361) on `eip155:*` chains, SIWS on
//! `solana:*` — exactly as `@x402/extensions` 2.27 writes them.

use serde::{Deserialize, Serialize};
use x402_core::header as codec;

use crate::reason::{self, Refusal};
#[cfg(test)]
use x402_core::Reason;

/// The request header carrying a proof (base64 of its compact JSON).
pub const HEADER: &str = "SIGN-IN-WITH-X";

/// The extension's key in `extensions`.
pub const KEY: &str = "sign-in-with-x";

/// The largest `SIGN-IN-WITH-X` header read, in bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// What a seller's challenge asks to be signed (the declaration's `info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    /// The seller's host (`api.example.com:8443`).
    pub domain: String,
    /// The resource's URL.
    pub uri: String,
    /// `"1"`.
    pub version: String,
    /// Single-use, alphanumeric (32 hex digits from this crate).
    pub nonce: String,
    /// When the challenge was issued (RFC 3339).
    pub issued_at: String,
    /// When a proof for it expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    /// Before when a proof for it is not valid (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// A sentence shown to the signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The seller's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The resources the sign-in is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
}

/// A chain a seller accepts sign-ins on (`supportedChains`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedChain {
    /// CAIP-2 (`eip155:8453`).
    pub chain_id: String,
    /// `eip191` (EVM) or `ed25519` (Solana).
    #[serde(rename = "type")]
    pub kind: String,
    /// `eip191`, `eip1271`, `eip6492` or `siws`, when the seller names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_scheme: Option<String>,
}

impl SupportedChain {
    /// The chain `network` with the signature type its namespace uses.
    pub fn for_network(network: &str) -> Self {
        Self {
            chain_id: network.to_owned(),
            kind: signature_type(network).to_owned(),
            signature_scheme: None,
        }
    }
}

/// The signature type of a CAIP-2 network: `ed25519` on `solana:*`, `eip191` otherwise.
pub fn signature_type(network: &str) -> &'static str {
    if network.starts_with("solana:") {
        "ed25519"
    } else {
        "eip191"
    }
}

/// A signed challenge: what `SIGN-IN-WITH-X` carries. Members are written in the order the
/// official client writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    /// The challenge's domain.
    pub domain: String,
    /// The signer: `0x…` (EVM) or base58 (Solana).
    pub address: String,
    /// The challenge's statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The challenge's URI.
    pub uri: String,
    /// The challenge's version.
    pub version: String,
    /// The chain signed for (CAIP-2).
    pub chain_id: String,
    /// `eip191` or `ed25519`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The challenge's nonce.
    pub nonce: String,
    /// The challenge's `issuedAt`.
    pub issued_at: String,
    /// The challenge's `expirationTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    /// The challenge's `notBefore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// The challenge's `requestId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The challenge's `resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
    /// The supported chain's `signatureScheme`, when it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_scheme: Option<String>,
    /// `0x…` hex (EVM) or base58 (Solana).
    pub signature: String,
}

impl Proof {
    /// An unsigned proof of `challenge` on `chain` by `address` (its signature empty).
    pub fn unsigned(challenge: &Challenge, chain: &SupportedChain, address: &str) -> Self {
        Self {
            domain: challenge.domain.clone(),
            address: address.to_owned(),
            statement: challenge.statement.clone(),
            uri: challenge.uri.clone(),
            version: challenge.version.clone(),
            chain_id: chain.chain_id.clone(),
            kind: chain.kind.clone(),
            nonce: challenge.nonce.clone(),
            issued_at: challenge.issued_at.clone(),
            expiration_time: challenge.expiration_time.clone(),
            not_before: challenge.not_before.clone(),
            request_id: challenge.request_id.clone(),
            resources: challenge.resources.clone(),
            signature_scheme: chain.signature_scheme.clone(),
            signature: String::new(),
        }
    }

    /// The header value: standard base64 of the compact JSON.
    pub fn encode(&self) -> String {
        codec::encode(self).unwrap_or_default()
    }

    /// Reads a header value (standard base64 of a JSON proof).
    pub fn decode(value: &str) -> Result<Self, Refusal> {
        let bytes = codec::decode_json(value, MAX_HEADER_LEN).map_err(|e| {
            Refusal::new(
                reason::MALFORMED,
                format!("{HEADER} is not base64 JSON: {e}"),
            )
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Refusal::new(reason::MALFORMED, format!("{HEADER} is not a proof: {e}")))
    }

    /// The message text signed: SIWE on `eip155:*`, SIWS on `solana:*`, after checking every
    /// field against EIP-4361's grammar (a field that would change the message's lines, or that
    /// the official formatter refuses, is refused here too).
    pub fn message(&self) -> Result<String, Refusal> {
        let malformed = |m: String| Refusal::new(reason::MALFORMED, m);
        let (family, chain) = match self.chain_id.split_once(':') {
            Some(("eip155", id)) => {
                let valid = !id.is_empty()
                    && id.len() <= 20
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && id.parse::<u64>().is_ok();
                if !valid {
                    return Err(Refusal::new(
                        reason::CHAIN_ID,
                        format!("{:?} is not eip155:<number>", self.chain_id),
                    ));
                }
                ("Ethereum", id)
            }
            Some(("solana", reference))
                if !reference.is_empty()
                    && reference.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                ("Solana", reference)
            }
            _ => {
                return Err(Refusal::new(
                    reason::UNSUPPORTED_CHAIN,
                    format!(
                        "{:?}: sign-in is on eip155:* (EVM) or solana:* (Solana)",
                        self.chain_id
                    ),
                ));
            }
        };
        let expected = if family == "Solana" {
            "ed25519"
        } else {
            "eip191"
        };
        if self.kind != expected {
            return Err(malformed(format!(
                "type {:?} does not fit {}: expected {expected}",
                self.kind, self.chain_id
            )));
        }
        if self.domain.is_empty() || !self.domain.bytes().all(authority_char) {
            return Err(malformed(format!("domain {:?} is not a host", self.domain)));
        }
        if family == "Ethereum" {
            let hex = self.address.strip_prefix("0x").unwrap_or("");
            if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(malformed(format!(
                    "address {:?} is not 0x and 40 hex digits",
                    self.address
                )));
            }
        } else if self.address.is_empty()
            || !self.address.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(malformed(format!(
                "address {:?} is not base58",
                self.address
            )));
        }
        if let Some(s) = &self.statement
            && s.contains(['\n', '\r'])
        {
            return Err(malformed("the statement spans lines".to_owned()));
        }
        if !is_uri(&self.uri) {
            return Err(Refusal::new(
                reason::URI_MISMATCH,
                format!("uri {:?} is not an absolute URI", self.uri),
            ));
        }
        if self.version != "1" {
            return Err(malformed(format!(
                "version {:?} is not \"1\"",
                self.version
            )));
        }
        if self.nonce.len() < 8 || !self.nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(malformed(format!(
                "nonce {:?} is not 8 or more letters and digits",
                self.nonce
            )));
        }
        let date = |value: &str, code, name: &str| {
            crate::time::parse(value).map(|_| ()).ok_or_else(|| {
                Refusal::new(
                    code,
                    format!("{name} {value:?} is not an RFC 3339 date-time"),
                )
            })
        };
        date(&self.issued_at, reason::ISSUED_AT, "issuedAt")?;
        if let Some(t) = &self.expiration_time {
            date(t, reason::EXPIRATION_TIME, "expirationTime")?;
        }
        if let Some(t) = &self.not_before {
            date(t, reason::NOT_BEFORE, "notBefore")?;
        }
        if let Some(id) = &self.request_id
            && id.contains(['\n', '\r'])
        {
            return Err(malformed("the request id spans lines".to_owned()));
        }
        for r in self.resources.iter().flatten() {
            if !is_uri(r) {
                return Err(malformed(format!("resource {r:?} is not an absolute URI")));
            }
        }
        Ok(self.text(family, chain))
    }

    /// The message lines (the fields checked).
    fn text(&self, family: &str, chain: &str) -> String {
        let mut lines = vec![
            format!(
                "{} wants you to sign in with your {family} account:",
                self.domain
            ),
            self.address.clone(),
            String::new(),
        ];
        match &self.statement {
            Some(s) if !s.is_empty() => {
                lines.push(s.clone());
                lines.push(String::new());
            }
            // EIP-4361 keeps the statement's line, empty; the SIWS format drops it.
            _ if family == "Ethereum" => lines.push(String::new()),
            _ => {}
        }
        lines.push(format!("URI: {}", self.uri));
        lines.push(format!("Version: {}", self.version));
        lines.push(format!("Chain ID: {chain}"));
        lines.push(format!("Nonce: {}", self.nonce));
        lines.push(format!("Issued At: {}", self.issued_at));
        if let Some(t) = &self.expiration_time {
            lines.push(format!("Expiration Time: {t}"));
        }
        if let Some(t) = &self.not_before {
            lines.push(format!("Not Before: {t}"));
        }
        if let Some(id) = &self.request_id {
            lines.push(format!("Request ID: {id}"));
        }
        if let Some(resources) = self.resources.as_ref().filter(|r| !r.is_empty()) {
            lines.push("Resources:".to_owned());
            for r in resources {
                lines.push(format!("- {r}"));
            }
        }
        lines.join("\n")
    }
}

/// A character of an RFC 3986 authority (`host[:port]`, no user info).
fn authority_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b)
}

/// An absolute URI (`scheme:` then visible characters, no spaces).
fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.bytes();
    chars.next().is_some_and(|b| b.is_ascii_alphabetic())
        && chars.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_graphic())
}

/// A URL's origin and path: `("https", "api.example.com:8443", "/weather")`; `None` when it is
/// not an absolute http(s) URL.
pub fn origin_and_path(url: &str) -> Option<(String, String, String)> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    let default_port = if scheme == "https" { 443 } else { 80 };
    let host = match authority.port_u16() {
        Some(p) if p != default_port => format!("{host}:{p}"),
        _ => host,
    };
    Some((scheme, host, uri.path().to_owned()))
}

#[cfg(test)]
mod tests;
