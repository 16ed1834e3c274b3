//! EVM on anvil: the official client pays our seller's `upto` and exact v1 routes; our buyer and
//! the `x402` CLI pay an Express seller with exact (EIP-3009, Permit2) and `upto`.

use alloy::primitives::{Address, U256};
use x402_buyer::Policy;
use x402_buyer::cli::Exit;
use x402_core::wire::PaymentRequirements;
use x402_core::{Amount, X402Version};
use x402_tests::e2e::{EXACT_UNITS, NodeScript, Shop, UPTO_MAX_UNITS, UPTO_USED_UNITS, buyer_for};
use x402_tests::evm::{USDC_NAME, USDC_VERSION};

use super::{pay_one, settled, x402};

/// What the Express `upto` route charges, of its maximum [`UPTO_MAX_UNITS`].
const EXPRESS_UPTO_CHARGE: u64 = 12_345;
// Both sellers charge less than the maximum, so a settlement of the maximum would show.
const _: () = assert!(UPTO_USED_UNITS < UPTO_MAX_UNITS && EXPRESS_UPTO_CHARGE < UPTO_MAX_UNITS);

/// The USDC of `who` and of the seller.
async fn balances(shop: &Shop, who: Address) -> (U256, U256) {
    (
        shop.usdc(who).await,
        shop.usdc(shop.h.bed.seller().address).await,
    )
}

/// Asserts that `units` went from `who` to the seller since `before`.
async fn moved(shop: &Shop, who: Address, before: (U256, U256), units: u64, what: &str) {
    let units = U256::from(units);
    assert_eq!(
        balances(shop, who).await,
        (before.0 - units, before.1 + units),
        "{what}"
    );
}

/// The Express seller of flows-express-evm.mjs on the shop's chain, through our facilitator.
async fn express(shop: &Shop) -> (tokio::process::Child, String) {
    let env = [
        ("FACILITATOR_URL", shop.facilitator_url.clone()),
        ("NETWORK", shop.h.network.to_string()),
        ("ASSET", shop.h.bed.usdc().to_checksum(None)),
        ("PAY_TO", shop.h.bed.seller().address.to_checksum(None)),
        ("AMOUNT", EXACT_UNITS.to_string()),
        ("UPTO_MAX", UPTO_MAX_UNITS.to_string()),
        ("UPTO_CHARGE", EXPRESS_UPTO_CHARGE.to_string()),
        ("TOKEN_NAME", USDC_NAME.to_owned()),
        ("TOKEN_VERSION", USDC_VERSION.to_owned()),
    ];
    NodeScript::new("flows-express-evm.mjs").serve(&env).await
}

#[tokio::test]
async fn the_official_client_pays_upto_and_exact_v1_to_our_seller() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let payer = b0.address.to_checksum(None);
    let v1_network = shop.h.network.v1_name().expect("a v1 name");
    let script = NodeScript::new("flows-pay-evm.mjs");
    let env = [
        (
            "X402_INTEROP_KEY",
            format!("0x{}", alloy::hex::encode(b0.signer.to_bytes())),
        ),
        ("X402_INTEROP_V1_NETWORK", v1_network.to_owned()),
    ];

    // upto v2: the client authorizes the maximum; our seller's handler charges less, and only
    // the charge moves.
    let before = balances(&shop, b0.address).await;
    let result = pay_one(&script, &shop.at("/upto"), &env).await;
    let settlement = settled(&result, "PAYMENT-RESPONSE", shop.h.network.as_str());
    assert_eq!(
        settlement["amount"],
        UPTO_USED_UNITS.to_string(),
        "{result}"
    );
    assert_eq!(settlement["payer"], payer.as_str(), "{result}");
    assert_eq!(result["body"], "metered content", "{result}");
    moved(&shop, b0.address, before, UPTO_USED_UNITS, "upto").await;

    // exact v1: the route answers a v1 body only, so the client pays with its v1 scheme client
    // (X-PAYMENT), and the settlement comes back in X-PAYMENT-RESPONSE under the v1 name.
    let before = balances(&shop, b0.address).await;
    let result = pay_one(&script, &shop.at("/v1-only"), &env).await;
    let settlement = settled(&result, "X-PAYMENT-RESPONSE", v1_network);
    assert_eq!(settlement["payer"], payer.as_str(), "{result}");
    assert_eq!(result["body"], "v1 content", "{result}");
    moved(&shop, b0.address, before, EXACT_UNITS, "exact v1").await;
    assert_eq!(shop.counting.calls(), (2, 2));
}

#[tokio::test]
async fn our_buyer_pays_an_express_seller_with_permit2_and_upto() {
    let shop = Shop::start().await;
    let b1 = shop.h.bed.buyer(1).clone();
    let (_server, url) = express(&shop).await;
    let buyer = buyer_for(&shop.h, &b1.signer, Policy::default());

    // exact v2 through Permit2: the requirement names the transfer method and our buyer signs
    // a Permit2 authorization for it.
    let before = balances(&shop, b1.address).await;
    let paid = buyer.get(&format!("{url}/permit2")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let payment = paid.payment.clone().unwrap();
    assert_eq!(payment.version, X402Version::V2);
    let PaymentRequirements::V2(requirements) = &payment.requirements else {
        panic!("v2 requirements")
    };
    let extra: serde_json::Value =
        serde_json::from_str(requirements.extra.as_ref().unwrap().get()).unwrap();
    assert_eq!(extra["assetTransferMethod"], "permit2", "{extra}");
    let settlement = payment.settlement.expect("PAYMENT-RESPONSE");
    assert!(settlement.success, "{settlement:?}");
    assert_eq!(settlement.network, shop.h.network.as_str());
    assert!(settlement.transaction.starts_with("0x"));
    let body: serde_json::Value = paid.response.json().await.unwrap();
    assert_eq!(body["paid"], "permit2", "{body}");
    moved(&shop, b1.address, before, EXACT_UNITS, "permit2").await;

    // upto v2: our buyer authorizes the maximum; the Express handler's settlement override
    // charges less, and only the charge moves.
    let before = balances(&shop, b1.address).await;
    let paid = buyer.get(&format!("{url}/metered")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let payment = paid.payment.clone().unwrap();
    assert_eq!(payment.requirements.scheme(), "upto");
    let settlement = payment.settlement.expect("PAYMENT-RESPONSE");
    assert!(settlement.success, "{settlement:?}");
    assert_eq!(settlement.amount, Some(Amount::from(EXPRESS_UPTO_CHARGE)));
    let body: serde_json::Value = paid.response.json().await.unwrap();
    assert_eq!(body["paid"], "upto", "{body}");
    moved(&shop, b1.address, before, EXPRESS_UPTO_CHARGE, "upto").await;
}

#[tokio::test]
async fn the_cli_pays_an_express_seller() {
    let shop = Shop::start().await;
    let b2 = shop.h.bed.buyer(2).clone();
    let (_server, url) = express(&shop).await;
    let key = format!("0x{}", alloy::hex::encode(b2.signer.to_bytes()));
    let env = [("X402_PRIVATE_KEY", key.clone())];
    let asset = format!("{}:{}:6:USDC", shop.h.network, shop.h.bed.usdc());
    let pay = |path: &str, json: bool| {
        let mut args = vec![
            "pay".to_owned(),
            format!("{url}{path}"),
            "--max".to_owned(),
            "0.05".to_owned(),
            "--asset".to_owned(),
            asset.clone(),
            "--evm-rpc".to_owned(),
            shop.h.bed.anvil().endpoint().to_owned(),
        ];
        if json {
            args.push("--json".to_owned());
        }
        args
    };
    let run = |args: Vec<String>| {
        let env = env.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            x402(&args, &env).await
        }
    };

    // exact v2, EIP-3009, the human report: the body and the settlement on stdout.
    let before = balances(&shop, b2.address).await;
    let (exit, out, err) = run(pay("/eip3009", false)).await;
    assert_eq!((exit, exit.code()), (Exit::Success, 0), "{out}\n{err}");
    assert!(out.contains(r#""paid":"eip3009""#), "{out}");
    assert!(
        out.contains("settlement: success") && out.contains("transaction: 0x"),
        "{out}"
    );
    assert!(err.contains("200 OK"), "{err}");
    assert!(
        !out.contains(&key[2..]) && !err.contains(&key[2..]),
        "the key was printed"
    );
    moved(&shop, b2.address, before, EXACT_UNITS, "eip3009").await;

    // exact v2 through Permit2, and upto (the charge, not the maximum), as --json reports.
    for (path, units, paid) in [
        ("/permit2", EXACT_UNITS, "permit2"),
        ("/metered", EXPRESS_UPTO_CHARGE, "upto"),
    ] {
        let before = balances(&shop, b2.address).await;
        let (exit, out, err) = run(pay(path, true)).await;
        assert_eq!((exit, exit.code()), (Exit::Success, 0), "{out}\n{err}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["status"], 200, "{report}");
        assert_eq!(report["paid"], true, "{report}");
        assert_eq!(report["pending"], false, "{report}");
        let settlement = &report["settlement"];
        assert_eq!(settlement["success"], true, "{report}");
        assert_eq!(settlement["network"], shop.h.network.as_str(), "{report}");
        let body: serde_json::Value =
            serde_json::from_str(report["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["paid"], paid, "{report}");
        if path == "/metered" {
            assert_eq!(settlement["amount"], units.to_string(), "{report}");
        }
        moved(&shop, b2.address, before, units, path).await;
    }
}

/// The official client (`@x402/evm` 2.27 with an `rpcUrl`) signs `eip2612GasSponsoring` permits
/// for a fresh wallet holding USDC and no ETH; our seller and facilitator settle `exact` and
/// `upto` through `settleWithPermit`.
#[tokio::test]
async fn the_official_client_pays_our_sponsoring_seller_from_a_fresh_wallet() {
    use alloy::providers::Provider as _;
    let shop = Shop::start().await;
    let url = x402_tests::e2e::sponsor::sponsoring_seller(&shop).await;
    let wallet = alloy::signers::local::PrivateKeySigner::random();
    let who = wallet.address();
    shop.h.bed.mint_usdc(who, U256::from(1_000_000u64)).await;
    let script = NodeScript::new("flows-pay-evm.mjs");
    let env = [
        (
            "X402_INTEROP_KEY",
            format!("0x{}", alloy::hex::encode(wallet.to_bytes())),
        ),
        (
            "X402_INTEROP_V1_NETWORK",
            shop.h.network.v1_name().expect("a v1 name").to_owned(),
        ),
        ("X402_INTEROP_RPC", shop.h.bed.anvil().endpoint().to_owned()),
    ];
    let nonce = || async {
        x402_evm::abi::eip2612::IEip2612Token::new(shop.h.bed.usdc(), shop.h.bed.provider())
            .nonces(who)
            .call()
            .await
            .unwrap()
    };

    let before = balances(&shop, who).await;
    let result = pay_one(&script, &format!("{url}/exact"), &env).await;
    settled(&result, "PAYMENT-RESPONSE", shop.h.network.as_str());
    assert_eq!(result["body"], "exact, sponsored", "{result}");
    moved(&shop, who, before, EXACT_UNITS, "exact, sponsored").await;
    assert_eq!(nonce().await, U256::from(1), "the permit was used");

    let before = balances(&shop, who).await;
    let result = pay_one(&script, &format!("{url}/upto"), &env).await;
    let settlement = settled(&result, "PAYMENT-RESPONSE", shop.h.network.as_str());
    assert_eq!(
        settlement["amount"],
        UPTO_USED_UNITS.to_string(),
        "{result}"
    );
    moved(&shop, who, before, UPTO_USED_UNITS, "upto, sponsored").await;
    assert_eq!(nonce().await, U256::from(2), "the permit was used");

    let provider = shop.h.bed.provider();
    assert_eq!(provider.get_balance(who).await.unwrap(), U256::ZERO);
    assert_eq!(provider.get_transaction_count(who).await.unwrap(), 0);
}

/// The official client (`@x402/evm` 2.27 with an `rpcUrl`) signs an
/// `erc20ApprovalGasSponsoring` approval for a fresh wallet holding a token without EIP-2612 and
/// no ETH; our facilitator funds its gas, broadcasts it and settles `exact` and then `upto`
/// (which needs no second approval: the reference approves the maximum).
#[tokio::test]
async fn the_official_client_pays_with_a_sponsored_approval_from_a_fresh_wallet() {
    use x402_tests::e2e::approval::ApprovalBed;
    let bed = ApprovalBed::start().await;
    let wallet = bed.fresh_wallet(1_000_000).await;
    let who = wallet.address();
    let script = NodeScript::new("flows-pay-evm.mjs");
    let env = [
        (
            "X402_INTEROP_KEY",
            format!("0x{}", alloy::hex::encode(wallet.to_bytes())),
        ),
        (
            "X402_INTEROP_V1_NETWORK",
            bed.h.network.v1_name().expect("a v1 name").to_owned(),
        ),
        ("X402_INTEROP_RPC", bed.h.bed.anvil().endpoint().to_owned()),
    ];
    let network = bed.h.network.as_str().to_owned();

    let result = pay_one(&script, &format!("{}/exact", bed.url), &env).await;
    settled(&result, "PAYMENT-RESPONSE", &network);
    assert_eq!(result["body"], "exact, approval sponsored", "{result}");
    assert_eq!(bed.balance(who).await, U256::from(1_000_000 - EXACT_UNITS));
    assert_eq!(
        bed.allowance(who).await,
        U256::MAX,
        "the reference approves the maximum"
    );
    assert_eq!(bed.nonce(who).await, 1, "its approval, broadcast by us");

    let result = pay_one(&script, &format!("{}/upto", bed.url), &env).await;
    let settlement = settled(&result, "PAYMENT-RESPONSE", &network);
    assert_eq!(
        settlement["amount"],
        UPTO_USED_UNITS.to_string(),
        "{result}"
    );
    assert_eq!(
        bed.balance(who).await,
        U256::from(1_000_000 - EXACT_UNITS - UPTO_USED_UNITS)
    );
    assert_eq!(bed.nonce(who).await, 1, "no second approval");
    let stats = bed.sponsor.stats();
    assert_eq!((stats.approvals, stats.fundings), (1, 1), "{stats:?}");
}
