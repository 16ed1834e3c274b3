//! The buyer side of x402 extensions: what a [`Buyer`] echoes in its payment's `extensions`.
//!
//! For each extension the seller declared in its v2 `PaymentRequired` (x402-spec §1.3), in the
//! seller's order:
//!
//! 1. a [`BuyerExtension`] added with [`Buyer::with_extension`] for that key answers the echo
//!    (it may add to the declaration — an id, a signature — or refuse with a reason);
//! 2. `payment-identifier` is built in: the declaration is echoed with `info.id`, one fresh id
//!    ([`x402_core::extension::payment_id::generate_id`]) per payment, kept when the paid request
//!    is retried ([`Buyer::execute_idempotent`]) — unless [`Buyer::without_payment_ids`];
//! 3. any other extension is echoed verbatim, as the specification requires;
//! 4. except one the seller marks required (`info.required` is `true`) that the buyer cannot
//!    satisfy: the request fails with [`Error::Extension`] before anything is chosen, reserved
//!    or signed — never a payment the seller would refuse, nor a 402 loop.
//!
//! v1 payments have no extensions.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::value::RawValue;
use x402_core::extension::payment_id::{self, PAYMENT_IDENTIFIER};
use x402_core::extension::{JsonObject, read_extensions};
use x402_core::wire::{PaymentRequiredV2, Raw};

use crate::client::{Buyer, Error};

/// What a [`BuyerExtension`] sees: the 402 and the seller's declaration for its key.
#[derive(Debug, Clone, Copy)]
pub struct ExtensionCall<'a> {
    /// The request's method.
    pub method: &'a reqwest::Method,
    /// The URL requested.
    pub url: &'a reqwest::Url,
    /// The seller's v2 payment request.
    pub required: &'a PaymentRequiredV2,
    /// The seller's declaration under this extension's key.
    pub declaration: &'a RawValue,
}

/// An extension the buyer understands: it answers what to echo under its key.
#[async_trait]
pub trait BuyerExtension: Send + Sync + Debug {
    /// The key in `extensions`.
    fn key(&self) -> &str;

    /// The echo for this payment: `Ok(None)` echoes the declaration verbatim, `Ok(Some(raw))`
    /// sends `raw` instead, `Err(reason)` refuses to pay ([`Error::Extension`]).
    async fn echo(&self, call: &ExtensionCall<'_>) -> Result<Option<Raw>, String>;
}

/// Whether a declaration marks itself required (`info.required` is `true`).
fn marked_required(declaration: &RawValue) -> bool {
    payment_id::is_required(declaration)
}

impl Buyer {
    /// Adds an extension the buyer understands (a later one with the same key replaces it).
    pub fn with_extension(mut self, extension: Arc<dyn BuyerExtension>) -> Self {
        let key = extension.key().to_owned();
        self.extensions.retain(|e| e.key() != key);
        self.extensions.push(extension);
        self
    }

    /// Sends no payment id: a `payment-identifier` the seller declares optional is echoed
    /// verbatim, and one it requires fails the request with [`Error::Extension`].
    pub fn without_payment_ids(mut self) -> Self {
        self.payment_ids = false;
        self
    }

    /// The `extensions` to echo for a v2 payment, and the payment id among them.
    pub(crate) async fn echo_extensions(
        &self,
        method: &reqwest::Method,
        url: &reqwest::Url,
        required: &PaymentRequiredV2,
    ) -> Result<(Option<Raw>, Option<String>), Error> {
        let Some(raw) = &required.extensions else {
            return Ok((None, None));
        };
        let Ok(declared) = read_extensions(Some(raw)) else {
            // Not an object: carried as the seller sent it.
            return Ok((Some(raw.clone()), None));
        };
        let mut echo = JsonObject::new();
        let mut id = None;
        for (key, declaration) in declared.iter() {
            let refuse = |reason: String| Error::Extension {
                key: key.to_owned(),
                reason,
            };
            if let Some(extension) = self.extensions.iter().find(|e| e.key() == key) {
                let call = ExtensionCall {
                    method,
                    url,
                    required,
                    declaration,
                };
                match extension.echo(&call).await {
                    Ok(Some(answer)) => echo.set(key, answer),
                    Ok(None) => echo.set(key, declaration.to_owned()),
                    Err(reason) => return Err(refuse(reason)),
                }
                continue;
            }
            if key == PAYMENT_IDENTIFIER && self.payment_ids {
                let fresh = payment_id::generate_id();
                match payment_id::with_id(declaration, &fresh) {
                    Ok(with) => {
                        echo.set(key, with.to_raw());
                        id = Some(fresh);
                    }
                    Err(why) if marked_required(declaration) => return Err(refuse(why)),
                    // An unreadable optional declaration: echoed verbatim, no id.
                    Err(_) => echo.set(key, declaration.to_owned()),
                }
                continue;
            }
            if marked_required(declaration) {
                return Err(refuse(if key == PAYMENT_IDENTIFIER {
                    "this buyer sends no payment ids".to_owned()
                } else {
                    "this buyer does not support it".to_owned()
                }));
            }
            echo.set(key, declaration.to_owned());
        }
        Ok((Some(echo.to_raw()), id))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn required(extensions: serde_json::Value) -> PaymentRequiredV2 {
        serde_json::from_value(json!({
            "x402Version": 2, "resource": {"url": "https://shop.example/a"},
            "accepts": [], "extensions": extensions}))
        .unwrap()
    }

    fn buyer() -> Buyer {
        Buyer::new(
            reqwest::Client::new(),
            x402_core::Registry::default(),
            crate::Policy::default(),
        )
    }

    async fn echo(
        buyer: &Buyer,
        extensions: serde_json::Value,
    ) -> Result<(serde_json::Value, Option<String>), Error> {
        let url = reqwest::Url::parse("https://shop.example/a").unwrap();
        let doc = required(extensions);
        let (raw, id) = buyer
            .echo_extensions(&reqwest::Method::GET, &url, &doc)
            .await?;
        Ok((serde_json::from_str(raw.unwrap().get()).unwrap(), id))
    }

    #[derive(Debug)]
    struct Stamp;

    #[async_trait]
    impl BuyerExtension for Stamp {
        fn key(&self) -> &str {
            "stamp"
        }
        async fn echo(&self, call: &ExtensionCall<'_>) -> Result<Option<Raw>, String> {
            if call.url.host_str() == Some("refused.example") {
                return Err("not for this host".into());
            }
            Ok(Some(
                serde_json::value::to_raw_value(&json!({"info": {"stamped": true}, "schema": {}}))
                    .unwrap(),
            ))
        }
    }

    #[tokio::test]
    async fn unknown_extensions_are_echoed_verbatim_in_order() {
        let declared = json!({"zeta": {"info": {"a": [1, 2]}, "schema": {}}, "bazaar": {"info": {}, "schema": {}}});
        let (echoed, id) = echo(&buyer(), declared.clone()).await.unwrap();
        assert_eq!(echoed, declared);
        assert_eq!(id, None);
    }

    #[tokio::test]
    async fn a_payment_id_is_added_to_the_declaration() {
        let declared = json!({"payment-identifier": serde_json::to_value(payment_id::declaration(false)).unwrap()});
        let (echoed, id) = echo(&buyer(), declared).await.unwrap();
        let id = id.unwrap();
        assert!(payment_id::is_valid_id(&id));
        assert_eq!(echoed["payment-identifier"]["info"]["id"], id.as_str());
        assert_eq!(echoed["payment-identifier"]["info"]["required"], false);
        // Without ids: an optional one is echoed as declared, a required one refuses.
        let (echoed, id) = echo(
            &buyer().without_payment_ids(),
            json!({"payment-identifier": serde_json::to_value(payment_id::declaration(false)).unwrap()}),
        )
        .await
        .unwrap();
        assert_eq!(id, None);
        assert!(echoed["payment-identifier"]["info"].get("id").is_none());
        let error = echo(
            &buyer().without_payment_ids(),
            json!({"payment-identifier": serde_json::to_value(payment_id::declaration(true)).unwrap()}),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&error, Error::Extension { key, .. } if key == "payment-identifier"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_required_extension_the_buyer_cannot_satisfy_is_an_error() {
        let error = echo(
            &buyer(),
            json!({"sign-in-with-y": {"info": {"required": true}, "schema": {}}}),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&error, Error::Extension { key, .. } if key == "sign-in-with-y"),
            "{error}"
        );
        // An id the seller wrote itself is replaced by a fresh one of ours.
        let error = echo(
            &buyer(),
            json!({"payment-identifier": {"info": {"required": true, "id": 5}}}),
        )
        .await;
        assert!(error.is_ok(), "an id the seller wrote is replaced by ours");
    }

    #[tokio::test]
    async fn an_added_extension_answers_for_its_key() {
        let b = buyer().with_extension(Arc::new(Stamp));
        let (echoed, _) = echo(
            &b,
            json!({"stamp": {"info": {"required": true}, "schema": {}}}),
        )
        .await
        .unwrap();
        assert_eq!(echoed["stamp"]["info"]["stamped"], true);
        let url = reqwest::Url::parse("https://refused.example/").unwrap();
        let doc = required(json!({"stamp": {"info": {}, "schema": {}}}));
        let error = b
            .echo_extensions(&reqwest::Method::GET, &url, &doc)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Extension { .. }));
    }
}
