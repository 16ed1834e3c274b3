//! Canonical contract addresses (the same on every EVM chain) and selectors (x402-spec §4).

use alloy::primitives::{Address, FixedBytes, address};

/// Uniswap's Permit2.
pub const PERMIT2: Address = address!("0x000000000022D473030F116dDEE9F6B43aC78BA3");
/// `x402ExactPermit2Proxy`.
pub const EXACT_PERMIT2_PROXY: Address = address!("0x402085c248EeA27D92E8b30b2C58ed07f9E20001");
/// `x402UptoPermit2Proxy`.
pub const UPTO_PERMIT2_PROXY: Address = address!("0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002");
/// Multicall3.
pub const MULTICALL3: Address = address!("0xcA11bde05977b3631167028862bE2a173976CA11");
/// The ERC-6492 magic suffix of a counterfactual-wallet signature.
pub const ERC6492_MAGIC: FixedBytes<32> = FixedBytes([
    0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92,
    0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92,
]);
/// The EIP-1271 "valid signature" magic value.
pub const ERC1271_MAGIC: FixedBytes<4> = FixedBytes([0x16, 0x26, 0xba, 0x7e]);
