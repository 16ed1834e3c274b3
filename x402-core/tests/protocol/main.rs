//! x402-core's integration tests in one test binary (one link): the wire vectors, the shapes of
//! the current reference (service members, `extra`, discovery items), the header codec, the
//! registry, the dispatcher and (with the `client` feature) the HTTP facilitator client.

#[cfg(feature = "client")]
mod client;
mod dispatch;
mod header_codec;
mod registry;
mod shapes;
mod vectors;
