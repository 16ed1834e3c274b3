//! Verify, and the chain checks it shares with settle. After [`super::inspect()`] and the
//! settlement store: the mint is a token mint of the transfer's program with no dangerous
//! Token-2022 extension (S57); the destination exists and is payTo's account of the mint (S51);
//! the source is not the fee payer's (S48). A mint or destination the transfer cannot execute
//! with is answered as the reference answers it, by its simulation's reason. Verify then simulates the buyer's transaction as it
//! came; settle has the fee payer sign and simulates with signature verification, exactly as it
//! will be sent.
//!
//! Verify sends the account read and its simulation as one JSON-RPC batch (one HTTP round trip,
//! issue 19), judged in the same order as the two calls in turn; see
//! [`Facilitator::check_and_simulate`].

use serde::Deserialize;
use serde_json::{Value, json};
use solana_commitment_config::CommitmentConfig;
use solana_pubkey::Pubkey;
use solana_rpc_client_api::client_error::{Error as ClientError, ErrorKind};
use solana_rpc_client_api::config::RpcSimulateTransactionConfig;
use solana_rpc_client_api::request::{RpcError, RpcRequest};
use solana_rpc_client_api::response::{Response, RpcSimulateTransactionResult};
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use x402_core::{PaymentContext, Reason, Rejection, SchemeError, Verdict};

use super::answer::recorded;
use super::{Facilitator, Inspection};
use crate::rpc::{Batch, describe, no_answer, rpc_call, rpc_get, skipped, unreachable};
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
        Ok(match self.check_and_simulate(&inspection).await? {
            Ok(()) => Verdict::valid(payer),
            Err(r) => Verdict::invalid(Some(payer), r),
        })
    }

    /// The chain checks ([`Self::check_accounts`]) and then the simulation without our
    /// signature ([`Self::simulate_unsigned`]), with the same answers, in one HTTP round trip
    /// where the endpoint takes JSON-RPC batches: `[getMultipleAccounts, simulateTransaction]`,
    /// both at `confirmed` as when asked one after the other. The simulation's result counts only
    /// once the accounts passed, so a payment the account checks refuse gets their reason, as
    /// before; it has then cost the node one simulation it did not need.
    ///
    /// An endpoint that could not answer (either call) is left for the next, as for single
    /// calls. The two calls are asked one after the other when the endpoint refused a batch
    /// (then for [`crate::rpc::BATCH_RECHECK`]) or rate-limited it (the single calls back off).
    async fn check_and_simulate(
        &self,
        i: &Inspection,
    ) -> Result<Result<(), Rejection>, SchemeError> {
        let calls = verify_calls(i)?;
        let mut last = None;
        for idx in 0..self.rpc.clients().len() {
            if !self.rpc.usable(idx).await {
                last = Some(format!("getMultipleAccounts: {}", describe(&skipped())));
                continue;
            }
            if !self.rpc.batches(idx) {
                return self.check_then_simulate(i).await;
            }
            let answers = match self.rpc.batch(idx, &calls).await {
                Batch::Answered(answers) => answers,
                Batch::Unreachable(e) => {
                    self.rpc.suspect(idx);
                    last = Some(format!("getMultipleAccounts: {}", describe(&e)));
                    continue;
                }
                Batch::Refused => {
                    self.rpc.no_batches(idx);
                    return self.check_then_simulate(i).await;
                }
                Batch::Single => return self.check_then_simulate(i).await,
            };
            let Ok([accounts, simulation]) = <[_; 2]>::try_from(answers) else {
                return self.check_then_simulate(i).await;
            };
            let accounts = accounts.and_then(|raw| {
                serde_json::from_str::<AccountsAnswer>(raw.get())
                    .map_err(ClientError::from)
                    .and_then(AccountsAnswer::decode)
            });
            let simulation = simulation.and_then(|raw| {
                serde_json::from_str::<Response<RpcSimulateTransactionResult>>(raw.get())
                    .map(|r| r.value)
                    .map_err(ClientError::from)
            });
            // An answer from a node that could not answer (behind, garbled): the next endpoint,
            // as for single calls; the accounts are judged before the simulation is looked at.
            let accounts = match accounts {
                Err(e) if unreachable(&e) => {
                    self.rpc.suspect(idx);
                    last = Some(format!("getMultipleAccounts: {}", describe(&e)));
                    continue;
                }
                other => other.map_err(|e| {
                    SchemeError::Rpc(format!("getMultipleAccounts: {}", describe(&e)))
                })?,
            };
            if let Err(rejection) = self.judge_accounts(i, accounts) {
                return Ok(Err(rejection));
            }
            match simulation {
                Err(e) if unreachable(&e) => {
                    self.rpc.suspect(idx);
                    last = Some(format!("simulateTransaction: {}", describe(&e)));
                }
                answer => return judge_simulation(answer),
            }
        }
        Err(SchemeError::Rpc(last.unwrap_or_else(|| {
            format!("getMultipleAccounts: {}", describe(&no_answer(None)))
        })))
    }

    /// The chain checks and the simulation one after the other (two round trips).
    async fn check_then_simulate(
        &self,
        i: &Inspection,
    ) -> Result<Result<(), Rejection>, SchemeError> {
        if let Err(rejection) = self.check_accounts(i).await? {
            return Ok(Err(rejection));
        }
        Ok(self.simulate_unsigned(i).await?.map(|_| ()))
    }

    /// Reads the mint, destination and source accounts in one call and checks them.
    pub(crate) async fn check_accounts(
        &self,
        i: &Inspection,
    ) -> Result<Result<(), Rejection>, SchemeError> {
        let t = &i.transfer;
        let params = accounts_params(t);
        // A garbled answer is a `ParseError`, which asks the next endpoint as any undecodable
        // answer does.
        let accounts = rpc_get!(self.rpc, "getMultipleAccounts", |c| {
            async {
                c.send::<AccountsAnswer>(RpcRequest::GetMultipleAccounts, params.clone())
                    .await
                    .and_then(AccountsAnswer::decode)
            }
        })?;
        Ok(self.judge_accounts(i, accounts))
    }

    /// The checks of the mint, destination and source accounts as read.
    fn judge_accounts(
        &self,
        i: &Inspection,
        [mint, destination, source]: [Option<Read>; 3],
    ) -> Result<(), Rejection> {
        let t = &i.transfer;

        // A mint or destination the transfer cannot use fails the transfer on chain: the
        // reference finds that by simulating, and answers so; we say what we found.
        let cannot_execute =
            |m: String| reject_with(crate::reason::TRANSACTION_SIMULATION_FAILED, m);
        let Some(mint) = mint else {
            return Err(cannot_execute(format!("mint {} does not exist", t.mint)));
        };
        if mint.owner != t.token_program {
            return Err(cannot_execute(format!(
                "mint {} belongs to {}, the transfer uses {}",
                t.mint, mint.owner, t.token_program
            )));
        }
        let info = match read_mint(&mint.owner, &mint.data) {
            Ok(info) => info,
            Err(e) => return Err(cannot_execute(format!("mint {}: {e}", t.mint))),
        };
        if let Err(e) = check_mint_extensions(&mint.data, &info) {
            return Err(reject_with(crate::reason::UNSUPPORTED_TOKEN_EXTENSION, e));
        }

        let Some(destination) = destination else {
            return Err(cannot_execute(format!(
                "the destination token account {} does not exist; it must exist before payment",
                t.destination
            )));
        };
        let dest = match read_token_account(&destination.owner, &destination.data) {
            Ok(d) if destination.owner == t.token_program => d,
            Ok(_) => {
                return Err(cannot_execute(
                    "the destination belongs to another program".into(),
                ));
            }
            Err(e) => return Err(cannot_execute(format!("the destination: {e}"))),
        };
        // The reference would pay such an account (the transfer executes); we refuse it.
        if dest.mint != t.mint || dest.owner != i.pay_to {
            return Err(reject_with(
                crate::reason::INVALID_EXACT_SVM_PAYLOAD_RECIPIENT_MISMATCH,
                "the destination is not payTo's account of the mint",
            ));
        }
        if let Err(e) = check_account_extensions(&dest) {
            return Err(reject_with(crate::reason::UNSUPPORTED_TOKEN_EXTENSION, e));
        }

        if let Some(source) = source
            && let Ok(src) = read_token_account(&source.owner, &source.data)
        {
            if self.fee_payer_keys.contains(&src.owner) {
                return Err(reject_with(
                    crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_FEE_PAYER_TRANSFERRING_FUNDS,
                    "the source token account belongs to the fee payer",
                ));
            }
            if let Err(e) = check_account_extensions(&src) {
                return Err(reject_with(crate::reason::UNSUPPORTED_TOKEN_EXTENSION, e));
            }
        }
        Ok(())
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
        let config = simulate_config(sig_verify);
        let answer = rpc_call!(self.rpc, |c| {
            c.simulate_transaction_with_config(&tx, config.clone())
        });
        Ok(judge_simulation(answer.map(|r| r.value))?.map(|()| tx))
    }
}

/// What the checks read of an account: its owner program and its data.
pub(crate) struct Read {
    owner: Pubkey,
    data: Vec<u8>,
}

/// The simulation's configuration: against the transaction's own blockhash, at `confirmed`
/// (see [`Facilitator::simulate`]), base64.
fn simulate_config(sig_verify: bool) -> RpcSimulateTransactionConfig {
    RpcSimulateTransactionConfig {
        sig_verify,
        replace_recent_blockhash: false,
        commitment: Some(CommitmentConfig::confirmed()),
        ..RpcSimulateTransactionConfig::default()
    }
}

/// The calls of a verify's batch: the mint, destination and source accounts at `confirmed`
/// (base64: uncompressed, as small accounts gain nothing from zstd), and the buyer's
/// transaction simulated as it came (no signature verification, see
/// [`Facilitator::simulate_unsigned`]).
fn verify_calls(i: &Inspection) -> Result<[(&'static str, Value); 2], SchemeError> {
    let accounts = accounts_params(&i.transfer);
    let mut config = serde_json::to_value(simulate_config(false))
        .map_err(|e| SchemeError::other(format!("simulation config: {e}")))?;
    config["encoding"] = "base64".into();
    let tx = bincode::serialize(&i.tx)
        .map_err(|e| SchemeError::other(format!("serializing the transaction: {e}")))?;
    let simulation = json!([x402_core::header::encode_base64(&tx), config]);
    Ok([
        ("getMultipleAccounts", accounts),
        ("simulateTransaction", simulation),
    ])
}

/// The parameters of the accounts read: the mint, destination and source at `confirmed`, in
/// base64 (small accounts gain nothing from zstd, whose decoder set-up cost more than the rest
/// of a verify).
fn accounts_params(t: &crate::instructions::TransferChecked) -> Value {
    let keys = [t.mint, t.destination, t.source].map(|k| Value::String(k.to_string()));
    json!([keys, {"encoding": "base64", "commitment": "confirmed"}])
}

/// A `getMultipleAccounts` answer (base64 data).
#[derive(Deserialize)]
struct AccountsAnswer {
    value: Vec<Option<UiAccount>>,
}

/// An account as answered: what the checks read of it.
#[derive(Deserialize)]
struct UiAccount {
    owner: String,
    data: (String, String),
}

impl AccountsAnswer {
    /// The three accounts as the checks read them; an answer that does not decode is a garbled
    /// one (as any undecodable answer: the next endpoint is asked).
    fn decode(self) -> Result<[Option<Read>; 3], ClientError> {
        let garbled =
            |m: &str| ClientError::from(ErrorKind::RpcError(RpcError::ParseError(m.into())));
        let accounts = self
            .value
            .into_iter()
            .map(|a| {
                a.map(|a| {
                    let owner = a
                        .owner
                        .parse::<Pubkey>()
                        .map_err(|_| garbled("an account owner that is not a public key"))?;
                    if a.data.1 != "base64" {
                        return Err(garbled("account data not in base64"));
                    }
                    let data = x402_core::header::decode_base64(&a.data.0, usize::MAX)
                        .map_err(|_| garbled("account data that does not decode"))?;
                    Ok(Read { owner, data })
                })
                .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        <[_; 3]>::try_from(accounts).map_err(|a| {
            garbled(&format!(
                "getMultipleAccounts answered {} accounts",
                a.len()
            ))
        })
    }
}

/// A simulation's answer as verify and settle take it: `Ok(Ok(()))` when it succeeded.
fn judge_simulation(
    answer: Result<RpcSimulateTransactionResult, ClientError>,
) -> Result<Result<(), Rejection>, SchemeError> {
    let failed = |m: String| reject_with(crate::reason::TRANSACTION_SIMULATION_FAILED, m);
    match answer {
        Ok(result) => match result.err {
            None => Ok(Ok(())),
            Some(err) => {
                let logs = result.logs.unwrap_or_default();
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
