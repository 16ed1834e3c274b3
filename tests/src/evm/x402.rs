//! The x402 contracts on the EVM test bed: our own `x402ExactPermit2Proxy` and
//! `x402UptoPermit2Proxy` placed at their canonical addresses, the ERC-1271 test wallet and its
//! CREATE2 (ERC-6492) factory, and helpers around the EIP-712 structs buyers sign for Permit2
//! payments.
//!
//! The Solidity sources live in `contracts/` and are compiled by `scripts/compile-contracts.mjs`
//! (artifacts in [`tools::contracts_dir`]). The proxies have no constructor and no immutables, so
//! [`place_x402_proxies`] deploys each normally and copies its runtime code to the canonical
//! address with `anvil_setCode` (the addresses are CREATE2 results of the upstream deployment,
//! which our bytecode cannot reproduce).
//!
//! The EIP-712 message types ([`exact::PermitWitnessTransferFrom`],
//! [`upto::PermitWitnessTransferFrom`], [`eip2612::Permit`]), the proxy bindings and the canonical
//! addresses are the facilitator's own (`x402_evm`), re-exported here; [`bindings`] holds only
//! what the tests need beyond them.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, FixedBytes, U256, fixed_bytes};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolCall, SolStruct, SolValue};

use crate::evm::{EvmTestBed, IFiatToken, PERMIT2_ADDRESS};
use crate::tools;

pub use bindings::{ISmartWallet, IWalletFactory, IX402ProxyExtras};
pub use x402_evm::abi::eip2612;
pub use x402_evm::abi::permit2::{
    self, EIP2612Permit, IExactPermit2Proxy, IPermit2Errors, IUptoPermit2Proxy,
};
pub use x402_evm::abi::{permit2_exact as exact, permit2_upto as upto};
pub use x402_evm::addresses::{
    ERC1271_MAGIC, ERC6492_MAGIC, EXACT_PERMIT2_PROXY, MULTICALL3, UPTO_PERMIT2_PROXY,
};

pub mod bindings;

/// The witness type tail the exact proxy hands to Permit2 (x402-spec.md §4).
pub const EXACT_WITNESS_TYPE_STRING: &str = "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)";
/// The witness type tail the upto proxy hands to Permit2 (x402-spec.md §4).
pub const UPTO_WITNESS_TYPE_STRING: &str = "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)";

/// What the test wallet's `isValidSignature` returns for an invalid signature.
pub const ERC1271_INVALID: FixedBytes<4> = fixed_bytes!("0xffffffff");

/// Artifact of our Multicall3 (`tryAggregate`) (below the contracts dir).
pub const MULTICALL3_ARTIFACT: &str = "Multicall3.json";
/// The artifact name of the exact proxy.
pub const EXACT_PROXY_ARTIFACT: &str = "x402ExactPermit2Proxy.json";
/// Artifact of the upto proxy (below the contracts dir).
pub const UPTO_PROXY_ARTIFACT: &str = "x402UptoPermit2Proxy.json";
/// Artifact of the ERC-1271 test wallet (below the contracts dir).
pub const SMART_WALLET_ARTIFACT: &str = "SmartWallet.json";
/// Artifact of the wallet factory (below the contracts dir).
pub const WALLET_FACTORY_ARTIFACT: &str = "WalletFactory.json";

/// Deploys both proxies and Multicall3 and copies their runtime code to [`EXACT_PERMIT2_PROXY`],
/// [`UPTO_PERMIT2_PROXY`] and [`MULTICALL3`]. [`EvmTestBed::start`] does this for every bed.
///
/// # Panics
/// When an artifact is missing, a deployment fails, or the code at a canonical address is not
/// the compiled runtime afterwards.
pub async fn place_x402_proxies(bed: &EvmTestBed) {
    place(bed, EXACT_PROXY_ARTIFACT, EXACT_PERMIT2_PROXY).await;
    place(bed, UPTO_PROXY_ARTIFACT, UPTO_PERMIT2_PROXY).await;
    place(bed, MULTICALL3_ARTIFACT, MULTICALL3).await;
}

/// Deploys the artifact `file` and puts its runtime code at `target`.
async fn place(bed: &EvmTestBed, file: &str, target: Address) {
    let artifact = tools::read_json(&tools::contracts_dir(), file);
    let deployed = deploy_code(bed, artifact_hex(&artifact, "bytecode", file), file).await;
    let provider = bed.provider();
    let runtime = provider
        .get_code_at(deployed)
        .await
        .unwrap_or_else(|e| panic!("eth_getCode({file} at {deployed}): {e}"));
    // No immutables: the deployed runtime is the compiled one byte for byte, so a copy elsewhere
    // behaves the same.
    assert_eq!(
        runtime,
        artifact_hex(&artifact, "deployedBytecode", file),
        "{file}: deployed runtime differs from the artifact (immutables?)"
    );
    let _: serde_json::Value = provider
        .raw_request("anvil_setCode".into(), (target, &runtime))
        .await
        .unwrap_or_else(|e| panic!("anvil_setCode({file} at {target}): {e}"));
    let placed = provider
        .get_code_at(target)
        .await
        .unwrap_or_else(|e| panic!("eth_getCode({target}): {e}"));
    assert_eq!(
        placed, runtime,
        "{file}: code at {target} after anvil_setCode"
    );
}

/// Deploys `WalletFactory` from the deployer and returns its address.
///
/// # Panics
/// When the artifact is missing or the deployment fails.
pub async fn deploy_wallet_factory(bed: &EvmTestBed) -> Address {
    let artifact = tools::read_json(&tools::contracts_dir(), WALLET_FACTORY_ARTIFACT);
    let code = artifact_hex(&artifact, "bytecode", WALLET_FACTORY_ARTIFACT);
    deploy_code(bed, code, WALLET_FACTORY_ARTIFACT).await
}

/// Creates (from the deployer) the `SmartWallet` of `owner` for `salt` through `factory` and
/// returns its address, which equals `factory.predict(owner, salt)`.
///
/// # Panics
/// When the transaction fails or no code appears at the predicted address.
pub async fn deploy_wallet(
    bed: &EvmTestBed,
    factory: Address,
    owner: Address,
    salt: B256,
) -> Address {
    let factory = wallet_factory(bed, factory);
    let predicted = factory
        .predict(owner, salt)
        .call()
        .await
        .unwrap_or_else(|e| panic!("WalletFactory.predict: {e}"));
    let tx = factory
        .deploy_call(owner, salt)
        .into_transaction_request()
        .from(bed.deployer().address);
    bed.send(tx, "WalletFactory.deploy").await;
    let code = bed
        .provider()
        .get_code_at(predicted)
        .await
        .unwrap_or_else(|e| panic!("eth_getCode({predicted}): {e}"));
    assert!(
        !code.is_empty(),
        "no wallet at the predicted address {predicted}"
    );
    predicted
}

/// The exact proxy at its canonical address, on the bed's provider.
pub fn exact_proxy(
    bed: &EvmTestBed,
) -> IExactPermit2Proxy::IExactPermit2ProxyInstance<DynProvider> {
    IExactPermit2Proxy::new(EXACT_PERMIT2_PROXY, bed.provider())
}

/// The upto proxy at its canonical address, on the bed's provider.
pub fn upto_proxy(bed: &EvmTestBed) -> IUptoPermit2Proxy::IUptoPermit2ProxyInstance<DynProvider> {
    IUptoPermit2Proxy::new(UPTO_PERMIT2_PROXY, bed.provider())
}

/// What the proxy at `at` exposes beyond the facilitator's bindings, on the bed's provider.
pub fn proxy_extras(
    bed: &EvmTestBed,
    at: Address,
) -> IX402ProxyExtras::IX402ProxyExtrasInstance<DynProvider> {
    IX402ProxyExtras::new(at, bed.provider())
}

/// The wallet factory at `at`, on the bed's provider.
pub fn wallet_factory(
    bed: &EvmTestBed,
    at: Address,
) -> IWalletFactory::IWalletFactoryInstance<DynProvider> {
    IWalletFactory::new(at, bed.provider())
}

/// The smart wallet at `at`, on the bed's provider.
pub fn smart_wallet(
    bed: &EvmTestBed,
    at: Address,
) -> ISmartWallet::ISmartWalletInstance<DynProvider> {
    ISmartWallet::new(at, bed.provider())
}

/// Signs the EIP-712 `message` in `domain` and returns the 65-byte `r ‖ s ‖ v` signature
/// (v = 27/28), the form x402 payloads carry.
///
/// # Panics
/// Never for a valid key (signing a 32-byte hash cannot fail).
pub fn sign_eip712<T: SolStruct>(
    signer: &PrivateKeySigner,
    message: &T,
    domain: &Eip712Domain,
) -> Bytes {
    let hash = message.eip712_signing_hash(domain);
    let signature = signer
        .sign_hash_sync(&hash)
        .unwrap_or_else(|e| panic!("signing {hash}: {e}"));
    Bytes::from(signature.as_bytes().to_vec())
}

/// Wraps `inner` as an ERC-6492 signature: `abi.encode(factory, factory_calldata, inner)`
/// followed by [`ERC6492_MAGIC`].
pub fn erc6492_wrap(factory: Address, factory_calldata: &Bytes, inner: &Bytes) -> Bytes {
    let mut out = (factory, factory_calldata.clone(), inner.clone()).abi_encode_params();
    out.extend_from_slice(ERC6492_MAGIC.as_slice());
    Bytes::from(out)
}

/// The timestamp of the latest block (what `block.timestamp` was when it was mined).
///
/// # Panics
/// When the RPC call fails.
pub async fn latest_timestamp(bed: &EvmTestBed) -> u64 {
    bed.provider()
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap_or_else(|e| panic!("eth_getBlockByNumber(latest): {e}"))
        .unwrap_or_else(|| panic!("no latest block"))
        .header
        .timestamp
}

/// The signed message for an exact payment of `amount` of `token` to `to`, spender = the exact
/// proxy.
pub fn exact_payment(
    token: Address,
    amount: U256,
    to: Address,
    nonce: U256,
    deadline: u64,
    valid_after: u64,
) -> exact::PermitWitnessTransferFrom {
    exact::PermitWitnessTransferFrom {
        permitted: exact::TokenPermissions { token, amount },
        spender: EXACT_PERMIT2_PROXY,
        nonce,
        deadline: U256::from(deadline),
        witness: exact::Witness {
            to,
            validAfter: U256::from(valid_after),
        },
    }
}

/// The signed message for an upto payment of at most `max` of `token` to `to`, settled by
/// `facilitator`, spender = the upto proxy.
#[allow(clippy::too_many_arguments)]
pub fn upto_payment(
    token: Address,
    max: U256,
    to: Address,
    facilitator: Address,
    nonce: U256,
    deadline: u64,
    valid_after: u64,
) -> upto::PermitWitnessTransferFrom {
    upto::PermitWitnessTransferFrom {
        permitted: upto::TokenPermissions { token, amount: max },
        spender: UPTO_PERMIT2_PROXY,
        nonce,
        deadline: U256::from(deadline),
        witness: upto::Witness {
            to,
            facilitator,
            validAfter: U256::from(valid_after),
        },
    }
}

/// A signed Permit2 witness transfer taken apart into the arguments of its proxy's `settle`.
pub trait ProxyArgs {
    /// The proxy's witness tuple.
    type Witness;
    /// The `witness` argument.
    fn proxy_witness(&self) -> Self::Witness;
    /// The signed `(token, amount, nonce, deadline)`.
    fn permit_terms(&self) -> (Address, U256, U256, U256);

    /// The `permit` argument: the message without spender and witness.
    fn transfer_permit(&self) -> permit2::PermitTransferFrom {
        let (token, amount, nonce, deadline) = self.permit_terms();
        permit2::PermitTransferFrom {
            permitted: permit2::TokenPermissions { token, amount },
            nonce,
            deadline,
        }
    }
}

impl ProxyArgs for exact::PermitWitnessTransferFrom {
    type Witness = permit2::ExactWitness;

    fn proxy_witness(&self) -> permit2::ExactWitness {
        permit2::ExactWitness {
            to: self.witness.to,
            validAfter: self.witness.validAfter,
        }
    }

    fn permit_terms(&self) -> (Address, U256, U256, U256) {
        let p = &self.permitted;
        (p.token, p.amount, self.nonce, self.deadline)
    }
}

impl ProxyArgs for upto::PermitWitnessTransferFrom {
    type Witness = permit2::UptoWitness;

    fn proxy_witness(&self) -> permit2::UptoWitness {
        permit2::UptoWitness {
            to: self.witness.to,
            facilitator: self.witness.facilitator,
            validAfter: self.witness.validAfter,
        }
    }

    fn permit_terms(&self) -> (Address, U256, U256, U256) {
        let p = &self.permitted;
        (p.token, p.amount, self.nonce, self.deadline)
    }
}

/// A 65-byte `r ‖ s ‖ v` signature split the way `permit`-style calls take it: `(v, r, s)`.
pub fn split_signature(signature: &[u8]) -> (u8, B256, B256) {
    (
        signature[64],
        B256::from_slice(&signature[..32]),
        B256::from_slice(&signature[32..64]),
    )
}

/// secp256k1's group order n.
pub const SECP256K1_N: B256 =
    alloy::primitives::b256!("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");

/// The malleable twin of a 65-byte `r ‖ s ‖ v` signature: `s' = n - s` with `v` flipped (27 ↔
/// 28). It recovers to the same signer; EIP-2 (low-s) checks refuse it.
pub fn high_s_twin(signature: &[u8]) -> Bytes {
    let s_high = U256::from_be_bytes(SECP256K1_N.0) - U256::from_be_slice(&signature[32..64]);
    let v = if signature[64] == 27 { 28 } else { 27 };
    Bytes::from([&signature[..32], &s_high.to_be_bytes::<32>()[..], &[v]].concat())
}

/// `owner` signs an EIP-2612 permit of `value` for Permit2 on the bed's USDC (at the token's
/// current nonce for `owner`), split the way `settleWithPermit` takes it.
///
/// # Panics
/// When reading the nonce fails.
pub async fn permit_for_permit2(
    bed: &EvmTestBed,
    owner: &PrivateKeySigner,
    value: U256,
    deadline: u64,
) -> EIP2612Permit {
    let nonce = bed
        .usdc_contract()
        .nonces(owner.address())
        .call()
        .await
        .unwrap_or_else(|e| panic!("USDC nonces({}): {e}", owner.address()));
    let permit = eip2612::Permit {
        owner: owner.address(),
        spender: PERMIT2_ADDRESS,
        value,
        nonce,
        deadline: U256::from(deadline),
    };
    let (v, r, s) = split_signature(&sign_eip712(owner, &permit, &bed.usdc_domain()));
    EIP2612Permit {
        value,
        deadline: U256::from(deadline),
        r,
        s,
        v,
    }
}

/// The smart `wallet` approves Permit2 for all its USDC through `execute`, sent by its `owner`.
///
/// # Panics
/// When the transaction fails.
pub async fn wallet_approves_permit2(bed: &EvmTestBed, wallet: Address, owner: Address) {
    let approve = IFiatToken::approveCall {
        spender: PERMIT2_ADDRESS,
        value: U256::MAX,
    }
    .abi_encode();
    let tx = smart_wallet(bed, wallet)
        .execute(bed.usdc(), approve.into())
        .into_transaction_request()
        .from(owner);
    bed.send(tx, "wallet approves Permit2").await;
}

/// The transaction by which `owner` switches its smart `wallet`'s signature validation off
/// (`disabled`) or on.
pub fn set_signatures_disabled(
    bed: &EvmTestBed,
    wallet: Address,
    owner: Address,
    disabled: bool,
) -> TransactionRequest {
    smart_wallet(bed, wallet)
        .setSignaturesDisabled(disabled)
        .into_transaction_request()
        .from(owner)
}

/// Deploys creation `code` from the deployer and returns the contract address.
async fn deploy_code(bed: &EvmTestBed, code: Bytes, what: &str) -> Address {
    let tx = TransactionRequest::default()
        .with_from(bed.deployer().address)
        .with_deploy_code(code);
    bed.send(tx, &format!("deploy {what}"))
        .await
        .contract_address
        .unwrap_or_else(|| panic!("deploying {what} created no contract"))
}

/// The hex field `key` (`bytecode` or `deployedBytecode`) of an artifact, decoded.
fn artifact_hex(artifact: &serde_json::Value, key: &str, file: &str) -> Bytes {
    let text = artifact[key]
        .as_str()
        .unwrap_or_else(|| panic!("{file} has no {key} string"));
    let code = hex::decode(text.trim_start_matches("0x"))
        .unwrap_or_else(|e| panic!("{file}: {key} is not hex (unlinked library?): {e}"));
    assert!(
        !code.is_empty(),
        "{file}: {key} is empty (abstract contract?)"
    );
    Bytes::from(code)
}
