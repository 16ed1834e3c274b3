//! 2.B/2.C Binding what was signed to what is required: the recipient (S8), the amount (S9), the
//! asset (S10), the network (S11), the signing domain and key (S12), the validity window
//! (S17/S18) and Permit2's spender (S38). Each row changes one thing in the payer's verified
//! control; verify and settle refuse it and nothing moves.

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use x402_core::Reason;
use x402_core::wire::{PaymentPayload, PaymentRequirementsV2, VerifyRequest};
use x402_evm::abi::permit2_exact::TokenPermissions;
use x402_tests::evm::exact::{CODELESS, UNITS, now, payload_of, request_v2};
use x402_tests::evm::x402::{EXACT_PERMIT2_PROXY, UPTO_PERMIT2_PROXY};
use x402_tests::evm::{PERMIT2_ADDRESS, usdc_domain};

use super::{Ctx, Kind, Row, each_kind, refused, run_rows};

/// Base mainnet's chain id (the bed runs Base Sepolia's, 84532).
const BASE_MAINNET: u64 = 8453;

/// An account or contract a row puts somewhere it does not belong.
#[derive(Debug, Clone, Copy)]
enum Party {
    /// The payer itself.
    Payer,
    /// The facilitator's signer.
    Facilitator,
    Zero,
    ExactProxy,
    UptoProxy,
    Permit2,
    /// A contract on the bed that is no token (an attacker's contract).
    SignatureChecker,
    /// Base Sepolia's real USDC address: no code on the bed.
    Codeless,
    /// An address without code that nobody listed.
    Unlisted,
}

impl Party {
    fn address(self, ctx: &Ctx) -> Address {
        match self {
            Party::Payer => ctx.payer,
            Party::Facilitator => ctx.h.bed.facilitator().address,
            Party::Zero => Address::ZERO,
            Party::ExactProxy => EXACT_PERMIT2_PROXY,
            Party::UptoProxy => UPTO_PERMIT2_PROXY,
            Party::Permit2 => PERMIT2_ADDRESS,
            Party::SignatureChecker => ctx.h.bed.signature_checker(),
            Party::Codeless => CODELESS,
            Party::Unlisted => Address::repeat_byte(0x11),
        }
    }
}

/// An EIP-712 domain other than the one a kind signs under.
#[derive(Debug, Clone, Copy)]
enum Domain {
    /// The same contract under another chain id.
    Chain(u64),
    /// A contract of the same name elsewhere: EIP-3009 another token ([`CODELESS`]), Permit2
    /// another deployment.
    OtherContract,
    /// The other method's domain: EIP-3009 signs under Permit2's, Permit2 under USDC's.
    OtherMethod,
}

impl Domain {
    fn of(self, ctx: &Ctx) -> Eip712Domain {
        let chain_id = ctx.h.bed.chain_id();
        match (self, ctx.kind) {
            (Domain::Chain(id), _) => ctx.domain_on(id),
            (Domain::OtherContract, Kind::Eip3009) => usdc_domain(chain_id, CODELESS),
            (Domain::OtherContract, Kind::Permit2) => Eip712Domain::new(
                Some("Permit2".into()),
                None,
                Some(U256::from(chain_id)),
                Some(Address::repeat_byte(0x22)),
                None,
            ),
            (Domain::OtherMethod, Kind::Eip3009) => ctx.h.permit2_domain(),
            (Domain::OtherMethod, Kind::Permit2) => usdc_domain(chain_id, ctx.h.bed.usdc()),
        }
    }
}

/// A validity window from the current time: `(validAfter, validBefore or deadline)`.
type Window = fn(u64) -> (u64, u64);

/// What a row changes.
#[derive(Debug, Clone)]
enum Edit {
    /// The recipient signed (`to` / `witness.to`); the party is watched too.
    To(Party),
    /// The amount signed (`value` / `permitted.amount`).
    Amount(u64),
    /// Requirements asking for this amount, paid for them and signed consistently.
    Price(u64),
    /// The window signed.
    Window(Window),
    /// Signed by the payer under another domain.
    Domain(Domain),
    /// Signed by a key that is not the payer's.
    StrangerKey,
    /// Requirements naming another asset, paid for them and signed consistently.
    Asset(Party),
    /// Permit2's `permitted.token` (the requirements keep USDC).
    Token(Party),
    /// Permit2's `spender`.
    Spender(Party),
    /// The buyer's `accepted` names another network.
    AcceptedNetwork(&'static str),
    /// The requirements name another network; the payload stays.
    RequirementsNetwork(&'static str),
    /// A v1 payload (paid with the scheme's own buyer) names another network.
    V1PayloadNetwork(&'static str),
}

/// The request a row sends, and the accounts to watch besides the seller and the signers.
async fn request(ctx: &Ctx, edit: &Edit) -> (VerifyRequest, Vec<Address>) {
    let mut message = ctx.control_or_fresh();
    let mut req = ctx.req.clone();
    let mut key = ctx.key.clone();
    let mut domain = ctx.domain();
    let mut watch = vec![ctx.payer];
    match edit {
        Edit::To(party) => {
            let to = party.address(ctx);
            message.set_to(to);
            watch.push(to);
        }
        Edit::Amount(amount) => message.set_amount(U256::from(*amount)),
        Edit::Price(amount) => {
            req.amount = (*amount).into();
            message = ctx.message_for(&req);
        }
        Edit::Window(window) => {
            let (valid_after, expiry) = window(now());
            message.set_window(valid_after, expiry);
        }
        Edit::Domain(other) => domain = other.of(ctx),
        Edit::StrangerKey => key = PrivateKeySigner::random(),
        Edit::Asset(party) => {
            let asset = party.address(ctx);
            req.asset = asset.to_checksum(None);
            message = ctx.message_for(&req);
            if ctx.kind == Kind::Eip3009 {
                domain = usdc_domain(ctx.h.bed.chain_id(), asset);
            }
        }
        Edit::Token(party) => {
            let m = message.permit2_mut();
            m.permitted = TokenPermissions {
                token: party.address(ctx),
                amount: m.permitted.amount,
            };
        }
        Edit::Spender(party) => message.permit2_mut().spender = party.address(ctx),
        Edit::AcceptedNetwork(network) => {
            let mut request = ctx.signed(&message);
            let PaymentPayload::V2(p) = &mut request.payment_payload else {
                panic!("v2")
            };
            p.accepted.network = (*network).into();
            return (request, watch);
        }
        Edit::RequirementsNetwork(network) => {
            req.network = (*network).into();
            return (request_v2(&req, payload_of(&ctx.signed(&message))), watch);
        }
        Edit::V1PayloadNetwork(network) => {
            let mut request = ctx.h.pay_v1(&ctx.key, &ctx.req).await;
            let PaymentPayload::V1(p) = &mut request.payment_payload else {
                panic!("v1")
            };
            p.network = (*network).into();
            return (request, watch);
        }
    }
    let signature = message.sign(&key, &domain);
    (
        request_v2(&req, message.payload(ctx.payer, signature)),
        watch,
    )
}

async fn check(ctx: Ctx, row: Row<Edit>, reason: Reason) {
    let (request, watch) = request(&ctx, &row.edit).await;
    refused(&ctx, &row, &request, reason, &watch).await;
}

/// The rows of `rows` for `kind`, each derived from a verified control.
async fn refuse_rows(kind: Kind, suite: &str, rows: Vec<Row<Edit>>) {
    let ctx = Ctx::with_control(kind).await;
    run_rows(&ctx, suite, rows, check).await;
}

fn s8_rows() -> Vec<Row<Edit>> {
    let row = |case: &str, party| {
        Row::both(
            format!("S8 recipient: {case}"),
            Edit::To(party),
            scheme_exact_evm::reason::INVALID_EXACT_EVM_RECIPIENT_MISMATCH,
            x402_evm::reason::INVALID_PERMIT2_RECIPIENT_MISMATCH,
        )
        .and_v1()
    };
    vec![
        row("buyer pays itself", Party::Payer),
        row("facilitator signer", Party::Facilitator),
        row("zero address", Party::Zero),
        row("the exact proxy", Party::ExactProxy),
    ]
}

async fn s8(kind: Kind) {
    refuse_rows(kind, "S8", s8_rows()).await;
}
each_kind!(s8_recipient_other_than_pay_to, s8);

async fn s9(kind: Kind) {
    let rows = [UNITS - 1, UNITS + 1, 0, UNITS * 100]
        .into_iter()
        .map(|amount| {
            Row::both(
                format!("S9 amount {amount}"),
                Edit::Amount(amount),
                scheme_exact_evm::reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALUE_MISMATCH,
                x402_evm::reason::PERMIT2_AMOUNT_MISMATCH,
            )
            .and_v1()
        })
        .collect();
    refuse_rows(kind, "S9", rows).await;
}
each_kind!(s9_amount_must_equal_the_price_exactly, s9);

/// S4: a price of 0, signed for 0, is a transfer of nothing that costs our gas and that anyone
/// could repeat; `exact` refuses it as requirements before any chain call.
async fn s4_zero(kind: Kind) {
    let rows = vec![Row::both(
        "S4 price 0, signed for 0",
        Edit::Price(0),
        Reason::INVALID_PAYMENT_REQUIREMENTS,
        Reason::INVALID_PAYMENT_REQUIREMENTS,
    )];
    refuse_rows(kind, "S4", rows).await;
}
each_kind!(s4_a_zero_price_is_refused, s4_zero);

async fn s10(kind: Kind) {
    let ctx = Ctx::with_control(kind).await;
    // Spelling of a listed asset does not matter (lower case): a valid control.
    let lower = PaymentRequirementsV2 {
        asset: format!("{:#x}", ctx.h.bed.usdc()),
        ..ctx.req.clone()
    };
    let message = ctx.message_for(&lower);
    let request = request_v2(&lower, message.payload(ctx.payer, ctx.signature(&message)));
    ctx.h
        .assert_valid(&request, &ctx.what("lower-case asset"))
        .await;
    let mut rows = Vec::new();
    // An asset the operator did not list: refused before any call to it.
    for (name, party) in [
        ("the SignatureChecker contract", Party::SignatureChecker),
        ("no code", Party::Codeless),
        ("0x1111…", Party::Unlisted),
    ] {
        rows.push(Row::both(
            format!("S10 unlisted asset: {name}"),
            Edit::Asset(party),
            Reason::UNSUPPORTED_ASSET,
            Reason::UNSUPPORTED_ASSET,
        ));
    }
    for (name, party) in [
        ("no code", Party::Codeless),
        ("the SignatureChecker contract", Party::SignatureChecker),
        ("Permit2", Party::Permit2),
    ] {
        rows.push(Row::only(
            Kind::Permit2,
            format!("S10 permitted.token: {name}"),
            Edit::Token(party),
            x402_evm::reason::PERMIT2_TOKEN_MISMATCH,
        ));
    }
    // Requirements name USDC, the buyer signed over another token's domain.
    rows.push(Row::only(
        Kind::Eip3009,
        "S10 signed over another token's domain",
        Edit::Domain(Domain::OtherContract),
        scheme_exact_evm::reason::INVALID_EXACT_EVM_SIGNATURE,
    ));
    run_rows(&ctx, "S10", rows, check).await;
}
each_kind!(s10_unlisted_asset_and_token_mismatch, s10);

async fn s11(kind: Kind) {
    let ctx = Ctx::with_control(kind).await;
    if kind == Kind::Eip3009 {
        let v1 = ctx.h.pay_v1(&ctx.key, &ctx.req).await;
        ctx.h.assert_valid(&v1, &ctx.what("v1 control")).await;
    }
    let mut rows = Vec::new();
    // The buyer claims another network than the seller requires.
    for network in ["eip155:8453", "eip155:1", "base-sepolia"] {
        rows.push(Row::both(
            format!("S11 accepted on {network}"),
            Edit::AcceptedNetwork(network),
            scheme_exact_evm::reason::INVALID_EXACT_EVM_NETWORK_MISMATCH,
            scheme_exact_evm::reason::INVALID_EXACT_EVM_NETWORK_MISMATCH,
        ));
    }
    // A network the facilitator does not serve, and non-canonical spellings of the served one:
    // an answer, not a malformed request.
    for network in [
        "eip155:8453",
        "eip155:084532",
        "EIP155:84532",
        "eip155:84532 ",
        " eip155:84532",
        "eip155:",
        "base-sepolia",
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    ] {
        rows.push(Row::both(
            format!("S11 requirements on {network:?}"),
            Edit::RequirementsNetwork(network),
            Reason::INVALID_NETWORK,
            Reason::INVALID_NETWORK,
        ));
    }
    // v1: the payload names an unknown or a different network.
    for network in ["base", "base-sepolia-x", "eip155:84532"] {
        rows.push(Row::only(
            Kind::Eip3009,
            format!("S11 v1 payload on {network}"),
            Edit::V1PayloadNetwork(network),
            scheme_exact_evm::reason::INVALID_EXACT_EVM_NETWORK_MISMATCH,
        ));
    }
    run_rows(&ctx, "S11", rows, check).await;
}
each_kind!(s11_network_mismatch_and_unserved_networks, s11);

async fn s12(kind: Kind) {
    let row = |case: &str, edit| {
        Row::both(
            format!("S12 {case}"),
            edit,
            scheme_exact_evm::reason::INVALID_EXACT_EVM_SIGNATURE,
            x402_evm::reason::INVALID_PERMIT2_SIGNATURE,
        )
    };
    let rows = vec![
        row(
            "Base mainnet chain id",
            Edit::Domain(Domain::Chain(BASE_MAINNET)),
        ),
        row("Ethereum chain id", Edit::Domain(Domain::Chain(1))),
        row(
            "another contract of the same name",
            Edit::Domain(Domain::OtherContract),
        ),
        row(
            "the other method's domain",
            Edit::Domain(Domain::OtherMethod),
        ),
        row("another key", Edit::StrangerKey),
    ];
    refuse_rows(kind, "S12", rows).await;
}
each_kind!(s12_signature_for_another_chain_contract_or_key, s12);

async fn s17_s18(kind: Kind) {
    let row = |case: &str, window, eip3009, permit2| {
        Row::both(
            format!("S17/S18 {case}"),
            Edit::Window(window),
            eip3009,
            permit2,
        )
        .and_v1()
    };
    let expired = || {
        (
            scheme_exact_evm::reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
            x402_evm::reason::PERMIT2_DEADLINE_EXPIRED,
        )
    };
    let early = || {
        (
            scheme_exact_evm::reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_AFTER,
            x402_evm::reason::PERMIT2_NOT_YET_VALID,
        )
    };
    let cases: [(&str, Window, (Reason, Reason)); 6] = [
        ("expired", |t| (t - 600, t - 1), expired()),
        ("expires now", |t| (t - 600, t), expired()),
        ("inside the 6 s margin", |t| (t - 600, t + 5), expired()),
        ("zero", |_| (0, 0), expired()),
        ("valid in 30 s", |t| (t + 30, t + 120), early()),
        (
            "valid in a year",
            |t| (t + 365 * 86_400, t + 366 * 86_400),
            early(),
        ),
    ];
    let rows = cases
        .into_iter()
        .map(|(case, window, (eip3009, permit2))| row(case, window, eip3009, permit2))
        .collect();
    refuse_rows(kind, "S17/S18", rows).await;
}
each_kind!(s17_s18_outside_the_validity_window, s17_s18);

#[tokio::test]
async fn s38_wrong_permit2_spender() {
    let rows = [
        ("facilitator EOA", Party::Facilitator),
        ("upto proxy", Party::UptoProxy),
        ("Permit2 itself", Party::Permit2),
        ("an attacker contract", Party::SignatureChecker),
        ("zero", Party::Zero),
    ]
    .into_iter()
    .map(|(case, party)| {
        Row::only(
            Kind::Permit2,
            format!("S38 spender: {case}"),
            Edit::Spender(party),
            x402_evm::reason::INVALID_PERMIT2_SPENDER,
        )
    })
    .collect();
    refuse_rows(Kind::Permit2, "S38", rows).await;
}
