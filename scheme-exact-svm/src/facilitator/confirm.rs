//! Sending and a bounded confirmation.
//!
//! A send with the node's preflight is a refusal only when the answering node said so and no
//! endpoint tried before it may have taken the transaction (threat-model S80); anything else
//! counts as sent.
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
use solana_message::Hash;
use solana_rpc_client_api::client_error::{Error as ClientError, ErrorKind};
use solana_rpc_client_api::config::RpcSendTransactionConfig;
use solana_rpc_client_api::request::RpcError;
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;
use tokio::time::Instant;

use super::Facilitator;
use crate::rpc::{NODE_UNHEALTHY, describe, rpc_call, unreachable};

/// What a send achieved.
#[derive(Debug)]
pub(crate) enum Sent {
    /// A node accepted it (or may have: a transport failure is not a refusal).
    Accepted,
    /// The node's preflight refused it, and no endpoint took it: it was not forwarded.
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

/// The commitment of the send's preflight simulation (see [`Facilitator::send`]).
pub(crate) const PREFLIGHT_COMMITMENT: CommitmentLevel = CommitmentLevel::Processed;

/// The status of a signature: `None` unseen, `Some(Ok)` landed, `Some(Err)` landed with an error;
/// only statuses at `confirmed` or above count.
type Status = Option<Result<(), String>>;

impl Facilitator {
    /// Sends `tx` with the node's preflight simulation (a transaction that would fail is then not
    /// forwarded), trying each endpoint until one answers.
    ///
    /// The preflight runs at `processed`, the newest state, closest to the leader's working bank
    /// the transaction executes against: a drain of the buyer's account that is processed but
    /// not yet confirmed — which our own simulation at `confirmed` cannot see — makes the node
    /// refuse the send, before any fee is spent (threat-model S74). Our simulation stays at
    /// `confirmed` because it also proves the blockhash is known there, which the expiry test of
    /// the confirmation loop relies on.
    ///
    /// Only an endpoint's own error answer is a refusal, and only when no endpoint asked before it
    /// failed in a way that may have taken the transaction (a timeout, a garbled answer): after
    /// such a failure the transaction may be on its way whatever the next endpoint says
    /// (threat-model S80), so the send counts as accepted and is confirmed.
    pub(crate) async fn send(&self, tx: &VersionedTransaction) -> Sent {
        let config = RpcSendTransactionConfig {
            skip_preflight: false,
            preflight_commitment: Some(PREFLIGHT_COMMITMENT),
            ..RpcSendTransactionConfig::default()
        };
        let mut ambiguous = false;
        for (i, client) in self.rpc.clients().iter().enumerate() {
            if !self.rpc.usable(i).await {
                continue;
            }
            let error = match client.send_transaction_with_config(tx, config).await {
                Ok(_) => return Sent::Accepted,
                Err(e) => e,
            };
            if node_unhealthy(&error) {
                // The node answered that it is behind: it took nothing; ask the next one.
                continue;
            }
            if unreachable(&error) {
                self.rpc.suspect(i);
                tracing::warn!(error = %describe(&error), "sendTransaction failed; the transaction may have been taken");
                ambiguous = true;
                continue;
            }
            if preflight_refused(&error) && !ambiguous {
                return Sent::Refused(describe(&error));
            }
            tracing::warn!(error = %describe(&error), "sendTransaction failed; confirming anyway");
            return Sent::Accepted;
        }
        if !ambiguous {
            // Every endpoint said it was behind: none took it.
            return Sent::Refused(
                "no RPC endpoint was healthy enough to take the transaction".into(),
            );
        }
        Sent::Accepted
    }

    /// Re-sends `tx` without preflight, ignoring the answer (the same bytes land at most once).
    pub(crate) async fn resend(&self, tx: &VersionedTransaction) {
        let config = RpcSendTransactionConfig {
            skip_preflight: true,
            max_retries: Some(0),
            ..RpcSendTransactionConfig::default()
        };
        let _ = rpc_call!(self.rpc, |c| c.send_transaction_with_config(tx, config));
    }

    /// Whether `blockhash` can still land a transaction, at `confirmed`.
    pub(crate) async fn blockhash_valid(&self, blockhash: &Hash) -> Result<bool, ClientError> {
        rpc_call!(self.rpc, |c| {
            c.is_blockhash_valid(blockhash, CommitmentConfig::confirmed())
        })
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
                    if let Ok(false) = self.blockhash_valid(&blockhash).await {
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
/// signature did not verify): `sendTransaction` forwards nothing then.
fn preflight_refused(e: &ClientError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::RpcError(RpcError::RpcResponseError { .. })
    )
}

/// Whether the node answered that it is behind (with preflight on, it then forwards nothing).
fn node_unhealthy(e: &ClientError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::RpcError(RpcError::RpcResponseError { code, .. }) if *code == NODE_UNHEALTHY
    )
}
