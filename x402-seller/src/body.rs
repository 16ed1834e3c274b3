//! Seller-supplied bodies for the unpaid 402 and for a failed settlement.

use std::fmt;
use std::sync::Arc;

use x402_core::wire::{PaymentRequirementsV2, ResourceInfo, SettleResponse};

/// What a custom body closure is told.
#[derive(Debug, Clone, Copy)]
pub struct BodyContext<'a> {
    /// The `error` of the answer (`Payment required`, or the failed settlement's reason code).
    pub error: &'a str,
    /// The resource.
    pub resource: &'a ResourceInfo,
    /// The v2 offers of this request (also in `PAYMENT-REQUIRED` of an unpaid 402).
    pub accepts: &'a [PaymentRequirementsV2],
    /// The failed settlement (`None` for an unpaid 402).
    pub settlement: Option<&'a SettleResponse>,
    /// Whether the request comes from a web browser (`Accept: text/html` and a `Mozilla`
    /// `User-Agent`), which would otherwise get the HTML paywall.
    pub browser: bool,
}

/// A body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomBody {
    /// The `Content-Type` (a header value; one that is not is replaced by the default body).
    pub content_type: String,
    /// The bytes.
    pub body: Vec<u8>,
}

impl CustomBody {
    /// `body` with `content_type`.
    pub fn new(content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            content_type: content_type.into(),
            body: body.into(),
        }
    }

    /// `value` as `application/json`.
    pub fn json(value: &serde_json::Value) -> Self {
        Self::new("application/json", value.to_string())
    }

    /// `html` as `text/html; charset=utf-8`.
    pub fn html(html: impl Into<String>) -> Self {
        Self::new("text/html; charset=utf-8", html.into())
    }
}

/// Produces a custom body.
pub type BodyFn = Arc<dyn Fn(&BodyContext<'_>) -> CustomBody + Send + Sync>;

/// A custom body closure, debuggable.
#[derive(Clone)]
pub(crate) struct BodyHook(pub(crate) BodyFn);

impl fmt::Debug for BodyHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyFn(..)")
    }
}
