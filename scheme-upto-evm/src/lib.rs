#![doc = include_str!("../README.md")]

use x402_core::{SchemeConfig, SchemeDescriptor, SchemeError, X402Version};

/// The catalogue id of this scheme.
pub const ID: &str = "upto-eip155";

/// Builds the facilitator side for one network.
///
/// The chain implementation lands with its own issue; until then configuring this scheme is a
/// start-up error that says so, never a silently empty scheme.
fn build(config: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async move {
        Err(SchemeError::Config(format!(
            "{ID} cannot serve {} yet: this build registers the scheme id only",
            config.network
        )))
    })
}

x402_core::register_scheme!(SchemeDescriptor {
    id: ID,
    crate_name: env!("CARGO_PKG_NAME"),
    scheme: "upto",
    namespace: "eip155",
    versions: &[X402Version::V2],
    build,
});
