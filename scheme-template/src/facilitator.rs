//! Facilitator: verify and settle, at most once per payment.
//!
//! `verify` runs these checks in order; the first failure is the answer, with the payer filled
//! whenever the payload names one:
//!
//! | step | check | reason |
//! |---|---|---|
//! | 1 | the payload is a [`ToyPayload`] (accounts, nonce, signature well formed) | `invalid_payload` |
//! | 2 | the buyer's and the seller's scheme are `exact` | `unsupported_scheme` |
//! | 3 | the buyer's and the seller's network are this facilitator's | `network_mismatch` |
//! | 4 | the asset is [`ASSET`] | `unsupported_asset` |
//! | 5 | `payTo` is an account, and `to == payTo` | `invalid_payment_requirements`, `invalid_exact_toy_payload_recipient_mismatch` |
//! | 6 | `amount == requirements.amount`, exactly | `invalid_exact_toy_payload_amount_mismatch` |
//! | 7 | `from` signed the transfer for this network | `invalid_exact_toy_payload_signature` |
//! | 8 | `from` holds `amount` | `insufficient_funds` |
//! | 9 | the nonce is unused | `invalid_exact_toy_nonce_already_used` |
//! | 10 | the settlement store has no record of the payment | `duplicate_settlement` |
//!
//! `settle` runs steps 1–7, then claims the payment identity ([`Transfer::payment_id`]) in the
//! settlement store — of concurrent settles of one payment exactly one acquires it, the others
//! answer `duplicate_settlement` with the recorded transaction — and, holding the claim, checks
//! steps 8–9 and moves the balance in one step of the ledger ([`Ledger::apply`]). A refusal there
//! moved nothing and releases the claim; a transfer applied completes it with its outcome.
//!
//! The toy ledger moves balances inside this process, atomically, so nothing can be "out there"
//! between the claim and the outcome. A scheme whose transaction leaves the process must write
//! ahead ([`SettlementStore::write_ahead`]) what it is about to broadcast, never release a claim
//! after that, and reconcile unresolved records from its chain ([`FacilitatorRole::reconcile`]):
//! see `x402_evm::settle` for the pattern.

use std::sync::Arc;

use async_trait::async_trait;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::value::RawValue;
use x402_core::{
    Claim, FacilitatorRole, Network, Outcome, PaymentContext, PaymentId, Reason, Rejection,
    SchemeConfig, SchemeError, Settlement, SettlementStore, UnixTime, Verdict,
};

use crate::{ASSET, Account, Ledger, NAMESPACE, SCHEME, ToyPayload, Transfer, reason};

/// The facilitator role of `exact` on one toy network.
#[derive(Debug)]
pub struct Facilitator {
    network: Network,
    ledger: Arc<Ledger>,
    store: Arc<dyn SettlementStore>,
}

/// A payment that passed every check.
struct Checked {
    transfer: Transfer,
    signature: String,
    id: PaymentId,
}

/// A refused payment, and who was paying when the payload says.
struct Refusal {
    payer: Option<String>,
    rejection: Rejection,
}

/// The payer of a payload that failed to parse, if its `transfer.from` is still readable.
fn payer_of(raw: &RawValue) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
    let from = value.get("transfer")?.get("from")?.as_str()?;
    from.parse::<Account>().ok().map(|a| a.to_string())
}

/// The answer to a settle of a payment already settled or in progress: never a second success.
fn duplicate(payer: Option<String>, outcome: Option<&Outcome>) -> Settlement {
    let message = match outcome {
        None => "a settlement of this payment is in progress",
        Some(_) => "this payment was already settled",
    };
    Settlement {
        transaction: outcome.and_then(Outcome::transaction).map(str::to_owned),
        ..Settlement::refused(
            payer,
            Rejection::with_message(Reason::DUPLICATE_SETTLEMENT, message),
        )
    }
}

impl Facilitator {
    /// A facilitator of `network` over `ledger`, recording settlements in `store`.
    pub fn new(
        network: Network,
        ledger: Arc<Ledger>,
        store: Arc<dyn SettlementStore>,
    ) -> Result<Self, SchemeError> {
        if network.namespace() != NAMESPACE {
            return Err(SchemeError::Config(format!(
                "{network} is not a toy network"
            )));
        }
        Ok(Self {
            network,
            ledger,
            store,
        })
    }

    /// The facilitator the catalogue builds: the options' balances open the network's ledger.
    pub fn from_config(config: SchemeConfig) -> Result<Self, SchemeError> {
        let ledger = crate::open_ledger(&config)?;
        Self::new(config.network, ledger, config.store)
    }

    /// The ledger it settles on.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Steps 1–7 of the module documentation, in order: everything but the ledger's state.
    fn check_signed(&self, ctx: &PaymentContext<'_>) -> Result<Checked, Refusal> {
        // 1. Shape.
        let raw = ctx.payload.payload;
        let payload: ToyPayload =
            x402_core::scheme::parse_payload(raw).map_err(|rejection| Refusal {
                payer: payer_of(raw),
                rejection,
            })?;
        let t = payload.transfer;
        let payer = Some(t.from.to_string());
        let refuse = |reason: Reason, message: String| Refusal {
            payer: payer.clone(),
            rejection: Rejection::with_message(reason, message),
        };
        let mut signature = [0u8; 64];
        if payload.signature.len() != 128
            || payload.signature.bytes().any(|b| b.is_ascii_uppercase())
            || hex::decode_to_slice(&payload.signature, &mut signature).is_err()
        {
            let m = "signature: not 128 lower-case hex digits".to_owned();
            return Err(refuse(Reason::INVALID_PAYLOAD, m));
        }
        // 2–4. Scheme, network, asset: the requirements are the authority, and the network is
        // this facilitator's own.
        let req = &ctx.requirements;
        if ctx.payload.scheme != SCHEME || req.scheme != SCHEME {
            let m = format!("this facilitator serves {SCHEME}");
            return Err(refuse(Reason::UNSUPPORTED_SCHEME, m));
        }
        if !ctx.network_matches() || req.network != self.network {
            let m = format!("this facilitator serves {}", self.network);
            return Err(refuse(Reason::NETWORK_MISMATCH, m));
        }
        if req.asset != ASSET {
            let m = format!("a toy ledger holds {ASSET}, not {}", req.asset);
            return Err(refuse(Reason::UNSUPPORTED_ASSET, m));
        }
        // 5–6. Recipient and amount, exactly.
        let pay_to: Account = req
            .pay_to
            .parse()
            .map_err(|e| refuse(Reason::INVALID_PAYMENT_REQUIREMENTS, format!("payTo: {e}")))?;
        if t.to != pay_to {
            let m = format!("transfer.to {} is not payTo {pay_to}", t.to);
            return Err(refuse(
                reason::INVALID_EXACT_TOY_PAYLOAD_RECIPIENT_MISMATCH,
                m,
            ));
        }
        if t.amount != req.amount {
            let m = format!("transfer.amount {} is not amount {}", t.amount, req.amount);
            return Err(refuse(reason::INVALID_EXACT_TOY_PAYLOAD_AMOUNT_MISMATCH, m));
        }
        // 7. Signature, over the bytes for this facilitator's network.
        let signed = VerifyingKey::from_bytes(&t.from.0).and_then(|key| {
            key.verify_strict(
                &t.signing_bytes(&self.network),
                &Signature::from_bytes(&signature),
            )
        });
        if signed.is_err() {
            let m = "the signature is not transfer.from's over this transfer".to_owned();
            return Err(refuse(reason::INVALID_EXACT_TOY_PAYLOAD_SIGNATURE, m));
        }
        Ok(Checked {
            id: t.payment_id(&self.network),
            transfer: t,
            signature: payload.signature,
        })
    }
}

#[async_trait]
impl FacilitatorRole for Facilitator {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn payer(&self, payment: &PaymentContext<'_>) -> Option<String> {
        payer_of(payment.payload.payload)
    }

    async fn verify(&self, payment: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        let checked = match self.check_signed(payment) {
            Ok(c) => c,
            Err(r) => return Ok(Verdict::invalid(r.payer, r.rejection)),
        };
        // 8–9: the ledger's state, read without changing it.
        let payer = Some(checked.transfer.from.to_string());
        if let Err(rejection) = self.ledger.check(&checked.transfer) {
            return Ok(Verdict::invalid(payer, rejection));
        }
        // 10: a payment settled (or being settled) does not verify again.
        if let Some(record) = self.store.record(&checked.id).await? {
            return Ok(Verdict::invalid(
                payer,
                duplicate(None, record.outcome.as_ref())
                    .result
                    .err()
                    .unwrap_or_else(|| Rejection::new(Reason::DUPLICATE_SETTLEMENT)),
            ));
        }
        Ok(Verdict::from_check(payer, Ok(())))
    }

    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        let checked = match self.check_signed(payment) {
            Ok(c) => c,
            Err(r) => return Ok(Settlement::refused(r.payer, r.rejection)),
        };
        let payer = Some(checked.transfer.from.to_string());
        let timeout = payment.requirements.max_timeout_seconds;
        let expires = UnixTime(UnixTime::now().0.saturating_add(timeout));
        let token = match self.store.claim(&checked.id, expires).await? {
            Claim::Acquired(token) => token,
            Claim::Taken(record) => return Ok(duplicate(payer, record.outcome.as_ref())),
        };
        // 8–9 and the move, atomically, under the claim.
        if let Err(rejection) = self.ledger.apply(&checked.transfer) {
            // Nothing moved (the balance is short, say): the payment may be retried.
            self.store.release(&checked.id, &token).await?;
            return Ok(Settlement::refused(payer, rejection));
        }
        // The toy transaction id is the transfer's signature, as on Solana.
        let transaction = checked.signature;
        let outcome = Outcome::Settled {
            transaction: transaction.clone(),
        };
        self.store.complete(&checked.id, &token, outcome).await?;
        Ok(Settlement {
            payer,
            transaction: Some(transaction),
            amount: None,
            result: Ok(()),
            extensions: None,
        })
    }
}
