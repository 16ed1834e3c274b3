//! Verify, and the chain checks it shares with settle. After [`super::inspect()`] and the
//! settlement store: the mint is a token mint of the transfer's program with no dangerous
//! Token-2022 extension (S57); the destination exists and is payTo's account of the mint (S51);
//! the source is not the fee payer's (S48). A mint or destination the transfer cannot execute
//! with is answered as the reference answers it, by its simulation's reason. Verify then simulates the buyer's transaction as it
//! came; settle has the fee payer sign and simulates with signature verification, exactly as it
//! will be sent.

use solana_commitment_config::CommitmentConfig;
use solana_rpc_client_api::client_error::ErrorKind;
use solana_rpc_client_api::config::RpcSimulateTransactionConfig;
use solana_rpc_client_api::request::RpcError;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use x402_core::{PaymentContext, Reason, Rejection, SchemeError, Verdict};

use super::answer::recorded;
use super::{Facilitator, Inspection};
use crate::rpc::{describe, rpc_call, rpc_get, unreachable};
use crate::token::{
    check_account_extensions, check_mint_extensions, read_mint, read_token_account,
};

/// How many lines of program logs a simulation failure reports.
const LOG_LINES: usize = 8;

fn reject_with(reason: Reason, message: impl Into<String>) -> Rejection {
    Rejection::with_message(reason, message)
}

impl Facilitator {
    /// Verifies a payment: the offline checks; then the settlement store — a payment with any
    /// record (being settled, pending, settled or failed) is `duplicate_settlement`, so one
    /// payment never keeps verifying valid after its settle (threat-model S78), except one
    /// found landed whose success is not yet delivered; then the payer's cool-down
    /// (`payer_throttled`); then the chain checks and a simulation without our signature.
    pub(crate) async fn verify_payment(
        &self,
        ctx: &PaymentContext<'_>,
    ) -> Result<Verdict, SchemeError> {
        let inspection = match self.inspect(ctx) {
            Ok(i) => i,
            Err(r) => return Ok(Verdict::invalid(r.payer, r.rejection)),
        };
        let payer = inspection.payer().to_string();
        let id = inspection.payment_id(&self.network);
        if let Some(record) = self.store.record(&id).await? {
            let record = self.current(&id, record).await?;
            // The one exception: a payment whose transaction landed after its settle answered
            // pending verifies until its success is delivered (once), so the buyer's retry of
            // the same payment gets what it paid for.
            return Ok(match record {
                Some(r) if matches!(r.outcome, Some(x402_core::Outcome::Landed { .. })) => {
                    Verdict::valid(payer)
                }
                Some(r) => Verdict::invalid(Some(payer), recorded(&r)),
                None => Verdict::invalid(
                    Some(payer),
                    Rejection::with_message(
                        Reason::DUPLICATE_SETTLEMENT,
                        "an earlier attempt at this payment just ended without settling it; \
                         retry",
                    ),
                ),
            });
        }
        if let Some(rejection) = self.throttled(&payer).await? {
            return Ok(Verdict::invalid(Some(payer), rejection));
        }
        if let Err(rejection) = self.check_accounts(&inspection).await? {
            return Ok(Verdict::invalid(Some(payer), rejection));
        }
        Ok(match self.simulate_unsigned(&inspection).await? {
            Ok(_) => Verdict::valid(payer),
            Err(r) => Verdict::invalid(Some(payer), r),
        })
    }

    /// Reads the mint, destination and source accounts in one call and checks them.
    pub(crate) async fn check_accounts(
        &self,
        i: &Inspection,
    ) -> Result<Result<(), Rejection>, SchemeError> {
        let t = &i.transfer;
        let keys = [t.mint, t.destination, t.source];
        let accounts = rpc_get!(self.rpc, "getMultipleAccounts", |c| {
            c.get_multiple_accounts_with_commitment(&keys, CommitmentConfig::confirmed())
        })?
        .value;
        let [mint, destination, source] = <[_; 3]>::try_from(accounts).map_err(|a| {
            SchemeError::Rpc(format!("getMultipleAccounts answered {} accounts", a.len()))
        })?;

        // A mint or destination the transfer cannot use fails the transfer on chain: the
        // reference finds that by simulating, and answers so; we say what we found.
        let cannot_execute =
            |m: String| reject_with(crate::reason::TRANSACTION_SIMULATION_FAILED, m);
        let Some(mint) = mint else {
            return Ok(Err(cannot_execute(format!(
                "mint {} does not exist",
                t.mint
            ))));
        };
        if mint.owner != t.token_program {
            return Ok(Err(cannot_execute(format!(
                "mint {} belongs to {}, the transfer uses {}",
                t.mint, mint.owner, t.token_program
            ))));
        }
        let info = match read_mint(&mint.owner, &mint.data) {
            Ok(info) => info,
            Err(e) => return Ok(Err(cannot_execute(format!("mint {}: {e}", t.mint)))),
        };
        if let Err(e) = check_mint_extensions(&mint.data, &info) {
            return Ok(Err(reject_with(
                crate::reason::UNSUPPORTED_TOKEN_EXTENSION,
                e,
            )));
        }

        let Some(destination) = destination else {
            return Ok(Err(cannot_execute(format!(
                "the destination token account {} does not exist; it must exist before payment",
                t.destination
            ))));
        };
        let dest = match read_token_account(&destination.owner, &destination.data) {
            Ok(d) if destination.owner == t.token_program => d,
            Ok(_) => {
                return Ok(Err(cannot_execute(
                    "the destination belongs to another program".into(),
                )));
            }
            Err(e) => return Ok(Err(cannot_execute(format!("the destination: {e}")))),
        };
        // The reference would pay such an account (the transfer executes); we refuse it.
        if dest.mint != t.mint || dest.owner != i.pay_to {
            return Ok(Err(reject_with(
                crate::reason::INVALID_EXACT_SVM_PAYLOAD_RECIPIENT_MISMATCH,
                "the destination is not payTo's account of the mint",
            )));
        }
        if let Err(e) = check_account_extensions(&dest) {
            return Ok(Err(reject_with(
                crate::reason::UNSUPPORTED_TOKEN_EXTENSION,
                e,
            )));
        }

        if let Some(source) = source
            && let Ok(src) = read_token_account(&source.owner, &source.data)
        {
            if self.fee_payer_keys.contains(&src.owner) {
                return Ok(Err(reject_with(
                    crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_FEE_PAYER_TRANSFERRING_FUNDS,
                    "the source token account belongs to the fee payer",
                )));
            }
            if let Err(e) = check_account_extensions(&src) {
                return Ok(Err(reject_with(
                    crate::reason::UNSUPPORTED_TOKEN_EXTENSION,
                    e,
                )));
            }
        }
        Ok(Ok(()))
    }

    /// The transaction with the fee payer's signature in slot 0.
    pub(crate) fn co_sign(&self, i: &Inspection) -> Result<VersionedTransaction, SchemeError> {
        let key = self
            .fee_payer(&i.fee_payer)
            .ok_or_else(|| SchemeError::signer(format!("no key for fee payer {}", i.fee_payer)))?;
        let mut tx = i.tx.clone();
        let slot = tx
            .signatures
            .first_mut()
            .ok_or_else(|| SchemeError::other("a transaction without signatures"))?;
        *slot = key.sign_message(&i.message_bytes);
        Ok(tx)
    }

    /// Simulates the buyer's transaction as it came, without our signature and with signature
    /// verification off (the buyer's signatures were verified locally; the fee payer's is not
    /// there), so a verify never hands the RPC provider a transaction that could be broadcast at
    /// our cost. `Ok(Ok(tx))` is the transaction simulated.
    pub(crate) async fn simulate_unsigned(
        &self,
        i: &Inspection,
    ) -> Result<Result<VersionedTransaction, Rejection>, SchemeError> {
        self.simulate(i.tx.clone(), false).await
    }

    /// Co-signs and simulates with signature verification: a settle, which sends the result.
    /// `Ok(Ok(tx))` is the co-signed transaction to send.
    pub(crate) async fn sign_and_simulate(
        &self,
        i: &Inspection,
    ) -> Result<Result<VersionedTransaction, Rejection>, SchemeError> {
        self.simulate(self.co_sign(i)?, true).await
    }

    /// Simulates `tx` against its own blockhash, at `confirmed`.
    ///
    /// `confirmed` is the commitment of every read here and of the send's preflight
    /// (`confirm::send`), as in the reference. The leader executes against its working bank, a
    /// slot or two past `confirmed`, so a drain that is only `processed` is missed by both
    /// (threat-model S74); what that costs is bounded by the fee caps (`priority`) and the
    /// payer cool-down. Moving to `processed` is not a one-line change: a simulation at
    /// `confirmed` also guarantees the blockhash is known at `confirmed`, which the confirmation
    /// loop's expiry test (`blockhash_valid`, at `confirmed`) relies on — at `processed` a
    /// blockhash not yet confirmed would read as expired.
    async fn simulate(
        &self,
        tx: VersionedTransaction,
        sig_verify: bool,
    ) -> Result<Result<VersionedTransaction, Rejection>, SchemeError> {
        let config = RpcSimulateTransactionConfig {
            sig_verify,
            replace_recent_blockhash: false,
            commitment: Some(CommitmentConfig::confirmed()),
            ..RpcSimulateTransactionConfig::default()
        };
        let answer = rpc_call!(self.rpc, |c| {
            c.simulate_transaction_with_config(&tx, config.clone())
        });
        let failed = |m: String| reject_with(crate::reason::TRANSACTION_SIMULATION_FAILED, m);
        match answer {
            Ok(response) => match response.value.err {
                None => Ok(Ok(tx)),
                Some(err) => {
                    let logs = response.value.logs.unwrap_or_default();
                    let tail = logs[logs.len().saturating_sub(LOG_LINES)..].join(" | ");
                    Ok(Err(failed(format!("{err}; logs: {tail}"))))
                }
            },
            // The node answered with an error (a signature that does not verify, say): the
            // message says why and never carries the transaction.
            Err(e) if !unreachable(&e) => match e.kind() {
                ErrorKind::RpcError(RpcError::RpcResponseError { code, message, .. }) => {
                    Ok(Err(failed(format!("RPC error {code}: {message}"))))
                }
                _ => Ok(Err(failed(describe(&e)))),
            },
            Err(e) => Err(SchemeError::Rpc(format!(
                "simulateTransaction: {}",
                describe(&e)
            ))),
        }
    }
}
