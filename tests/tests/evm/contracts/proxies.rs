//! The exact and upto Permit2 proxies at their canonical addresses: each settle moves exactly
//! what was permitted, once, and everything the signature or the proxy forbids reverts.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolError, SolEvent, SolStruct};
use x402_tests::evm::x402::IExactPermit2Proxy::{
    self as ExactProxy, IExactPermit2ProxyErrors as ExactError,
};
use x402_tests::evm::x402::IUptoPermit2Proxy::{
    self as UptoProxy, IUptoPermit2ProxyErrors as UptoError,
};
use x402_tests::evm::x402::{
    EXACT_PERMIT2_PROXY, EXACT_WITNESS_TYPE_STRING, IPermit2Errors, ProxyArgs as _,
    UPTO_PERMIT2_PROXY, UPTO_WITNESS_TYPE_STRING, exact, exact_payment, exact_proxy,
    latest_timestamp, permit2, place_x402_proxies, proxy_extras, sign_eip712, upto, upto_proxy,
};
use x402_tests::evm::{EvmTestBed, PERMIT2_ADDRESS};

use super::{
    P2, assert_paid, assert_reverts_with, balances, bed_with_approving_buyer, exact_paying,
    nonce_used, upto_paying,
};

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
