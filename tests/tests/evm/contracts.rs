//! Our x402 contracts on a real anvil: the Permit2 proxies at their canonical addresses (exact and
//! upto, with and without an EIP-2612 permit), their ABI against x402-spec.md §4, the §6.2
//! EIP-712 vectors B, C and D, and the ERC-1271 wallet with its CREATE2 (ERC-6492) factory.
//!
//! Every negative case also checks that no funds moved.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside `#[test]` fns fail the test too

use alloy::json_abi::JsonAbi;
use alloy::primitives::{
    Address, B256, Bytes, U256, address, b256, bytes, fixed_bytes, hex, keccak256,
};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolCall, SolError, SolEvent, SolInterface, SolStruct};
use x402_evm::eip712::eip3009_domain;
use x402_tests::anvil::DEV_ACCOUNT_0_KEY;
use x402_tests::evm::x402::IExactPermit2Proxy::{
    self as ExactProxy, IExactPermit2ProxyErrors as ExactError,
};
use x402_tests::evm::x402::IUptoPermit2Proxy::{
    self as UptoProxy, IUptoPermit2ProxyErrors as UptoError,
};
use x402_tests::evm::x402::{
    EIP2612Permit, ERC1271_INVALID, ERC1271_MAGIC, ERC6492_MAGIC, EXACT_PERMIT2_PROXY,
    EXACT_PROXY_ARTIFACT, EXACT_WITNESS_TYPE_STRING, IPermit2Errors, ISmartWallet, IWalletFactory,
    IX402ProxyExtras, MULTICALL3, ProxyArgs as _, SMART_WALLET_ARTIFACT, UPTO_PERMIT2_PROXY,
    UPTO_PROXY_ARTIFACT, UPTO_WITNESS_TYPE_STRING, WALLET_FACTORY_ARTIFACT, deploy_wallet,
    deploy_wallet_factory, eip2612, erc6492_wrap, exact, exact_payment, exact_proxy, high_s_twin,
    latest_timestamp, permit_for_permit2, permit2, place_x402_proxies, proxy_extras,
    set_signatures_disabled, sign_eip712, smart_wallet, upto, upto_payment, upto_proxy,
    wallet_approves_permit2, wallet_factory,
};
use x402_tests::evm::{EvmTestBed, PERMIT2_ADDRESS, permit2_domain};
use x402_tests::tools;

alloy::sol! {
    /// ERC-20 `Transfer`, to find the token movement in a receipt.
    event Transfer(address indexed from, address indexed to, uint256 value);
}

/// Base Sepolia USDC and the `payTo` of the §6.2 vectors.
const VECTOR_USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
const VECTOR_PAY_TO: Address = address!("0x209693Bc6afc0C5328bA36FaF03C514EF312287C");
const VECTOR_FACILITATOR: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");

/// Permit2 errors as they bubble up through the proxies.
type P2 = IPermit2Errors::IPermit2ErrorsErrors;

/// Decodes the revert of `result` as the custom error interface `E`.
fn revert<E: SolInterface, T>(result: Result<T, alloy::contract::Error>, what: &str) -> E {
    match result {
        Ok(_) => panic!("{what}: expected a revert, the call succeeded"),
        Err(e) => e
            .as_decoded_interface_error::<E>()
            .unwrap_or_else(|| panic!("{what}: revert not decodable as the expected errors: {e}")),
    }
}

fn compiled_abi(file: &str) -> JsonAbi {
    let artifact = tools::read_json(&tools::contracts_dir(), file);
    serde_json::from_value(artifact["abi"].clone())
        .unwrap_or_else(|e| panic!("{file}: abi is not a JSON ABI: {e}"))
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// The function, error and event selectors of a compiled ABI.
fn abi_selectors(abi: &JsonAbi) -> (Vec<[u8; 4]>, Vec<[u8; 4]>, Vec<B256>) {
    (
        sorted(abi.functions().map(|f| f.selector().0).collect()),
        sorted(abi.errors().map(|e| e.selector().0).collect()),
        sorted(abi.events().map(|e| e.selector()).collect()),
    )
}

/// The selectors of the function `name` (one per overload) in a compiled ABI.
fn by_name(abi: &JsonAbi, name: &str) -> Vec<[u8; 4]> {
    abi.function(name)
        .unwrap_or_else(|| panic!("no function {name}"))
        .iter()
        .map(|f| f.selector().0)
        .collect()
}

#[test]
fn selectors_and_type_hashes_match_the_spec() {
    let exact_abi = compiled_abi(EXACT_PROXY_ARTIFACT);
    let upto_abi = compiled_abi(UPTO_PROXY_ARTIFACT);
    // §4 / §3.2 / §3.3 selectors: the Rust bindings and the compiled ABI (by name) agree with them.
    for (abi, name, bound, spec) in [
        (
            &exact_abi,
            "settle",
            ExactProxy::settleCall::SELECTOR,
            hex!("13cd3b53"),
        ),
        (
            &exact_abi,
            "settleWithPermit",
            ExactProxy::settleWithPermitCall::SELECTOR,
            hex!("fa340378"),
        ),
        (
            &upto_abi,
            "settle",
            UptoProxy::settleCall::SELECTOR,
            hex!("ff11e7b4"),
        ),
        (
            &upto_abi,
            "settleWithPermit",
            UptoProxy::settleWithPermitCall::SELECTOR,
            hex!("016c1748"),
        ),
        (
            &exact_abi,
            "PERMIT2",
            ExactProxy::PERMIT2Call::SELECTOR,
            hex!("6afdd850"),
        ),
        (
            &upto_abi,
            "PERMIT2",
            UptoProxy::PERMIT2Call::SELECTOR,
            hex!("6afdd850"),
        ),
    ] {
        assert_eq!(bound, spec, "{name} binding");
        assert_eq!(by_name(abi, name), [spec], "{name} compiled");
    }
    assert_eq!(
        ISmartWallet::isValidSignatureCall::SELECTOR,
        ERC1271_MAGIC.0
    );

    // The compiled contracts expose exactly what the bindings declare: the facilitator's
    // (`x402_evm`) plus the test-only extras.
    let extras = (
        IX402ProxyExtras::IX402ProxyExtrasCalls::SELECTORS,
        IX402ProxyExtras::IX402ProxyExtrasErrors::SELECTORS,
        IX402ProxyExtras::IX402ProxyExtrasEvents::SELECTORS,
    );
    for (file, abi, calls, errors, events) in [
        (
            EXACT_PROXY_ARTIFACT,
            &exact_abi,
            [ExactProxy::IExactPermit2ProxyCalls::SELECTORS, extras.0].concat(),
            [ExactError::SELECTORS, extras.1].concat(),
            [ExactProxy::IExactPermit2ProxyEvents::SELECTORS, extras.2].concat(),
        ),
        (
            UPTO_PROXY_ARTIFACT,
            &upto_abi,
            [UptoProxy::IUptoPermit2ProxyCalls::SELECTORS, extras.0].concat(),
            [UptoError::SELECTORS, extras.1].concat(),
            [UptoProxy::IUptoPermit2ProxyEvents::SELECTORS, extras.2].concat(),
        ),
    ] {
        assert_eq!(
            abi_selectors(abi),
            (
                sorted(calls),
                sorted(errors),
                sorted(events.into_iter().map(B256::from).collect()),
            ),
            "{file} ABI vs bindings"
        );
    }
    for (file, calls) in [
        (
            SMART_WALLET_ARTIFACT,
            ISmartWallet::ISmartWalletCalls::SELECTORS,
        ),
        (
            WALLET_FACTORY_ARTIFACT,
            IWalletFactory::IWalletFactoryCalls::SELECTORS,
        ),
    ] {
        assert_eq!(
            abi_selectors(&compiled_abi(file)).0,
            sorted(calls.to_vec()),
            "{file}"
        );
    }
    // The Permit2 entry point the proxies call.
    let permit2_abi = compiled_abi("Permit2.json");
    assert!(
        by_name(&permit2_abi, "permitWitnessTransferFrom").contains(&hex!("137c29fe")),
        "Permit2 lacks permitWitnessTransferFrom 0x137c29fe"
    );
    // Events of §4.
    assert_eq!(ExactProxy::Settled::SIGNATURE, "Settled()");
    assert_eq!(
        UptoProxy::SettledWithPermit::SIGNATURE,
        "SettledWithPermit()"
    );

    // §4 canonical addresses and magic values: the facilitator's constants, which the tests use.
    for (name, constant, spec) in [
        (
            "Permit2",
            PERMIT2_ADDRESS,
            address!("0x000000000022D473030F116dDEE9F6B43aC78BA3"),
        ),
        (
            "exact proxy",
            EXACT_PERMIT2_PROXY,
            address!("0x402085c248EeA27D92E8b30b2C58ed07f9E20001"),
        ),
        (
            "upto proxy",
            UPTO_PERMIT2_PROXY,
            address!("0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002"),
        ),
        (
            "Multicall3",
            MULTICALL3,
            address!("0xcA11bde05977b3631167028862bE2a173976CA11"),
        ),
    ] {
        assert_eq!(constant, spec, "{name}");
    }
    assert_eq!(
        ERC6492_MAGIC,
        b256!("0x6492649264926492649264926492649264926492649264926492649264926492")
    );
    assert_eq!(ERC1271_MAGIC, fixed_bytes!("0x1626ba7e"));

    // §4 type hashes against the Rust EIP-712 structs.
    assert_eq!(
        keccak256("TokenPermissions(address token,uint256 amount)"),
        b256!("0x618358ac3db8dc274f0cd8829da7e234bd48cd73c4a740aede1adec9846d06a1")
    );
    let tp = exact::TokenPermissions {
        token: Address::ZERO,
        amount: U256::ZERO,
    };
    assert_eq!(
        tp.eip712_type_hash(),
        b256!("0x618358ac3db8dc274f0cd8829da7e234bd48cd73c4a740aede1adec9846d06a1")
    );
    assert_eq!(
        exact::Witness::eip712_encode_type(),
        "Witness(address to,uint256 validAfter)"
    );
    // Permit2 hashes `stub ‖ witnessTypeString`; the Rust full type must be exactly that.
    let stub = "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,";
    assert_eq!(
        exact::PermitWitnessTransferFrom::eip712_encode_type(),
        format!("{stub}{EXACT_WITNESS_TYPE_STRING}")
    );
    assert_eq!(
        upto::PermitWitnessTransferFrom::eip712_encode_type(),
        format!("{stub}{UPTO_WITNESS_TYPE_STRING}")
    );
    for (encode_type, type_hash) in [
        (
            exact::Witness::eip712_encode_type(),
            b256!("0xd97b3239a7f32295517bd14cb074edfdd188dfe5eb42f802bb26d4fd1eb12c37"),
        ),
        (
            upto::Witness::eip712_encode_type(),
            b256!("0xd4171c445a74218b01d4fd8af34ff1106580ea1e36ff837e64484bfaa2253b75"),
        ),
        (
            exact::PermitWitnessTransferFrom::eip712_encode_type(),
            b256!("0xebc156cd23678a74c94df13d772ef5478420637f0c94bd10d509e1dc98f521c7"),
        ),
        (
            upto::PermitWitnessTransferFrom::eip712_encode_type(),
            b256!("0x51dff6974ad4388c499e7fcfe838d2bd767162553a144098ce20ea661d70c2ee"),
        ),
        (
            eip2612::Permit::eip712_encode_type(),
            b256!("0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9"),
        ),
    ] {
        assert_eq!(
            keccak256(encode_type.as_bytes()),
            type_hash,
            "{encode_type}"
        );
    }
    assert_eq!(
        permit2_domain(1).type_hash(),
        b256!("0x8cad95687ba82c2ce50e74f7b754645e5117c3a5bec8151c0726d5857980a866")
    );
}

/// Asserts a §6.2 vector: `message`'s struct hash, its digest in `domain`, and `key`'s signature.
fn assert_vector<T: SolStruct>(
    key: &PrivateKeySigner,
    message: &T,
    domain: &Eip712Domain,
    hash_struct: B256,
    digest: B256,
    signature: Bytes,
) {
    assert_eq!(message.eip712_hash_struct(), hash_struct);
    assert_eq!(message.eip712_signing_hash(domain), digest);
    assert_eq!(sign_eip712(key, message, domain), signature);
}

#[test]
fn eip712_vectors_b_c_d_reproduce() {
    let key: PrivateKeySigner = DEV_ACCOUNT_0_KEY.parse().unwrap();
    assert_eq!(
        key.address(),
        address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
    );
    let domain = permit2_domain(84532);
    assert_eq!(
        domain.separator(),
        b256!("0x010f27a92fb9a32622f44f001dc4d15706a85b33499cfc2ce9033113ab26592c")
    );

    // B: exact.
    let nonce_b: U256 =
        "33247007178036348590600198031289925668252061821958005840077069883511451257277"
            .parse()
            .unwrap();
    let b = exact_payment(
        VECTOR_USDC,
        U256::from(10_000u64),
        VECTOR_PAY_TO,
        nonce_b,
        1_740_672_154,
        1_740_672_089,
    );
    assert_eq!(b.spender, EXACT_PERMIT2_PROXY);
    assert_vector(
        &key,
        &b,
        &domain,
        b256!("0xf9efd2ab5ec37a11f062cfbde5dd2654b11aa7c03eedbac1f9bf0efd67b2d8b4"),
        b256!("0x21528e1468aac114016416353e2309329f217dc180b21baa1d81cde941095685"),
        bytes!(
            "0x3b029ad182a14cdb81c9eb44f935279e124e88afdc4043ed1183345aba6781b95cd297107e2808d8ea2722260e88856b5a13a6db23e38a30e2604dca9e1ce1da1b"
        ),
    );

    // C: upto.
    let nonce_c = U256::from_be_bytes(
        b256!("0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480").0,
    );
    assert_eq!(
        nonce_c.to_string(),
        "110117680976134290040645500446194905769275902069351365960831693135107775870080"
    );
    let c = upto_payment(
        VECTOR_USDC,
        U256::from(5_000_000u64),
        VECTOR_PAY_TO,
        VECTOR_FACILITATOR,
        nonce_c,
        1_740_672_154,
        1_740_672_089,
    );
    assert_eq!(c.spender, UPTO_PERMIT2_PROXY);
    assert_vector(
        &key,
        &c,
        &domain,
        b256!("0x1c0d8ef743beaec4d4f23b41537ddbd10564a2ef2b958a4d8ca06e6cd89ef3a0"),
        b256!("0xe44c6ecda145ae2488d7502b1fb059262755472e60a0cb060b82806662be52f2"),
        bytes!(
            "0x3433d762a5ee8e40a33a489a4ad695af362e5054e1e0e7a8f6599c21d38e536c23f8ebc6800c001e0d9ca2b44850892d62e5e861c0799dabbb9a2f638692c45c1c"
        ),
    );
    // Witness-type confusion (S47): the same fields under the other scheme's types sign another
    // digest.
    assert_ne!(
        b.eip712_signing_hash(&domain),
        exact::PermitWitnessTransferFrom {
            spender: UPTO_PERMIT2_PROXY,
            ..b.clone()
        }
        .eip712_signing_hash(&domain)
    );

    // D: EIP-2612 permit for Permit2 on Base Sepolia USDC.
    let usdc_domain = eip3009_domain("USDC", "2", 84532, VECTOR_USDC);
    assert_eq!(
        usdc_domain.separator(),
        b256!("0x71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818")
    );
    let d = eip2612::Permit {
        owner: key.address(),
        spender: PERMIT2_ADDRESS,
        value: U256::from(10_000u64),
        nonce: U256::ZERO,
        deadline: U256::from(1_740_672_154u64),
    };
    assert_vector(
        &key,
        &d,
        &usdc_domain,
        b256!("0x8fcffe6acf63aea1d47e9fe219fe840fde79712537855060987a13049284b175"),
        b256!("0x1c25b6b46b1ee22f6e14a51eba91506430a2c75c45c7910aa0f7e13b686b35a6"),
        bytes!(
            "0x69baca18f0761582a372da88d9d0ff9b81123913755d3aa5f2d8eaa97315f5a53fe41fe1a9f546e105cbc3de0e0f5e1962207eda86ddee33eec0d57abaa1ac741b"
        ),
    );
}

#[tokio::test]
async fn proxies_at_the_canonical_addresses_point_at_permit2() {
    let bed = EvmTestBed::start().await;
    place_x402_proxies(&bed).await;
    let provider = bed.provider();
    for proxy in [EXACT_PERMIT2_PROXY, UPTO_PERMIT2_PROXY] {
        assert!(!provider.get_code_at(proxy).await.unwrap().is_empty());
    }
    assert_eq!(
        exact_proxy(&bed).PERMIT2().call().await.unwrap(),
        PERMIT2_ADDRESS
    );
    assert_eq!(
        upto_proxy(&bed).PERMIT2().call().await.unwrap(),
        PERMIT2_ADDRESS
    );
    for (proxy, type_string, type_hash) in [
        (
            EXACT_PERMIT2_PROXY,
            EXACT_WITNESS_TYPE_STRING,
            exact::Witness {
                to: Address::ZERO,
                validAfter: U256::ZERO,
            }
            .eip712_type_hash(),
        ),
        (
            UPTO_PERMIT2_PROXY,
            UPTO_WITNESS_TYPE_STRING,
            upto::Witness {
                to: Address::ZERO,
                facilitator: Address::ZERO,
                validAfter: U256::ZERO,
            }
            .eip712_type_hash(),
        ),
    ] {
        let extras = proxy_extras(&bed, proxy);
        assert_eq!(
            extras.WITNESS_TYPE_STRING().call().await.unwrap(),
            type_string
        );
        assert_eq!(extras.WITNESS_TYPEHASH().call().await.unwrap(), type_hash);
    }
}

/// USDC balances of `accounts`.
async fn balances(bed: &EvmTestBed, accounts: &[Address]) -> Vec<U256> {
    let mut out = Vec::with_capacity(accounts.len());
    for a in accounts {
        out.push(bed.usdc_balance(*a).await);
    }
    out
}

/// Whether bit `nonce` of `owner`'s Permit2 unordered-nonce bitmap is set.
async fn nonce_used(bed: &EvmTestBed, owner: Address, nonce: U256) -> bool {
    let word = bed
        .permit2_contract()
        .nonceBitmap(owner, nonce >> 8)
        .call()
        .await
        .unwrap();
    let bit = nonce.byte(0);
    word.bit(usize::from(bit))
}

/// Asserts `receipt` holds exactly one USDC `Transfer(from → to, value)` and the proxy event
/// `event_sig` from `proxy`, and used less gas than the reference's bundled-settle limit.
fn assert_paid(
    bed: &EvmTestBed,
    receipt: &TransactionReceipt,
    (from, to, value): (Address, Address, U256),
    proxy: Address,
    event_sig: B256,
) {
    // The reference sends bundled settles with a fixed 300,000 gas limit (x402-spec.md §3.2).
    assert!(
        receipt.gas_used < 300_000,
        "settle used {} gas",
        receipt.gas_used
    );
    let transfers: Vec<_> = receipt
        .logs()
        .iter()
        .filter(|l| l.address() == bed.usdc() && l.topic0() == Some(&Transfer::SIGNATURE_HASH))
        .map(|l| l.log_decode::<Transfer>().unwrap().inner.data)
        .collect();
    assert_eq!(transfers.len(), 1, "USDC transfers in {receipt:?}");
    assert_eq!(
        (transfers[0].from, transfers[0].to, transfers[0].value),
        (from, to, value)
    );
    assert_eq!(
        receipt
            .logs()
            .iter()
            .filter(|l| l.address() == proxy && l.topic0() == Some(&event_sig))
            .count(),
        1,
        "proxy event {event_sig} in {receipt:?}"
    );
}

/// A bed with the proxies placed and buyer #0 letting Permit2 move all its USDC.
async fn bed_with_approving_buyer() -> EvmTestBed {
    let bed = EvmTestBed::start().await;
    place_x402_proxies(&bed).await;
    bed.approve_usdc(bed.buyer(0).address, PERMIT2_ADDRESS, U256::MAX)
        .await;
    bed
}

/// An exact payment of `amount` of the bed's USDC to `to` under `nonce`, valid from ten minutes
/// before `now` until five minutes after.
fn exact_paying(
    bed: &EvmTestBed,
    amount: U256,
    to: Address,
    nonce: U256,
    now: u64,
) -> exact::PermitWitnessTransferFrom {
    exact_payment(bed.usdc(), amount, to, nonce, now + 300, now - 600)
}

/// An upto payment of at most `max` of the bed's USDC to `to`, settled by `facilitator`, under
/// `nonce`, valid from ten minutes before `now` until five minutes after.
fn upto_paying(
    bed: &EvmTestBed,
    max: U256,
    to: Address,
    facilitator: Address,
    nonce: U256,
    now: u64,
) -> upto::PermitWitnessTransferFrom {
    upto_payment(
        bed.usdc(),
        max,
        to,
        facilitator,
        nonce,
        now + 300,
        now - 600,
    )
}

/// Asserts `result` reverted with the custom error `expected` (a selector), decoded as one of the
/// errors `E`.
fn assert_reverts_with<E: SolInterface, T>(
    result: Result<T, alloy::contract::Error>,
    expected: [u8; 4],
    what: &str,
) {
    let err: E = revert(result, what);
    assert_eq!(err.selector(), expected, "{what}: another error");
}

#[tokio::test]
async fn exact_settle_moves_exactly_the_permitted_amount_once() {
    let bed = bed_with_approving_buyer().await;
    let buyer = bed.buyer(0);
    let pay_to = bed.seller().address;
    let facilitator = bed.facilitator().address;

    let now = latest_timestamp(&bed).await;
    let amount = U256::from(10_000u64);
    let nonce = U256::from(0x402_0001u64);
    let message = exact_paying(&bed, amount, pay_to, nonce, now);
    let signature = sign_eip712(&buyer.signer, &message, &bed.permit2_domain());
    let proxy = exact_proxy(&bed);
    let settle = || {
        proxy
            .settle(
                message.transfer_permit(),
                buyer.address,
                message.proxy_witness(),
                signature.clone(),
            )
            .from(facilitator)
    };

    let watched = [buyer.address, pay_to, facilitator, EXACT_PERMIT2_PROXY];
    let before = balances(&bed, &watched).await;
    settle().call().await.expect("simulation of a valid settle");
    assert!(!nonce_used(&bed, buyer.address, nonce).await);
    let receipt = bed
        .send(settle().into_transaction_request(), "exact settle")
        .await;
    assert_paid(
        &bed,
        &receipt,
        (buyer.address, pay_to, amount),
        EXACT_PERMIT2_PROXY,
        ExactProxy::Settled::SIGNATURE_HASH,
    );
    let after = balances(&bed, &watched).await;
    assert_eq!(after[0], before[0] - amount, "buyer");
    assert_eq!(after[1], before[1] + amount, "payTo");
    assert_eq!(after[2], before[2], "facilitator");
    assert_eq!(after[3], U256::ZERO, "the proxy keeps nothing");
    assert!(nonce_used(&bed, buyer.address, nonce).await);

    // Replaying the same signed payment fails in Permit2 and moves nothing.
    assert_reverts_with::<P2, _>(
        settle().call().await,
        IPermit2Errors::InvalidNonce::SELECTOR,
        "replayed settle",
    );
    assert!(
        bed.provider()
            .send_transaction(settle().into_transaction_request())
            .await
            .is_err(),
        "a replay must not even be accepted for broadcast (gas estimation reverts)"
    );
    assert_eq!(balances(&bed, &watched).await, after);
}

#[tokio::test]
async fn exact_settle_rejects_what_the_signature_or_the_proxy_forbids() {
    let bed = bed_with_approving_buyer().await;
    let buyer = bed.buyer(0);
    let pay_to = bed.seller().address;
    let facilitator = bed.facilitator().address;
    let proxy = exact_proxy(&bed);
    let domain = bed.permit2_domain();
    let now = latest_timestamp(&bed).await;
    let amount = U256::from(25_000u64);
    let watched = [buyer.address, bed.buyer(1).address, pay_to];
    let before = balances(&bed, &watched).await;

    let payment = |nonce: u64, amount: U256, to: Address, deadline: u64, valid_after: u64| {
        exact_payment(
            bed.usdc(),
            amount,
            to,
            U256::from(nonce),
            deadline,
            valid_after,
        )
    };
    // (message, owner, witness actually submitted, signer) → the revert of an eth_call settle.
    let attempt = async |m: &exact::PermitWitnessTransferFrom,
                         owner: Address,
                         witness: permit2::ExactWitness,
                         signer: &PrivateKeySigner| {
        let signature = sign_eip712(signer, m, &domain);
        proxy
            .settle(m.transfer_permit(), owner, witness, signature)
            .from(facilitator)
            .call()
            .await
    };

    let ok = payment(3, amount, pay_to, now + 300, now - 600);
    // Proxy checks.
    for (what, message, owner, expected) in [
        (
            "validAfter in the future",
            payment(1, amount, pay_to, now + 7200, now + 3600),
            buyer.address,
            ExactProxy::PaymentTooEarly::SELECTOR,
        ),
        (
            "amount 0",
            payment(2, U256::ZERO, pay_to, now + 300, now - 600),
            buyer.address,
            ExactProxy::InvalidAmount::SELECTOR,
        ),
        (
            "owner 0",
            ok.clone(),
            Address::ZERO,
            ExactProxy::InvalidOwner::SELECTOR,
        ),
        (
            "to 0",
            payment(4, amount, Address::ZERO, now + 300, now - 600),
            buyer.address,
            ExactProxy::InvalidDestination::SELECTOR,
        ),
    ] {
        let result = attempt(&message, owner, message.proxy_witness(), &buyer.signer).await;
        assert_reverts_with::<ExactError, _>(result, expected, what);
    }

    // Permit2 checks: the signature binds the recipient, the owner, the deadline and the spender
    // (a signature for the other proxy does not verify here).
    let redirected = permit2::ExactWitness {
        to: bed.spare_accounts()[0].address,
        ..ok.proxy_witness()
    };
    let expired = payment(5, amount, pay_to, now - 1, now - 600);
    let for_upto = exact::PermitWitnessTransferFrom {
        spender: UPTO_PERMIT2_PROXY,
        ..payment(6, amount, pay_to, now + 300, now - 600)
    };
    for (what, message, owner, witness, expected) in [
        (
            "witness.to changed after signing",
            &ok,
            buyer.address,
            redirected,
            IPermit2Errors::InvalidSigner::SELECTOR,
        ),
        (
            "owner is not the signer",
            &ok,
            bed.buyer(1).address,
            ok.proxy_witness(),
            IPermit2Errors::InvalidSigner::SELECTOR,
        ),
        (
            "deadline passed",
            &expired,
            buyer.address,
            expired.proxy_witness(),
            IPermit2Errors::SignatureExpired::SELECTOR,
        ),
        (
            "spender = upto proxy",
            &for_upto,
            buyer.address,
            for_upto.proxy_witness(),
            IPermit2Errors::InvalidSigner::SELECTOR,
        ),
    ] {
        let result = attempt(message, owner, witness, &buyer.signer).await;
        assert_reverts_with::<P2, _>(result, expected, what);
    }

    // No allowance to Permit2: the token transfer inside Permit2 fails.
    let other = bed.buyer(1);
    let no_allowance = payment(7, amount, pay_to, now + 300, now - 600);
    let result = attempt(
        &no_allowance,
        other.address,
        no_allowance.proxy_witness(),
        &other.signer,
    )
    .await;
    let Err(error) = result else {
        panic!("settle without allowance succeeded")
    };
    let message = error.to_string();
    assert!(message.contains("TRANSFER_FROM_FAILED"), "{message}");

    assert_eq!(balances(&bed, &watched).await, before, "nothing moved");

    // The exact proxy has no caller binding (threat model S31): anyone may submit a valid payment,
    // and the funds still go only to the signed recipient.
    let anyone = bed.spare_accounts()[1].address;
    let signature = sign_eip712(&buyer.signer, &ok, &domain);
    let tx = proxy
        .settle(
            ok.transfer_permit(),
            buyer.address,
            ok.proxy_witness(),
            signature,
        )
        .from(anyone)
        .into_transaction_request();
    bed.send(tx, "exact settle by a third party").await;
    let after = balances(&bed, &watched).await;
    assert_eq!(after[0], before[0] - amount);
    assert_eq!(after[2], before[2] + amount);
}

#[tokio::test]
async fn upto_settles_the_requested_amount_only_from_the_named_facilitator() {
    let bed = bed_with_approving_buyer().await;
    let buyer = bed.buyer(0);
    let pay_to = bed.seller().address;
    let facilitator = bed.facilitator().address;
    let stranger = bed.spare_accounts()[0].address;
    let now = latest_timestamp(&bed).await;
    let max = U256::from(1_000_000u64);
    let nonce = U256::from(0x402_0002u64);
    let message = upto_paying(&bed, max, pay_to, facilitator, nonce, now);
    let signature = sign_eip712(&buyer.signer, &message, &bed.permit2_domain());
    let proxy = upto_proxy(&bed);
    let settle = |amount: U256, from: Address| {
        proxy
            .settle(
                message.transfer_permit(),
                amount,
                buyer.address,
                message.proxy_witness(),
                signature.clone(),
            )
            .from(from)
    };
    let watched = [
        buyer.address,
        pay_to,
        facilitator,
        stranger,
        UPTO_PERMIT2_PROXY,
    ];
    let before = balances(&bed, &watched).await;

    for (what, amount, from, expected) in [
        (
            "settle from a non-facilitator",
            U256::from(370_000u64),
            stranger,
            UptoProxy::UnauthorizedFacilitator::SELECTOR,
        ),
        (
            "amount above the maximum",
            max + U256::from(1u64),
            facilitator,
            UptoProxy::AmountExceedsPermitted::SELECTOR,
        ),
        (
            "amount 2^256-1",
            U256::MAX,
            facilitator,
            UptoProxy::AmountExceedsPermitted::SELECTOR,
        ),
        (
            "amount 0",
            U256::ZERO,
            facilitator,
            UptoProxy::InvalidAmount::SELECTOR,
        ),
    ] {
        assert_reverts_with::<UptoError, _>(settle(amount, from).call().await, expected, what);
    }
    // The exact proxy cannot use an upto signature (witness-type confusion, S47).
    assert_reverts_with::<P2, _>(
        exact_proxy(&bed)
            .settle(
                message.transfer_permit(),
                buyer.address,
                permit2::ExactWitness {
                    to: pay_to,
                    validAfter: message.witness.validAfter,
                },
                signature.clone(),
            )
            .from(facilitator)
            .call()
            .await,
        IPermit2Errors::InvalidSigner::SELECTOR,
        "upto signature on the exact proxy",
    );
    assert_eq!(balances(&bed, &watched).await, before, "nothing moved yet");

    let amount = U256::from(370_000u64);
    let receipt = bed
        .send(
            settle(amount, facilitator).into_transaction_request(),
            "upto settle",
        )
        .await;
    assert_eq!(receipt.from, facilitator);
    assert_paid(
        &bed,
        &receipt,
        (buyer.address, pay_to, amount),
        UPTO_PERMIT2_PROXY,
        UptoProxy::Settled::SIGNATURE_HASH,
    );
    let after = balances(&bed, &watched).await;
    assert_eq!(after[0], before[0] - amount, "buyer pays exactly 370000");
    assert_eq!(after[1], before[1] + amount, "payTo");
    assert_eq!(after[2..], before[2..], "facilitator, stranger, proxy");

    // The first settlement consumed the nonce: the rest of the maximum cannot be taken later.
    assert_reverts_with::<P2, _>(
        settle(max - amount, facilitator).call().await,
        IPermit2Errors::InvalidNonce::SELECTOR,
        "second settle of the same authorization",
    );
    assert_eq!(balances(&bed, &watched).await, after);
}

#[tokio::test]
async fn settle_with_permit_grants_the_allowance_in_the_same_transaction() {
    let bed = EvmTestBed::start().await;
    place_x402_proxies(&bed).await;
    let pay_to = bed.seller().address;
    let facilitator = bed.facilitator().address;
    let usdc = bed.usdc_contract();
    let domain = bed.permit2_domain();
    let proxy = exact_proxy(&bed);
    let now = latest_timestamp(&bed).await;
    let amount = U256::from(42_000u64);
    let permit2_allowance =
        async |owner: Address| usdc.allowance(owner, PERMIT2_ADDRESS).call().await.unwrap();
    // An exact payment of `amount` by `buyer` under `nonce`: the message, its signature and an
    // EIP-2612 permit of the same amount for Permit2.
    let signed_with_permit = async |buyer: &PrivateKeySigner, nonce: u64| {
        let message = exact_paying(&bed, amount, pay_to, U256::from(nonce), now);
        let signature = sign_eip712(buyer, &message, &domain);
        let permit2612 = permit_for_permit2(&bed, buyer, amount, now + 300).await;
        (message, signature, permit2612)
    };
    // Sends `buyer`'s signed payment through `settleWithPermit` from the facilitator and asserts
    // it paid `amount` to `pay_to` with the `SettledWithPermit` event.
    let settle_with_permit = async |buyer: Address,
                                    (message, signature, permit2612): (
        exact::PermitWitnessTransferFrom,
        Bytes,
        EIP2612Permit,
    ),
                                    what: &str| {
        let tx = proxy
            .settleWithPermit(
                permit2612,
                message.transfer_permit(),
                buyer,
                message.proxy_witness(),
                signature,
            )
            .from(facilitator)
            .into_transaction_request();
        let receipt = bed.send(tx, what).await;
        assert_paid(
            &bed,
            &receipt,
            (buyer, pay_to, amount),
            EXACT_PERMIT2_PROXY,
            ExactProxy::SettledWithPermit::SIGNATURE_HASH,
        );
        receipt
    };

    // Buyer 0 has no allowance to Permit2; the attached permit provides it.
    let buyer = bed.buyer(0);
    assert_eq!(permit2_allowance(buyer.address).await, U256::ZERO);
    let payment = signed_with_permit(&buyer.signer, 11).await;
    let (message, signature, permit2612) = &payment;
    let mismatched = EIP2612Permit {
        value: amount + U256::from(1u64),
        ..permit2612.clone()
    };
    assert_reverts_with::<ExactError, _>(
        proxy
            .settleWithPermit(
                mismatched,
                message.transfer_permit(),
                buyer.address,
                message.proxy_witness(),
                signature.clone(),
            )
            .from(facilitator)
            .call()
            .await,
        ExactProxy::Permit2612AmountMismatch::SELECTOR,
        "permit value != permitted amount",
    );

    let before = balances(&bed, &[buyer.address, pay_to]).await;
    settle_with_permit(buyer.address, payment, "exact settleWithPermit").await;
    assert_eq!(
        balances(&bed, &[buyer.address, pay_to]).await,
        [before[0] - amount, before[1] + amount]
    );
    assert_eq!(
        permit2_allowance(buyer.address).await,
        U256::ZERO,
        "Permit2 used exactly the permitted allowance"
    );

    // Buyer 1: a third party submits the permit first (S41 griefing); the settlement still goes
    // through and the proxy logs the failed permit call.
    let buyer = bed.buyer(1);
    let payment = signed_with_permit(&buyer.signer, 12).await;
    let permit2612 = &payment.2;
    let front_run = usdc
        .permit(
            buyer.address,
            PERMIT2_ADDRESS,
            amount,
            permit2612.deadline,
            permit2612.v,
            permit2612.r,
            permit2612.s,
        )
        .from(bed.spare_accounts()[0].address)
        .into_transaction_request();
    bed.send(front_run, "front-running permit").await;
    let receipt = settle_with_permit(
        buyer.address,
        payment,
        "exact settleWithPermit after a front-run permit",
    )
    .await;
    let failed: Vec<_> = receipt
        .logs()
        .iter()
        .filter_map(|l| {
            l.log_decode::<IX402ProxyExtras::EIP2612PermitFailedWithReason>()
                .ok()
        })
        .map(|l| l.inner.data)
        .collect();
    assert_eq!(failed.len(), 1, "{receipt:?}");
    assert_eq!(
        (failed[0].token, failed[0].owner),
        (bed.usdc(), buyer.address)
    );
    assert!(!failed[0].reason.is_empty());

    // upto: the permit covers the maximum, the settlement takes less.
    let buyer = bed.buyer(2);
    let max = U256::from(90_000u64);
    let charge = U256::from(35_000u64);
    let message = upto_paying(&bed, max, pay_to, facilitator, U256::from(13u64), now);
    let signature = sign_eip712(&buyer.signer, &message, &domain);
    let permit2612 = permit_for_permit2(&bed, &buyer.signer, max, now + 300).await;
    let tx = upto_proxy(&bed)
        .settleWithPermit(
            permit2612,
            message.transfer_permit(),
            charge,
            buyer.address,
            message.proxy_witness(),
            signature,
        )
        .from(facilitator)
        .into_transaction_request();
    let receipt = bed.send(tx, "upto settleWithPermit").await;
    assert_paid(
        &bed,
        &receipt,
        (buyer.address, pay_to, charge),
        UPTO_PERMIT2_PROXY,
        UptoProxy::SettledWithPermit::SIGNATURE_HASH,
    );
    assert_eq!(permit2_allowance(buyer.address).await, max - charge);
}

#[tokio::test]
async fn factory_wallets_validate_only_their_owners_signatures() {
    let bed = EvmTestBed::start().await;
    let factory_address = deploy_wallet_factory(&bed).await;
    let factory = wallet_factory(&bed, factory_address);
    let owner = &bed.spare_accounts()[0];
    let other = &bed.spare_accounts()[1];
    let salt = B256::with_last_byte(7);

    // predict() is CREATE2 over the wallet's creation code and the owner.
    let predicted = factory.predict(owner.address, salt).call().await.unwrap();
    let artifact = tools::read_json(&tools::contracts_dir(), SMART_WALLET_ARTIFACT);
    let mut init_code = hex::decode(artifact["bytecode"].as_str().unwrap()).unwrap();
    init_code.extend_from_slice(owner.address.into_word().as_slice());
    assert_eq!(
        predicted,
        factory_address.create2(salt, keccak256(&init_code))
    );
    assert_ne!(
        predicted,
        factory.predict(other.address, salt).call().await.unwrap()
    );
    assert_ne!(
        predicted,
        factory
            .predict(owner.address, B256::with_last_byte(8))
            .call()
            .await
            .unwrap()
    );
    assert!(
        bed.provider()
            .get_code_at(predicted)
            .await
            .unwrap()
            .is_empty(),
        "counterfactual before deploy"
    );

    let wallet_address = deploy_wallet(&bed, factory_address, owner.address, salt).await;
    assert_eq!(wallet_address, predicted);
    // deploy is idempotent (ERC-6492 verifiers may replay the factory call).
    assert_eq!(
        factory
            .deploy_call(owner.address, salt)
            .call()
            .await
            .unwrap(),
        predicted
    );
    bed.send(
        factory
            .deploy_call(owner.address, salt)
            .into_transaction_request()
            .from(bed.deployer().address),
        "second deploy",
    )
    .await;

    let wallet = smart_wallet(&bed, wallet_address);
    assert_eq!(wallet.owner().call().await.unwrap(), owner.address);
    let digest = keccak256("x402 ERC-1271 test digest");
    let sign = |key: &PrivateKeySigner| {
        Bytes::from(key.sign_hash_sync(&digest).unwrap().as_bytes().to_vec())
    };
    let by_owner = sign(&owner.signer);
    let by_other = sign(&other.signer);
    let is_valid = async |hash: B256, sig: &Bytes| {
        wallet
            .isValidSignature(hash, sig.clone())
            .call()
            .await
            .unwrap()
    };
    assert_eq!(is_valid(digest, &by_owner).await, ERC1271_MAGIC);
    assert_eq!(is_valid(digest, &by_other).await, ERC1271_INVALID);
    assert_eq!(
        is_valid(keccak256("another digest"), &by_owner).await,
        ERC1271_INVALID
    );
    assert_eq!(
        is_valid(digest, &by_owner.slice(..64)).await,
        ERC1271_INVALID
    );
    assert_eq!(is_valid(digest, &Bytes::new()).await, ERC1271_INVALID);
    // The malleable twin (s' = n - s, v flipped) recovers to the owner but is refused.
    assert_eq!(
        is_valid(digest, &high_s_twin(&by_owner)).await,
        ERC1271_INVALID
    );

    // Only the owner may flip validation; once off, even the owner's signature fails (S34).
    let err: ISmartWallet::ISmartWalletErrors = revert(
        wallet
            .setSignaturesDisabled(true)
            .from(other.address)
            .call()
            .await,
        "flip by a stranger",
    );
    assert!(
        matches!(err, ISmartWallet::ISmartWalletErrors::NotOwner(_)),
        "{err:?}"
    );
    bed.send(
        set_signatures_disabled(&bed, wallet_address, owner.address, true),
        "disable signatures",
    )
    .await;
    assert!(wallet.signaturesDisabled().call().await.unwrap());
    assert_eq!(is_valid(digest, &by_owner).await, ERC1271_INVALID);

    // ERC-6492 wrapping of a signature for a wallet this factory would create.
    let calldata = Bytes::from(
        IWalletFactory::deployCall {
            owner: owner.address,
            salt: B256::with_last_byte(9),
        }
        .abi_encode(),
    );
    let wrapped = erc6492_wrap(factory_address, &calldata, &by_owner);
    assert!(wrapped.ends_with(ERC6492_MAGIC.as_slice()));
    let body = &wrapped[..wrapped.len() - 32];
    let (f, c, s) =
        <(Address, Bytes, Bytes) as alloy::sol_types::SolValue>::abi_decode_params(body).unwrap();
    assert_eq!((f, c, s), (factory_address, calldata, by_owner));
}

#[tokio::test]
async fn a_smart_wallet_pays_through_permit2_until_its_validation_flips() {
    let bed = EvmTestBed::start().await;
    place_x402_proxies(&bed).await;
    let factory = deploy_wallet_factory(&bed).await;
    let owner = &bed.spare_accounts()[0];
    let wallet_address = deploy_wallet(&bed, factory, owner.address, B256::with_last_byte(1)).await;
    let pay_to = bed.seller().address;
    let facilitator = bed.facilitator().address;
    let funded = U256::from(500_000u64);
    bed.mint_usdc(wallet_address, funded).await;
    // The wallet approves Permit2 through `execute`.
    wallet_approves_permit2(&bed, wallet_address, owner.address).await;

    let now = latest_timestamp(&bed).await;
    let amount = U256::from(120_000u64);
    let message = exact_paying(&bed, amount, pay_to, U256::from(77u64), now);
    // The owner's EOA signature over the Permit2 digest; Permit2 asks the wallet (ERC-1271).
    let signature = sign_eip712(&owner.signer, &message, &bed.permit2_domain());
    let proxy = exact_proxy(&bed);
    let settle = || {
        proxy
            .settle(
                message.transfer_permit(),
                wallet_address,
                message.proxy_witness(),
                signature.clone(),
            )
            .from(facilitator)
    };
    settle()
        .call()
        .await
        .expect("valid while the wallet validates");

    let flip = |disabled| set_signatures_disabled(&bed, wallet_address, owner.address, disabled);
    bed.send(flip(true), "flip off").await;
    assert_reverts_with::<P2, _>(
        settle().call().await,
        IPermit2Errors::InvalidContractSignature::SELECTOR,
        "settle after the flip",
    );
    assert_eq!(bed.usdc_balance(wallet_address).await, funded);

    bed.send(flip(false), "flip on").await;
    let receipt = bed
        .send(settle().into_transaction_request(), "smart-wallet settle")
        .await;
    assert_paid(
        &bed,
        &receipt,
        (wallet_address, pay_to, amount),
        EXACT_PERMIT2_PROXY,
        ExactProxy::Settled::SIGNATURE_HASH,
    );
    assert_eq!(bed.usdc_balance(wallet_address).await, funded - amount);
    assert_eq!(bed.usdc_balance(owner.address).await, U256::ZERO);
}
