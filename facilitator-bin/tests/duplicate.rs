//! A second crate registering an id that a linked scheme crate already uses is refused at
//! start-up, with both crate names in the message. (This test binary registers the clash itself.)
#![cfg(feature = "evm")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use x402_core::{SchemeConfig, SchemeDescriptor, SchemeError, X402Version};

fn build(_: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async { Err(SchemeError::Config("clash".into())) })
}

x402_core::register_scheme!(SchemeDescriptor {
    id: "exact-eip155",
    crate_name: "duplicate-test",
    scheme: "exact",
    namespace: "eip155",
    versions: &[X402Version::V2],
    build,
});

#[test]
fn duplicate_link_time_registration_names_both_crates() {
    let err = facilitator_bin::catalogue().unwrap_err();
    assert_eq!(err.id, "exact-eip155");
    let msg = err.to_string();
    assert!(msg.contains("scheme-exact-evm"), "{msg}");
    assert!(msg.contains("duplicate-test"), "{msg}");
}
