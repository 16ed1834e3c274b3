//! The ERC-1271 smart wallet and its CREATE2 factory (ERC-6492), and a wallet paying through
//! Permit2 until its validation flips.

use alloy::primitives::{Address, B256, Bytes, U256, hex, keccak256};
use alloy::providers::Provider;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolError, SolEvent};
use x402_tests::evm::EvmTestBed;
use x402_tests::evm::x402::IExactPermit2Proxy::{self as ExactProxy};
use x402_tests::evm::x402::{
    ERC1271_INVALID, ERC1271_MAGIC, ERC6492_MAGIC, EXACT_PERMIT2_PROXY, IPermit2Errors,
    ISmartWallet, IWalletFactory, ProxyArgs as _, SMART_WALLET_ARTIFACT, deploy_wallet,
    deploy_wallet_factory, erc6492_wrap, exact_proxy, high_s_twin, latest_timestamp,
    place_x402_proxies, set_signatures_disabled, sign_eip712, smart_wallet,
    wallet_approves_permit2, wallet_factory,
};
use x402_tests::tools;

use super::{P2, assert_paid, assert_reverts_with, exact_paying, revert};

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
