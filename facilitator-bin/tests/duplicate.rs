//! A second crate registering an id that a linked scheme crate already uses is refused at
//! start-up, with both crate names in the message. (This test binary registers the clash itself.)
#![cfg(feature = "evm")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use x402_core::{SchemeConfig, SchemeError};

fn build(_: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async { Err(SchemeError::Config("clash".into())) })
}

// Registered as this test's own crate, facilitator-bin.
x402_core::register_scheme! {
    scheme: "exact",
    namespace: "eip155",
    versions: [V2],
    build: build,
}

#[test]
fn duplicate_link_time_registration_names_both_crates() {
    let err = facilitator_bin::catalogue().unwrap_err();
    assert_eq!(err.id, ID);
    assert_eq!(SCHEME, "exact");
    let msg = err.to_string();
    assert!(msg.contains("scheme-exact-evm"), "{msg}");
    assert!(msg.contains("facilitator-bin"), "{msg}");
}
