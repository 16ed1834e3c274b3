//! What a Solana settle writes ahead ([`x402_core::Intent`]) before its transaction can leave
//! the process, and how reconciliation reads it back.
//!
//! The intent names the transaction by its first signature (the fee payer's, which is how Solana
//! names a transaction); its `detail` is an [`IntentDetail`]: the co-signed transaction exactly as
//! sent, so reconciliation can send the identical bytes again and never has to sign anything, and
//! its recent blockhash, which decides when the transaction can no longer land.

use serde::{Deserialize, Serialize};
use solana_message::Hash;
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;
use x402_core::{Intent, Network, SchemeError, UnixTime};

use crate::payload::{decode_transaction, encode_transaction};

/// The scheme's part of an intent (`Intent::detail`, JSON in camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentDetail {
    /// Standard base64 of the wire bytes of the co-signed transaction, as sent.
    pub transaction: String,
    /// The transaction's recent blockhash (base58): it can land only while this is valid.
    pub blockhash: String,
    /// The payer (transfer authority), for operators reading the store.
    pub payer: String,
    /// Unix seconds until which the settle that wrote the intent may still be sending and
    /// confirming the transaction itself. Until then reconciliation reads the chain but never
    /// sends the bytes of a record still in flight: the live settle may yet withdraw it (a send
    /// the node refused, see `settle`), which is sound only if nothing else sent it.
    pub holder_until: u64,
}

impl IntentDetail {
    /// The detail of `tx` (co-signed, about to be sent) paid by `payer`, whose settle may hold it
    /// until `holder_until`.
    pub fn of(
        tx: &VersionedTransaction,
        payer: &str,
        holder_until: UnixTime,
    ) -> Result<Self, SchemeError> {
        let transaction = encode_transaction(tx)
            .map_err(|e| SchemeError::other(format!("serializing the transaction: {e}")))?;
        Ok(Self {
            transaction,
            blockhash: tx.message.recent_blockhash().to_string(),
            payer: payer.to_owned(),
            holder_until: holder_until.0,
        })
    }

    /// The intent of `tx` on `network` with this detail.
    pub fn intent(
        &self,
        network: &Network,
        tx: &VersionedTransaction,
    ) -> Result<Intent, SchemeError> {
        let signature = first_signature(tx)
            .ok_or_else(|| SchemeError::other("a transaction without signatures"))?;
        let detail = serde_json::to_value(self)
            .map_err(|e| SchemeError::other(format!("serializing the intent: {e}")))?;
        Ok(Intent {
            network: network.as_str().to_owned(),
            transaction: signature.to_string(),
            detail,
        })
    }

    /// The detail of a stored intent.
    pub fn read(intent: &Intent) -> Result<Self, String> {
        serde_json::from_value(intent.detail.clone())
            .map_err(|e| format!("unreadable Solana intent detail: {e}"))
    }

    /// The transaction recorded, checked to be the one the intent names (`signature`).
    pub fn signed_transaction(
        &self,
        signature: &Signature,
    ) -> Result<VersionedTransaction, String> {
        let tx = decode_transaction(&self.transaction)
            .map_err(|r| {
                format!(
                    "the recorded transaction: {}",
                    r.message.unwrap_or_default()
                )
            })?
            .tx;
        if first_signature(&tx) != Some(*signature) {
            return Err(format!("the recorded transaction is not {signature}"));
        }
        Ok(tx)
    }

    /// The recorded blockhash.
    pub fn recent_blockhash(&self) -> Result<Hash, String> {
        self.blockhash
            .parse()
            .map_err(|_| format!("the recorded blockhash {:?} is not base58", self.blockhash))
    }

    /// Whether the settle that wrote the intent may still be at work at `now`.
    pub fn held_at(&self, now: UnixTime) -> bool {
        now.0 < self.holder_until
    }
}

/// The first signature of `tx`: the fee payer's, the transaction's name.
pub(crate) fn first_signature(tx: &VersionedTransaction) -> Option<Signature> {
    tx.signatures.first().copied()
}
