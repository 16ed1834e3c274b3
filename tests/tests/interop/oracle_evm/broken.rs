//! Broken variants of one valid payment, each refused by the official facilitator and ours with
//! the same reason — the one the variant is built to hit — with nothing moved or broadcast (our
//! settle of it is refused too). The conditions we answer differently on purpose (docs/reasons.md,
//! "Where we answer differently") are rows of [`DIFFERENT`], each side's answer pinned.

use std::sync::Arc;

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use x402_evm::addresses::PERMIT2;
use x402_tests::cases::Cases;
use x402_tests::evm::USDC_VERSION;
use x402_tests::evm::exact::UNITS;
use x402_tests::evm::x402::erc6492_wrap;

use super::auth::{Auth, use_nonce};
use super::{Answer, Bed, Mech, unix_now};

/// What is wrong with a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broken {
    /// The buyer signed one unit less than the price.
    AmountShort,
    /// The buyer signed a payment to someone else.
    WrongPayTo,
    /// The buyer signed for another token (EIP-3009: under its domain).
    WrongToken,
    /// The Permit2 spender is the other x402 proxy.
    WrongSpender,
    /// The `upto` witness names another facilitator.
    WrongFacilitator,
    /// The buyer's `accepted` (v1: its payload) names another network.
    WrongNetwork,
    /// The buyer's `accepted` (v1: its payload) names another scheme.
    SchemeMismatch,
    /// The authorization expired.
    Expired,
    /// The authorization is valid only from ten minutes on.
    NotYetValid,
    /// Another key signed for the payer.
    OtherKey,
    /// A byte of the signature's `r` is changed.
    CorruptSignature,
    /// The signature is made under chain id 1.
    WrongChainId,
    /// The requirements' `extra` has no EIP-712 `name`.
    MissingDomain,
    /// Buyer and requirements name the token "Bogus Coin", which it is not.
    TokenNameMismatch,
    /// Buyer and requirements name the token's EIP-712 version "1"; it is "2".
    TokenVersionMismatch,
    /// The signature is wrapped for ERC-6492 with a factory the facilitator does not allow.
    UnknownFactory,
    /// The payer holds no USDC.
    NoFunds,
    /// The payer holds USDC but gave Permit2 no allowance.
    NoAllowance,
    /// The authorization's nonce is already used on chain (by a third party / the owner).
    NonceUsed,
    /// The requirements name an asset not on our allow-list (Permit2's contract) that the
    /// buyer signed for.
    UnlistedAsset,
    /// The payment was settled by our facilitator already.
    SettledByUs,
    /// The requirements (and `accepted`) name a scheme nobody implements.
    UnknownScheme,
}

use Broken::*;

/// The variants both facilitators answer the same, per mechanism.
fn variants(mech: Mech) -> &'static [Broken] {
    match mech {
        Mech::Eip3009 | Mech::Eip3009V1 => &[
            AmountShort,
            WrongPayTo,
            WrongToken,
            WrongNetwork,
            SchemeMismatch,
            Expired,
            NotYetValid,
            OtherKey,
            CorruptSignature,
            WrongChainId,
            MissingDomain,
            TokenNameMismatch,
            TokenVersionMismatch,
            UnknownFactory,
            NoFunds,
            NonceUsed,
        ],
        Mech::Permit2 => &[
            AmountShort,
            WrongPayTo,
            WrongToken,
            WrongSpender,
            WrongNetwork,
            SchemeMismatch,
            Expired,
            NotYetValid,
            OtherKey,
            CorruptSignature,
            WrongChainId,
            NoFunds,
            NoAllowance,
        ],
        Mech::Upto => &[
            AmountShort,
            WrongPayTo,
            WrongToken,
            WrongSpender,
            WrongFacilitator,
            WrongNetwork,
            SchemeMismatch,
            Expired,
            NotYetValid,
            OtherKey,
            CorruptSignature,
            WrongChainId,
            NoFunds,
            NoAllowance,
        ],
    }
}

/// The reason a variant is built to hit.
fn expected(mech: Mech, broken: Broken) -> &'static str {
    let permit2 = !mech.eip3009();
    match (broken, mech) {
        (AmountShort, Mech::Eip3009V1) => "invalid_exact_evm_authorization_value",
        (AmountShort, Mech::Eip3009) => "invalid_exact_evm_payload_authorization_value_mismatch",
        (AmountShort, _) => "permit2_amount_mismatch",
        (WrongPayTo, _) if permit2 => "invalid_permit2_recipient_mismatch",
        (WrongPayTo, _) => "invalid_exact_evm_recipient_mismatch",
        (WrongToken, _) if permit2 => "permit2_token_mismatch",
        (WrongSpender, _) => "invalid_permit2_spender",
        (WrongFacilitator, _) => "upto_facilitator_mismatch",
        (WrongNetwork, Mech::Upto) => "invalid_upto_evm_network_mismatch",
        (WrongNetwork, _) => "invalid_exact_evm_network_mismatch",
        (SchemeMismatch, Mech::Upto) => "invalid_upto_evm_scheme",
        (SchemeMismatch, Mech::Permit2) => "unsupported_payload_type",
        (SchemeMismatch, _) => "invalid_exact_evm_scheme",
        (Expired, _) if permit2 => "permit2_deadline_expired",
        (Expired, _) => "invalid_exact_evm_payload_authorization_valid_before",
        (NotYetValid, _) if permit2 => "permit2_not_yet_valid",
        (NotYetValid, _) => "invalid_exact_evm_payload_authorization_valid_after",
        (WrongToken | OtherKey | CorruptSignature | WrongChainId, _) if permit2 => {
            "invalid_permit2_signature"
        }
        (WrongToken | OtherKey | CorruptSignature | WrongChainId, _) => {
            "invalid_exact_evm_signature"
        }
        (MissingDomain, _) => "invalid_exact_evm_missing_eip712_domain",
        (TokenNameMismatch, _) => "invalid_exact_evm_token_name_mismatch",
        (TokenVersionMismatch, _) => "invalid_exact_evm_token_version_mismatch",
        (UnknownFactory, _) => "eip6492_factory_not_allowed",
        (NoFunds, _) if permit2 => "permit2_insufficient_balance",
        (NoFunds, _) => "invalid_exact_evm_insufficient_balance",
        (NoAllowance, _) => "permit2_allowance_required",
        (NonceUsed, _) => "invalid_exact_evm_nonce_already_used",
        (UnlistedAsset, _) => UNLISTED,
        (SettledByUs, _) => DUPLICATE,
        (UnknownScheme, _) => UNKNOWN_SCHEME,
    }
}

/// The conditions we answer differently on purpose, as docs/reasons.md lists them under
/// [`DIFFERENCES`]: (mechanism, variant, ours, theirs); `exception` is the reference's throw.
pub(crate) const DIFFERENT: &[(Mech, Broken, &str, &str)] = &[
    (Mech::Permit2, NonceUsed, NONCE, SIMULATION),
    (Mech::Upto, NonceUsed, NONCE, SIMULATION),
    (Mech::Eip3009, UnlistedAsset, UNLISTED, NO_EIP3009),
    (Mech::Eip3009V1, UnlistedAsset, UNLISTED, NO_EIP3009),
    (Mech::Permit2, UnlistedAsset, UNLISTED, SIMULATION),
    (Mech::Upto, UnlistedAsset, UNLISTED, SIMULATION),
    (Mech::Eip3009, SettledByUs, DUPLICATE, NONCE_USED),
    (Mech::Eip3009V1, SettledByUs, DUPLICATE, NONCE_USED),
    (Mech::Permit2, SettledByUs, DUPLICATE, SIMULATION),
    (Mech::Upto, SettledByUs, DUPLICATE, SIMULATION),
    (Mech::Eip3009, UnknownScheme, UNKNOWN_SCHEME, THROWS),
    (Mech::Eip3009V1, UnknownScheme, UNKNOWN_SCHEME, THROWS),
    (Mech::Permit2, UnknownScheme, UNKNOWN_SCHEME, THROWS),
    (Mech::Upto, UnknownScheme, UNKNOWN_SCHEME, THROWS),
];

/// The heading of the differences' table in docs/reasons.md.
pub(crate) const DIFFERENCES: &str = "Where we answer differently";

const NONCE: &str = "permit2_invalid_nonce";
const SIMULATION: &str = "permit2_simulation_failed";
const UNLISTED: &str = "unsupported_asset";
const NO_EIP3009: &str = "invalid_exact_evm_eip3009_not_supported";
const DUPLICATE: &str = "duplicate_settlement";
const NONCE_USED: &str = "invalid_exact_evm_nonce_already_used";
const UNKNOWN_SCHEME: &str = "unsupported_scheme";
/// What [`refusals`] reports when the official facilitator throws instead of answering.
const THROWS: &str = "exception";

/// Sets `pointer` (below the requirements) in the requirements and, in v2, in `accepted`.
fn set_requirement(body: &mut Value, pointer: &str, value: Value) {
    for root in ["/paymentRequirements", "/paymentPayload/accepted"] {
        if let Some(at) = body.pointer_mut(&format!("{root}{pointer}")) {
            *at = value.clone();
        }
    }
}

/// Sets what the buyer says it paid with: v2 `accepted.<field>`, v1 the payload's `<field>`.
fn set_claimed(body: &mut Value, mech: Mech, field: &str, value: &str) {
    let at = if mech.version() == x402_core::X402Version::V1 {
        format!("/paymentPayload/{field}")
    } else {
        format!("/paymentPayload/accepted/{field}")
    };
    *body.pointer_mut(&at).expect(&at) = json!(value);
}

/// The verify body of `broken` of `mech`, the chain made ready for it; and the payer.
async fn build(bed: &Bed, mech: Mech, broken: Broken) -> (Value, Address) {
    let h = &bed.shop.h;
    let mut key = h.bed.buyer(0).signer.clone();
    if matches!(broken, NoFunds | NoAllowance) {
        key = PrivateKeySigner::random();
    }
    if broken == NoAllowance {
        h.bed.mint_usdc(key.address(), U256::from(10 * UNITS)).await;
    }
    let mut req = bed.requirements(mech).await;
    if broken == UnlistedAsset {
        req.asset = PERMIT2.to_checksum(None);
    }
    let mut auth = Auth::new(bed, mech, key.address(), &req);
    let mut signer = key.clone();
    let now = unix_now();
    let other = h.bed.deployer().address;
    match broken {
        AmountShort => auth.value -= U256::from(1),
        WrongPayTo => auth.to = other,
        WrongToken => auth.token = PERMIT2,
        WrongSpender => {
            let other_scheme = if mech == Mech::Upto {
                Mech::Permit2
            } else {
                Mech::Upto
            };
            auth.spender = other_scheme.proxy();
        }
        WrongFacilitator => auth.facilitator = other,
        Expired => auth.expiry = now - 10,
        NotYetValid => auth.valid_after = now + 600,
        OtherKey => signer = PrivateKeySigner::random(),
        WrongChainId => auth.chain_id = 1,
        TokenNameMismatch => auth.token_name = "Bogus Coin".to_owned(),
        TokenVersionMismatch => auth.token_version = "1".to_owned(),
        _ => {}
    }
    let payload = auth.sign(mech, &signer);
    let mut body = Bed::body(mech, &req, payload);
    match broken {
        WrongNetwork => {
            let elsewhere = if mech.version() == x402_core::X402Version::V1 {
                "base"
            } else {
                "eip155:8453"
            };
            set_claimed(&mut body, mech, "network", elsewhere);
        }
        SchemeMismatch => {
            let other = if mech == Mech::Upto { "exact" } else { "upto" };
            set_claimed(&mut body, mech, "scheme", other);
        }
        CorruptSignature => {
            let at = "/paymentPayload/payload/signature";
            let sig = body.pointer(at).and_then(Value::as_str).expect(at);
            let flipped = if &sig[10..11] == "0" { "1" } else { "0" };
            let corrupt = format!("{}{flipped}{}", &sig[..10], &sig[11..]);
            *body.pointer_mut(at).expect(at) = json!(corrupt);
        }
        MissingDomain => set_requirement(&mut body, "/extra", json!({ "version": USDC_VERSION })),
        TokenNameMismatch => set_requirement(&mut body, "/extra/name", json!("Bogus Coin")),
        TokenVersionMismatch => set_requirement(&mut body, "/extra/version", json!("1")),
        UnknownFactory => {
            let at = "/paymentPayload/payload/signature";
            let inner: Bytes = body
                .pointer(at)
                .and_then(Value::as_str)
                .expect(at)
                .parse()
                .expect("hex");
            let calldata = Bytes::from_static(b"deploy me");
            let wrapped = erc6492_wrap(other, &calldata, &inner);
            *body.pointer_mut(at).expect(at) = json!(wrapped.to_string());
        }
        NonceUsed => use_nonce(bed, mech, &auth, &body).await,
        SettledByUs => {
            let settled = bed.settle(&body).await;
            assert_eq!(settled["success"], true, "settled first: {settled}");
        }
        UnknownScheme => set_requirement(&mut body, "/scheme", json!("bogus")),
        _ => {}
    }
    (body, key.address())
}

/// Verifies `broken` with both facilitators and settles it with ours: nothing moves. Returns
/// (ours, theirs) and asserts both refuse and our settle refuses with our verify's reason; a
/// throw of the official facilitator is [`THROWS`].
async fn refusals(bed: &Bed, mech: Mech, broken: Broken) -> (String, String) {
    let what = format!("{mech:?} {broken:?}");
    let (body, payer) = build(bed, mech, broken).await;
    let h = &bed.shop.h;
    let before = h.snapshot(&[payer]).await;
    let theirs = bed.theirs(&body).await;
    let ours = bed.ours(&body).await;
    let settled = bed.settle(&body).await;
    h.assert_untouched(&before, &what).await;
    let reason = |a: &Answer, field: &str| {
        assert_ne!(a["isValid"], true, "{what}: valid: {a}");
        assert_ne!(a["success"], true, "{what}: settled: {a}");
        if a.get("error").is_some() {
            return THROWS.to_owned();
        }
        a[field].as_str().unwrap_or_default().to_owned()
    };
    let (ours, theirs, settled) = (
        reason(&ours, "invalidReason"),
        reason(&theirs, "invalidReason"),
        reason(&settled, "errorReason"),
    );
    // `upto` settles what the requirements charge, which may not exceed the authorized maximum
    // (the reference's settle says the same).
    let settle_reason = match (mech, broken) {
        (Mech::Upto, AmountShort) => "invalid_upto_evm_payload_settlement_exceeds_amount",
        _ => ours.as_str(),
    };
    assert_eq!(settled, settle_reason, "{what}: our settle");
    (ours, theirs)
}

/// Every variant of `mech`: the same reason from both, the one the variant is built to hit; and
/// every documented difference of `mech`, as documented.
pub(crate) async fn same_reasons(bed: &Arc<Bed>, mech: Mech) {
    assert!(
        variants(mech).len() >= 10,
        "ten variants or more per mechanism"
    );
    let mut cases = Cases::new(format!("{mech:?} against the official facilitator"));
    for &broken in variants(mech) {
        let bed = bed.clone();
        cases
            .run(format!("{broken:?}"), async move {
                let (ours, theirs) = refusals(&bed, mech, broken).await;
                assert_eq!(ours, theirs, "{mech:?} {broken:?}: ours ≠ theirs");
                assert_eq!(ours, expected(mech, broken), "{mech:?} {broken:?}");
            })
            .await;
    }
    for &(_, broken, ours, theirs) in DIFFERENT.iter().filter(|d| d.0 == mech) {
        let bed = bed.clone();
        cases
            .run(format!("{broken:?} (answered differently)"), async move {
                let got = refusals(&bed, mech, broken).await;
                assert_eq!(got, (ours.to_owned(), theirs.to_owned()), "(ours, theirs)");
            })
            .await;
    }
    cases.finish();
}

/// docs/reasons.md lists exactly the differences [`DIFFERENT`] pins: each row is our code, then
/// the reference's answer.
#[test]
fn the_documented_differences_are_the_pinned_ones() {
    let rows = x402_tests::vocabulary::doc_table(DIFFERENCES);
    let documents = |row: &x402_tests::vocabulary::DocRow, ours: &str, theirs: &str| {
        row.code == ours && row.columns.first().is_some_and(|c| c.contains(theirs))
    };
    for &(mech, broken, ours, theirs) in DIFFERENT {
        assert!(
            rows.iter().any(|r| documents(r, ours, theirs)),
            "docs/reasons.md ({DIFFERENCES}) lacks ours {ours} / theirs {theirs} ({mech:?} \
             {broken:?})"
        );
    }
    for row in &rows {
        assert!(
            DIFFERENT.iter().any(|d| documents(row, d.2, d.3)),
            "docs/reasons.md ({DIFFERENCES}): the row of `{}` is pinned by no oracle test",
            row.code
        );
    }
}
