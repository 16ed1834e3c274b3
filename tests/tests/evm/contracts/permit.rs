//! `settleWithPermit`: an EIP-2612 permit grants Permit2 the allowance in the same transaction.

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolError, SolEvent};
use x402_tests::evm::x402::IExactPermit2Proxy::{
    self as ExactProxy, IExactPermit2ProxyErrors as ExactError,
};
use x402_tests::evm::x402::IUptoPermit2Proxy::{self as UptoProxy};
use x402_tests::evm::x402::{
    EIP2612Permit, EXACT_PERMIT2_PROXY, IX402ProxyExtras, ProxyArgs as _, UPTO_PERMIT2_PROXY,
    exact, exact_proxy, latest_timestamp, permit_for_permit2, place_x402_proxies, sign_eip712,
    upto_proxy,
};
use x402_tests::evm::{EvmTestBed, PERMIT2_ADDRESS};

use super::{assert_paid, assert_reverts_with, balances, exact_paying, upto_paying};

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
