//! The proxies' ABI against x402-spec.md §4 and §3, and the §6.2 EIP-712 vectors B, C and D:
//! Rust bindings, compiled artifacts and the spec agree.

use alloy::json_abi::JsonAbi;
use alloy::primitives::{
    Address, B256, Bytes, U256, address, b256, bytes, fixed_bytes, hex, keccak256,
};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolCall, SolEvent, SolStruct};
use x402_evm::eip712::eip3009_domain;
use x402_tests::anvil::DEV_ACCOUNT_0_KEY;
use x402_tests::evm::x402::IExactPermit2Proxy::{
    self as ExactProxy, IExactPermit2ProxyErrors as ExactError,
};
use x402_tests::evm::x402::IUptoPermit2Proxy::{
    self as UptoProxy, IUptoPermit2ProxyErrors as UptoError,
};
use x402_tests::evm::x402::{
    ERC1271_MAGIC, ERC6492_MAGIC, EXACT_PERMIT2_PROXY, EXACT_PROXY_ARTIFACT,
    EXACT_WITNESS_TYPE_STRING, ISmartWallet, IWalletFactory, IX402ProxyExtras, MULTICALL3,
    SMART_WALLET_ARTIFACT, UPTO_PERMIT2_PROXY, UPTO_PROXY_ARTIFACT, UPTO_WITNESS_TYPE_STRING,
    WALLET_FACTORY_ARTIFACT, eip2612, exact, exact_payment, sign_eip712, upto, upto_payment,
};
use x402_tests::evm::{PERMIT2_ADDRESS, permit2_domain};
use x402_tests::tools;

/// Base Sepolia USDC and the `payTo` of the §6.2 vectors.
const VECTOR_USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
const VECTOR_PAY_TO: Address = address!("0x209693Bc6afc0C5328bA36FaF03C514EF312287C");
const VECTOR_FACILITATOR: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");

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
