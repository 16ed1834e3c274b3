//! The x402 MCP transport's wire conventions (x402 `specs/transports-v2/mcp.md`): the payment in
//! the request's `_meta["x402/payment"]`, the settlement in the result's
//! `_meta["x402/payment-response"]`, and a payment request as a tool error whose
//! `structuredContent` is the `PaymentRequired` document and whose `content[0].text` is the same
//! document as JSON text.

use rmcp::model::CallToolResult;
use x402_core::json::JsonLimits;
use x402_core::wire::{PaymentRequired, SettleResponse};

/// The request `_meta` key carrying the payment (a v2 `PaymentPayload` object).
pub const PAYMENT_META_KEY: &str = "x402/payment";

/// The result `_meta` key carrying the settlement (a `SettleResponse` object).
pub const PAYMENT_RESPONSE_META_KEY: &str = "x402/payment-response";

/// The largest payment-request document read from a tool result.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// A tool error carrying the payment request `document` (a `PaymentRequired` object), as the
/// transport specifies it: `isError: true`, the document as `structuredContent` and as JSON text
/// in `content[0]`.
pub fn payment_required_result(document: serde_json::Value) -> CallToolResult {
    CallToolResult::structured_error(document)
}

/// The payment request a tool result carries: `None` unless it is an error whose
/// `structuredContent` (preferred) or `content[0].text` (the fallback) is a `PaymentRequired`
/// document with `x402Version` and `accepts`.
pub fn payment_required_of(result: &CallToolResult) -> Option<PaymentRequired> {
    if result.is_error != Some(true) {
        return None;
    }
    let limits = JsonLimits {
        max_bytes: MAX_DOCUMENT_BYTES,
        ..JsonLimits::DEFAULT
    };
    let read = |bytes: &[u8]| {
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let object = value.as_object()?;
        if !(object.contains_key("x402Version") && object.contains_key("accepts")) {
            return None;
        }
        PaymentRequired::from_json(bytes, limits).ok()
    };
    let structured = result
        .structured_content
        .as_ref()
        .and_then(|v| serde_json::to_vec(v).ok())
        .and_then(|bytes| read(&bytes));
    structured.or_else(|| {
        let text = result.content.first()?.as_text()?;
        read(text.text.as_bytes())
    })
}

/// The settlement a tool result reports in `_meta["x402/payment-response"]`, when readable; on a
/// tool error without one there, the same key of its `structuredContent`: where the official
/// Python SDK's MCP server (`x402.mcp` of PyPI `x402`) puts the failed settlement of the
/// payment request it answers a settlement failure with.
pub fn settlement_of(result: &CallToolResult) -> Option<SettleResponse> {
    let in_meta = result
        .meta
        .as_ref()
        .and_then(|m| m.get(PAYMENT_RESPONSE_META_KEY));
    let in_error = || {
        (result.is_error == Some(true))
            .then(|| {
                result
                    .structured_content
                    .as_ref()?
                    .get(PAYMENT_RESPONSE_META_KEY)
            })
            .flatten()
    };
    let value = in_meta.or_else(in_error)?;
    serde_json::from_value(value.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ContentBlock, MetaObject};

    fn document() -> serde_json::Value {
        serde_json::json!({
            "x402Version": 2,
            "error": "Payment required",
            "resource": {"url": "mcp://tool/joke", "description": "", "mimeType": "application/json"},
            "accepts": [{
                "scheme": "exact", "network": "eip155:84532", "amount": "10000",
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
                "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}
            }]
        })
    }

    #[test]
    fn a_payment_request_is_a_structured_tool_error_with_the_same_text() {
        let result = payment_required_result(document());
        assert_eq!(result.is_error, Some(true));
        assert_eq!(result.structured_content, Some(document()));
        let text = &result.content[0].as_text().unwrap().text;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(text).unwrap(),
            document()
        );
        let Some(PaymentRequired::V2(read)) = payment_required_of(&result) else {
            panic!("a v2 document")
        };
        assert_eq!(read.accepts.len(), 1);
        assert_eq!(read.resource.url, "mcp://tool/joke");
    }

    #[test]
    fn the_text_is_read_when_there_is_no_structured_content() {
        let mut result = payment_required_result(document());
        result.structured_content = None;
        assert!(payment_required_of(&result).is_some());
        // Not an error: never a payment request.
        result.is_error = Some(false);
        assert!(payment_required_of(&result).is_none());
    }

    #[test]
    fn an_ordinary_tool_error_is_not_a_payment_request() {
        let result = CallToolResult::error(vec![ContentBlock::text("boom")]);
        assert!(payment_required_of(&result).is_none());
        let result = CallToolResult::structured_error(serde_json::json!({"x402Version": 2}));
        assert!(payment_required_of(&result).is_none());
    }

    #[test]
    fn the_settlement_is_read_from_the_result_meta() {
        let settlement = serde_json::json!({
            "success": true, "transaction": "0xabc", "network": "eip155:84532", "payer": "0x857b"
        });
        let mut meta = MetaObject::new();
        meta.insert(PAYMENT_RESPONSE_META_KEY.to_owned(), settlement);
        let result = CallToolResult::success(vec![]).with_meta(Some(meta));
        let read = settlement_of(&result).unwrap();
        assert!(read.success);
        assert_eq!(read.transaction, "0xabc");
        assert!(settlement_of(&CallToolResult::success(vec![])).is_none());
    }

    #[test]
    fn a_failed_settlement_is_read_from_the_payment_request_of_a_python_server() {
        // x402.mcp (PyPI x402 2.25.0) answers a failed settlement with a payment request that
        // carries the settlement under the _meta key, in its structuredContent.
        let mut document = document();
        document["error"] = "Payment settlement failed: insufficient_funds".into();
        document[PAYMENT_RESPONSE_META_KEY] = serde_json::json!({
            "success": false, "errorReason": "insufficient_funds", "transaction": "",
            "network": "eip155:84532"
        });
        let result = payment_required_result(document.clone());
        assert!(payment_required_of(&result).is_some());
        let read = settlement_of(&result).unwrap();
        assert!(!read.success);
        assert_eq!(read.error_reason.unwrap().as_str(), "insufficient_funds");
        // Only on an error, and the result's _meta comes first.
        let mut meta = MetaObject::new();
        meta.insert(
            PAYMENT_RESPONSE_META_KEY.to_owned(),
            serde_json::json!({"success": false, "errorReason": "from_meta", "transaction": "",
                "network": "eip155:84532"}),
        );
        let with_meta = payment_required_result(document.clone()).with_meta(Some(meta));
        assert_eq!(
            settlement_of(&with_meta)
                .unwrap()
                .error_reason
                .unwrap()
                .as_str(),
            "from_meta"
        );
        let mut not_an_error = payment_required_result(document);
        not_an_error.is_error = Some(false);
        assert!(settlement_of(&not_an_error).is_none());
    }
}
