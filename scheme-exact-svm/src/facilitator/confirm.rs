//! Sending and a bounded confirmation.
//!
//! A transaction can land only while its blockhash is valid. So the wait polls the signature's
//! status (with history) and, while it is unseen, whether the blockhash is still valid at
//! `confirmed`: once it is not, no block built on the confirmed chain can include the transaction,
//! and one last status read decides between landed and expired (threat-model R14). A hard time
//! bound (`Policy::confirm_timeout`, shortened to the settle's answer deadline) caps the wait
//! whatever the RPC answers; hitting it yields "unknown" (reported as `settlement_pending` with
//! the signature), never a guess. A status with an error is a failure, however confirmed (R15).
//! There is no websocket to lose (R16).

use solana_commitment_config::{CommitmentConfig, CommitmentLevel};
use solana_rpc_client_api::client_error::{Error as ClientError, ErrorKind};
use solana_rpc_client_api::config::RpcSendTransactionConfig;
use solana_rpc_client_api::request::RpcError;
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;
use tokio::time::Instant;

use super::Facilitator;
use crate::rpc::{describe, rpc_call};

/// What a send achieved.
#[derive(Debug)]
pub(crate) enum Sent {
    /// A node accepted it (or may have: a transport failure is not a refusal).
    Accepted,
    /// The node's preflight refused it: it was not forwarded.
    Refused(String),
}

/// How a sent transaction ended.
#[derive(Debug)]
pub(crate) enum Confirmation {
    /// Confirmed without error.
    Landed,
    /// Confirmed with an error (the fee was paid, nothing moved).
    LandedWithError(String),
    /// Never seen, and its blockhash can no longer land it.
    Expired,
    /// Not decided within the time bound.
    Unknown,
}

/// The status of a signature: `None` unseen, `Some(Ok)` landed, `Some(Err)` landed with an error;
/// only statuses at `confirmed` or above count.
type Status = Option<Result<(), String>>;

impl Facilitator {
    /// Sends `tx` with the node's preflight simulation (a transaction that would fail is then not
    /// forwarded), trying each endpoint until one answers.
    pub(crate) async fn send(&self, tx: &VersionedTransaction) -> Sent {
        let config = RpcSendTransactionConfig {
            skip_preflight: false,
            preflight_commitment: Some(CommitmentLevel::Confirmed),
            ..RpcSendTransactionConfig::default()
        };
        match rpc_call!(self.rpc, |c| c.send_transaction_with_config(tx, config)) {
            Ok(_) => Sent::Accepted,
            Err(e) if preflight_refused(&e) => Sent::Refused(describe(&e)),
            Err(e) => {
                tracing::warn!(error = %describe(&e), "sendTransaction failed; confirming anyway");
                Sent::Accepted
            }
        }
    }

    /// Re-sends `tx` without preflight, ignoring the answer (the same bytes land at most once).
    async fn resend(&self, tx: &VersionedTransaction) {
        let config = RpcSendTransactionConfig {
            skip_preflight: true,
            max_retries: Some(0),
            ..RpcSendTransactionConfig::default()
        };
        let _ = rpc_call!(self.rpc, |c| c.send_transaction_with_config(tx, config));
    }

    /// The status of `signature` at `confirmed` (see [`Status`]).
    pub(crate) async fn status_of(&self, signature: &Signature) -> Result<Status, ClientError> {
        let statuses = rpc_call!(self.rpc, |c| {
            c.get_signature_statuses_with_history(std::slice::from_ref(signature))
        })?
        .value;
        Ok(statuses
            .into_iter()
            .next()
            .flatten()
            .filter(|s| s.satisfies_commitment(CommitmentConfig::confirmed()))
            .map(|s| match s.err {
                None => Ok(()),
                Some(e) => Err(e.to_string()),
            }))
    }

    /// Waits for `tx` (whose first signature is `signature`) within the policy's time bound and
    /// until the settle's answer `deadline`, however slowly the RPC answers.
    pub(crate) async fn confirm(
        &self,
        tx: &VersionedTransaction,
        signature: &Signature,
        deadline: Option<std::time::Instant>,
    ) -> Confirmation {
        let bound = x402_core::timing::capped(self.policy.confirm_timeout, deadline);
        tokio::time::timeout(bound, self.watch(tx, signature))
            .await
            .unwrap_or(Confirmation::Unknown)
    }

    /// Polls until the transaction is decided (see the module documentation).
    async fn watch(&self, tx: &VersionedTransaction, signature: &Signature) -> Confirmation {
        let blockhash = *tx.message.recent_blockhash();
        let mut last_send = Instant::now();
        loop {
            match self.status_of(signature).await {
                Ok(Some(Ok(()))) => return Confirmation::Landed,
                Ok(Some(Err(e))) => return Confirmation::LandedWithError(e),
                Ok(None) => {
                    let valid = rpc_call!(self.rpc, |c| {
                        c.is_blockhash_valid(&blockhash, CommitmentConfig::confirmed())
                    });
                    if let Ok(false) = valid {
                        // Read after the blockhash expired: whatever landed is visible now.
                        match self.status_of(signature).await {
                            Ok(Some(Ok(()))) => return Confirmation::Landed,
                            Ok(Some(Err(e))) => return Confirmation::LandedWithError(e),
                            Ok(None) => return Confirmation::Expired,
                            Err(_) => {}
                        }
                    } else if last_send.elapsed() >= self.policy.resend_interval {
                        self.resend(tx).await;
                        last_send = Instant::now();
                    }
                }
                Err(e) => tracing::warn!(error = %describe(&e), "getSignatureStatuses failed"),
            }
            tokio::time::sleep(self.policy.poll_interval).await;
        }
    }
}

/// Whether the node answered the send with an error (its preflight simulation failed, the
/// signature did not verify, it is unhealthy): `sendTransaction` forwards nothing then.
fn preflight_refused(e: &ClientError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::RpcError(RpcError::RpcResponseError { .. })
    )
}
