//! Chain-neutral request builders shared by the EVM and Solana harnesses.

use x402_core::wire::{
    PaymentPayload, PaymentPayloadV2, PaymentRequirements, PaymentRequirementsV1,
    PaymentRequirementsV2, Raw, ResourceInfo, VerifyRequest,
};
use x402_core::{Network, X402Version};

/// A v2 request whose `accepted` is the requirement verbatim.
pub fn request_v2(requirements: &PaymentRequirementsV2, payload: Raw) -> VerifyRequest {
    VerifyRequest::new(
        PaymentPayload::V2(PaymentPayloadV2 {
            x402_version: X402Version::V2,
            resource: Some(ResourceInfo::new("http://127.0.0.1/paid")),
            accepted: requirements.clone(),
            payload,
            extensions: None,
        }),
        PaymentRequirements::V2(requirements.clone()),
    )
}

/// The same requirement in v1 shape (the network by its v1 name).
pub fn to_v1(r: &PaymentRequirementsV2) -> PaymentRequirementsV1 {
    let network = Network::parse(&r.network).expect("network");
    PaymentRequirementsV1 {
        scheme: r.scheme.clone(),
        network: network.to_wire(X402Version::V1),
        max_amount_required: r.amount,
        asset: r.asset.clone(),
        pay_to: r.pay_to.clone(),
        resource: "http://127.0.0.1/paid".into(),
        description: String::new(),
        mime_type: None,
        output_schema: None,
        max_timeout_seconds: r.max_timeout_seconds,
        extra: r.extra.clone(),
    }
}
