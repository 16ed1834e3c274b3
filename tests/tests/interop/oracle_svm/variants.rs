//! Broken payments of one mechanism, each built from a valid one by changing one thing, and the
//! reason (its current, v2 spelling) both facilitators must give for it.

use scheme_exact_svm::buyer::PaymentPlan;
use scheme_exact_svm::instructions::memo;
use scheme_exact_svm::payload::ExactSvmPayload;
use scheme_exact_svm::reason as svm;
use serde_json::Value;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer as _;
use solana_transaction::versioned::VersionedTransaction;
use x402_core::Reason;
use x402_core::wire::PaymentRequirementsV2;
use x402_tests::solana::LAMPORTS_PER_SOL;
use x402_tests::solana::exact::SvmHarness;

use super::{AMOUNT, Mechanism};

/// solana-mainnet's CAIP-2 id: a network neither facilitator serves here.
const MAINNET: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";

/// One broken payment.
pub(super) struct Variant {
    /// What is broken (named in every failure).
    pub name: &'static str,
    /// The verify request, as JSON.
    pub request: Value,
    /// The reason, in its current spelling (a v1 mechanism answers its v1 spelling).
    pub reason: Reason,
    /// Wallets whose token balances must not move besides the buyer's and the seller's.
    pub watch: Vec<Pubkey>,
    /// For a refusal by simulation: what the official facilitator's message must contain (so a
    /// simulation that failed for another reason is not taken for agreement).
    pub detail: Option<&'static str>,
}

/// `requirements` with `extra[key] = value`.
fn with_extra(
    requirements: &PaymentRequirementsV2,
    key: &str,
    value: &str,
) -> PaymentRequirementsV2 {
    let mut extra: Value = requirements
        .extra
        .as_ref()
        .map_or(Value::Null, |e| serde_json::from_str(e.get()).unwrap());
    extra[key] = value.into();
    PaymentRequirementsV2 {
        extra: Some(serde_json::value::to_raw_value(&extra).unwrap()),
        ..requirements.clone()
    }
}

/// A variant watching no other wallet.
fn variant(name: &'static str, request: Value, reason: Reason) -> Variant {
    Variant {
        name,
        request,
        reason,
        watch: vec![],
        detail: None,
    }
}

/// The verify request of `m` carrying `tx` for `requirements`.
fn request(m: Mechanism, requirements: &PaymentRequirementsV2, tx: &VersionedTransaction) -> Value {
    let payload = ExactSvmPayload::of(tx).unwrap().to_raw().unwrap();
    m.request(requirements, payload)
}

/// Every variant of mechanism `m` (at least ten).
pub(super) async fn all(h: &SvmHarness, m: Mechanism) -> Vec<Variant> {
    let (mint, other_mint) = m.mints(h);
    let req = h.requirements(&mint, AMOUNT, None).await;
    let plan = h.plan(&mint, &req);
    let fee_payer = plan.fee_payer;
    let buyer = h.buyer.pubkey();
    let signed =
        |ixs: Vec<Instruction>| async move { h.transaction(&fee_payer, &ixs, &[&h.buyer]).await };
    let planned = |change: &dyn Fn(&mut PaymentPlan)| {
        let mut p = plan.clone();
        change(&mut p);
        p.instructions(&buyer)
    };
    let mut out = Vec::new();

    let tx = signed(planned(&|p| p.amount -= 1)).await;
    out.push(variant(
        "the transfer is one unit short",
        request(m, &req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_AMOUNT_MISMATCH,
    ));

    let stranger = Pubkey::new_unique();
    let tx = signed(planned(&|p| p.pay_to = stranger)).await;
    out.push(variant(
        "the transfer goes to another wallet's account",
        request(m, &req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_RECIPIENT_MISMATCH,
    ));

    let tx = signed(planned(&|p| {
        p.mint = other_mint.address;
        p.token_program = other_mint.token_program;
    }))
    .await;
    out.push(variant(
        "the transfer is in another mint",
        request(m, &req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_MINT_MISMATCH,
    ));

    let tx = signed(plan.instructions(&buyer)).await;
    let mut wrong_network = request(m, &req, &tx);
    match m.version() {
        x402_core::X402Version::V1 => wrong_network["paymentPayload"]["network"] = "solana".into(),
        x402_core::X402Version::V2 => {
            wrong_network["paymentPayload"]["accepted"]["network"] = MAINNET.into();
        }
    }
    out.push(variant(
        "the payload names another network",
        wrong_network,
        svm::INVALID_EXACT_SVM_NETWORK_MISMATCH,
    ));

    let unmanaged = Keypair::new().pubkey();
    let unmanaged_req = with_extra(&req, "feePayer", &unmanaged.to_string());
    let tx = h
        .transaction(&unmanaged, &plan.instructions(&buyer), &[&h.buyer])
        .await;
    out.push(variant(
        "extra.feePayer is not one of the facilitator's",
        request(m, &unmanaged_req, &tx),
        svm::FEE_PAYER_NOT_MANAGED_BY_FACILITATOR,
    ));

    let other_fee_payer = h
        .fee_payers
        .iter()
        .map(Keypair::pubkey)
        .find(|k| *k != fee_payer)
        .unwrap();
    let tx = h
        .transaction(&other_fee_payer, &plan.instructions(&buyer), &[&h.buyer])
        .await;
    out.push(variant(
        "account 0 is the facilitator's other fee payer, not extra.feePayer",
        request(m, &req, &tx),
        svm::FEE_PAYER_MISMATCH,
    ));

    let tx = h
        .transaction(&fee_payer, &plan.instructions(&fee_payer), &[])
        .await;
    out.push(Variant {
        watch: vec![fee_payer],
        ..variant(
            "the fee payer is the transfer authority",
            request(m, &req, &tx),
            svm::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_FEE_PAYER_TRANSFERRING_FUNDS,
        )
    });

    let tx = signed(planned(&|p| p.options.compute_unit_price = 5_000_001)).await;
    out.push(variant(
        "the compute-unit price is above 5,000,000 micro-lamports",
        request(m, &req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION_TOO_HIGH,
    ));

    let mut ixs = plan.instructions(&buyer);
    ixs.insert(
        3,
        solana_system_interface::instruction::transfer(&buyer, &h.seller.pubkey(), 1),
    );
    let tx = signed(ixs).await;
    out.push(variant(
        "a system transfer as the fourth instruction",
        request(m, &req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
    ));

    let mut ixs = plan.instructions(&buyer);
    ixs.extend([memo(b"a"), memo(b"b"), memo(b"c"), memo(b"d")]);
    let tx = signed(ixs).await;
    out.push(variant(
        "eight instructions",
        request(m, &req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH,
    ));

    let mut tx = signed(plan.instructions(&buyer)).await;
    let mut bytes: [u8; 64] = tx.signatures[1].into();
    bytes[7] ^= 0x01;
    tx.signatures[1] = Signature::from(bytes);
    out.push(variant(
        "the buyer's signature is corrupted",
        request(m, &req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_SIGNATURE,
    ));

    let broke = h.bed.new_token_holder(LAMPORTS_PER_SOL, 0).await;
    let tx = h
        .transaction(&fee_payer, &plan.instructions(&broke.pubkey()), &[&broke])
        .await;
    out.push(Variant {
        watch: vec![broke.pubkey()],
        // TokenError::InsufficientFunds, from the transfer (instruction 2), as the library
        // prints it (numbers as strings).
        detail: Some(r#"{"InstructionError":["2",{"Custom":"1"}]}"#),
        ..variant(
            "the payer's token account is empty",
            request(m, &req, &tx),
            svm::TRANSACTION_SIMULATION_FAILED,
        )
    });

    // Conditions the official facilitator finds only by simulating: we check them before, and
    // answer as it does.
    let fresh = Pubkey::new_unique();
    let fresh_req = PaymentRequirementsV2 {
        pay_to: fresh.to_string(),
        ..req.clone()
    };
    let tx = signed(planned(&|p| p.pay_to = fresh)).await;
    out.push(variant(
        "payTo has no token account of the mint",
        request(m, &fresh_req, &tx),
        svm::TRANSACTION_SIMULATION_FAILED,
    ));

    let tx = signed(planned(&|p| p.token_program = other_mint.token_program)).await;
    out.push(variant(
        "the transfer runs under the other token program",
        request(m, &req, &tx),
        svm::TRANSACTION_SIMULATION_FAILED,
    ));

    let mut ixs = plan.instructions(&buyer);
    ixs[2].accounts[3].is_signer = false;
    let tx = h.transaction(&fee_payer, &ixs, &[]).await;
    out.push(variant(
        "the transfer authority does not sign",
        request(m, &req, &tx),
        svm::TRANSACTION_SIMULATION_FAILED,
    ));

    // Two faults: the first in the official facilitator's order is the one answered.
    let mut tx = signed(planned(&|p| p.amount -= 1)).await;
    let mut bytes: [u8; 64] = tx.signatures[1].into();
    bytes[9] ^= 0x01;
    tx.signatures[1] = Signature::from(bytes);
    out.push(variant(
        "a corrupted signature on a transfer one unit short",
        request(m, &req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_SIGNATURE,
    ));

    let mut ixs = plan.instructions(&buyer);
    ixs.insert(
        0,
        solana_system_interface::instruction::advance_nonce_account(&Pubkey::new_unique(), &buyer),
    );
    let tx = signed(ixs).await;
    out.push(variant(
        "AdvanceNonceAccount before the compute-unit limit (a durable nonce)",
        request(m, &req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_LIMIT_INSTRUCTION,
    ));

    let memo_req = with_extra(&req, "memo", "order-17");
    let tx = signed(planned(&|p| p.memo = b"order-18".to_vec())).await;
    out.push(variant(
        "the memo is not extra.memo",
        request(m, &memo_req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_MEMO_MISMATCH,
    ));

    let mut ixs = plan.instructions(&buyer);
    ixs.pop();
    let tx = signed(ixs).await;
    out.push(variant(
        "no memo where extra.memo asks for one",
        request(m, &memo_req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_MEMO_COUNT,
    ));
    out
}
