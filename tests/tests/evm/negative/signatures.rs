//! 2.E/F S29: malformed and forged signatures over the payer's authorization. Each row replaces
//! the signature of one authorization; verify and settle refuse it, nothing moves, and the
//! authorization's own signature still verifies afterwards (its nonce was never spent).

use alloy::primitives::Bytes;
use x402_core::Reason;
use x402_evm::abi::eip3009::TransferWithAuthorization;
use x402_tests::evm::x402::{SECP256K1_N, high_s_twin, sign_eip712};

use super::{Ctx, Kind, Message, Row, each_kind, refused, run_rows};

alloy::sol! {
    /// EIP-3009's other message type (a different typehash over the same fields).
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// The signature a row sends.
#[derive(Debug, Clone, Copy)]
enum Sig {
    /// The payer's signature with bytes changed.
    Edited(fn(&mut Vec<u8>)),
    /// The payer's signature with `v` set to this.
    V(u8),
    /// The payer's signature with this added to `v`.
    VPlus(u8),
    /// These bytes.
    Raw(&'static [u8]),
    /// The payer's signature over the authorization with its expiry one second later.
    OverAnotherExpiry,
    /// The payer's signature over EIP-3009's `ReceiveWithAuthorization` of the same fields.
    ReceiveTypehash,
    /// The high-s twin of the payer's signature.
    HighS,
}

fn bytes(ctx: &Ctx, message: &Message, good: &Bytes, sig: Sig) -> Bytes {
    let edited = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut s = good.to_vec();
        f(&mut s);
        Bytes::from(s)
    };
    match sig {
        Sig::Edited(f) => edited(&f),
        Sig::V(v) => edited(&|s| s[64] = v),
        Sig::VPlus(n) => edited(&|s| s[64] += n),
        Sig::Raw(raw) => Bytes::copy_from_slice(raw),
        Sig::OverAnotherExpiry => {
            let mut other = message.clone();
            other.extend_expiry(1);
            ctx.signature(&other)
        }
        Sig::ReceiveTypehash => {
            let m: &TransferWithAuthorization = message.eip3009();
            let receive = ReceiveWithAuthorization {
                from: m.from,
                to: m.to,
                value: m.value,
                validAfter: m.validAfter,
                validBefore: m.validBefore,
                nonce: m.nonce,
            };
            sign_eip712(&ctx.key, &receive, &ctx.domain())
        }
        Sig::HighS => high_s_twin(good),
    }
}

/// The rows; the reasons are each kind's `invalid signature` unless a row says otherwise.
fn rows() -> Vec<Row<Sig>> {
    let invalid = |case: &str, sig| {
        Row::both(
            format!("S29 {case}"),
            sig,
            scheme_exact_evm::reason::INVALID_EXACT_EVM_SIGNATURE,
            x402_evm::reason::INVALID_PERMIT2_SIGNATURE,
        )
    };
    let mut rows = vec![
        invalid("over another expiry", Sig::OverAnotherExpiry),
        invalid("flipped bit in r (byte 3)", Sig::Edited(|s| s[3] ^= 0x01)),
        invalid("flipped bit in r (byte 5)", Sig::Edited(|s| s[5] ^= 0x10)),
        invalid("flipped bit in s", Sig::Edited(|s| s[40] ^= 0x80)),
        // 64 bytes read as EIP-2098 compact (r ‖ yParity·2²⁵⁵ + s), with the other parity: another
        // signer. (The right parity is the same signature: it pays, see the exact tests.)
        invalid(
            "64-byte compact, wrong parity",
            Sig::Edited(|s| {
                let wrong = u8::from(s[64] == 27);
                s.truncate(64);
                s[32] |= wrong << 7;
            }),
        ),
        invalid("all zero", Sig::Raw(&[0; 65])),
        invalid("r = 0", Sig::Edited(|s| s[..32].fill(0))),
        invalid("s = 0", Sig::Edited(|s| s[32..64].fill(0))),
        invalid(
            "s = n",
            Sig::Edited(|s| s[32..64].copy_from_slice(&SECP256K1_N.0)),
        ),
        invalid("s = 2^256 - 1", Sig::Edited(|s| s[32..64].fill(0xff))),
        invalid("one byte 0x00", Sig::Raw(&[0])),
        invalid("one byte 0x01", Sig::Raw(&[1])),
        invalid("v + 9 (EIP-155 style)", Sig::VPlus(9)),
        invalid("v + 10 (EIP-155 style)", Sig::VPlus(10)),
        // A longer blob from an address without code: a smart-wallet signature for a wallet
        // that does not exist, so an invalid signature.
        Row::both(
            "S29 66 bytes",
            Sig::Edited(|s| s.push(0)),
            scheme_exact_evm::reason::INVALID_EXACT_EVM_SIGNATURE,
            x402_evm::reason::INVALID_PERMIT2_SIGNATURE,
        ),
        Row::only(
            Kind::Eip3009,
            "S29 ReceiveWithAuthorization typehash",
            Sig::ReceiveTypehash,
            scheme_exact_evm::reason::INVALID_EXACT_EVM_SIGNATURE,
        ),
        // FiatToken refuses s in the upper half of the curve order; the local recovery accepts
        // it, so the simulation is what refuses — nothing is sent. (Permit2's ecrecover accepts
        // the twin: a Permit2 re-encoding, see S22.)
        Row::only(
            Kind::Eip3009,
            "S29 high-s twin",
            Sig::HighS,
            scheme_exact_evm::reason::INVALID_EXACT_EVM_TRANSACTION_SIMULATION_FAILED,
        ),
    ];
    for v in [2u8, 26, 29, 35, 36, 37, 38, 255] {
        rows.push(invalid(&format!("v = {v}"), Sig::V(v)));
    }
    rows
}

async fn s29(kind: Kind) {
    let ctx = Ctx::start(kind).await;
    let message = ctx.message();
    let good = ctx.signature(&message);
    ctx.h
        .assert_valid(
            &ctx.with_signature(&message, good.clone()),
            &ctx.what("control"),
        )
        .await;
    let check = |ctx: Ctx, row: Row<Sig>, reason: Reason| {
        let (message, good) = (message.clone(), good.clone());
        async move {
            let sig = bytes(&ctx, &message, &good, row.edit);
            let request = ctx.with_signature(&message, sig);
            refused(&ctx, &row, &request, reason, &[ctx.payer]).await;
        }
    };
    run_rows(&ctx, "S29", rows(), check).await;
    // The control still verifies: the nonce was never spent by the attempts above.
    ctx.h
        .assert_valid(
            &ctx.with_signature(&message, good),
            &ctx.what("control after"),
        )
        .await;
}
each_kind!(s29_invalid_signatures, s29);
