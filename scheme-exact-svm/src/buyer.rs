//! Buyer side: requirements → the v0 transaction of x402-spec §3.4 — compute-unit limit,
//! compute-unit price, `TransferChecked` to the payTo's associated token account (under the
//! program that owns the mint), memo — with the facilitator as fee payer, a recent blockhash and
//! the buyer's signature (the fee-payer slot left zero).

use async_trait::async_trait;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_message::{Hash, VersionedMessage, v0};
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use x402_core::wire::Raw;
use x402_core::{BuyerRole, RequirementsView, SchemeError};

use crate::instructions::{
    DEFAULT_COMPUTE_UNIT_LIMIT, DEFAULT_COMPUTE_UNIT_PRICE, TransferChecked,
    associated_token_address, memo, set_compute_unit_limit, set_compute_unit_price,
};
use crate::payload::ExactSvmPayload;
use crate::rpc::{Rpc, rpc_get};
use crate::token::fetch_mint;

use crate::{Extra, SCHEME, pubkey};

/// What a buyer puts in the compute-budget instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuyerOptions {
    /// Compute-unit limit.
    pub compute_unit_limit: u32,
    /// Compute-unit price in micro-lamports.
    pub compute_unit_price: u64,
}

impl Default for BuyerOptions {
    fn default() -> Self {
        Self {
            compute_unit_limit: DEFAULT_COMPUTE_UNIT_LIMIT,
            compute_unit_price: DEFAULT_COMPUTE_UNIT_PRICE,
        }
    }
}

/// Everything a payment transaction is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentPlan {
    /// The facilitator key that pays the fees (account 0).
    pub fee_payer: Pubkey,
    /// SPL Token or Token-2022 (the mint's owner).
    pub token_program: Pubkey,
    /// The mint.
    pub mint: Pubkey,
    /// The mint's decimals.
    pub decimals: u8,
    /// The recipient wallet (not its token account).
    pub pay_to: Pubkey,
    /// Atomic units.
    pub amount: u64,
    /// The memo bytes.
    pub memo: Vec<u8>,
    /// Compute budget.
    pub options: BuyerOptions,
}

impl PaymentPlan {
    /// The transfer `authority` makes from its associated token account.
    pub fn transfer(&self, authority: &Pubkey) -> TransferChecked {
        TransferChecked {
            token_program: self.token_program,
            source: associated_token_address(authority, &self.mint, &self.token_program),
            mint: self.mint,
            destination: associated_token_address(&self.pay_to, &self.mint, &self.token_program),
            authority: *authority,
            amount: self.amount,
            decimals: self.decimals,
        }
    }

    /// The four instructions, in order.
    pub fn instructions(&self, authority: &Pubkey) -> Vec<Instruction> {
        vec![
            set_compute_unit_limit(self.options.compute_unit_limit),
            set_compute_unit_price(self.options.compute_unit_price),
            self.transfer(authority).instruction(),
            memo(&self.memo),
        ]
    }
}

/// Compiles `instructions` into a v0 message paid by `fee_payer` and signs it with each of
/// `signers`; the slots of other required signers (the fee payer's) stay zero.
pub fn sign_partially(
    fee_payer: &Pubkey,
    instructions: &[Instruction],
    blockhash: Hash,
    signers: &[&Keypair],
) -> Result<VersionedTransaction, SchemeError> {
    let message = v0::Message::try_compile(fee_payer, instructions, &[], blockhash)
        .map_err(|e| SchemeError::Unusable(format!("cannot compile the transaction: {e}")))?;
    sign_message(VersionedMessage::V0(message), signers)
}

/// Signs `message` with each of `signers` that it requires; other slots stay zero.
pub fn sign_message(
    message: VersionedMessage,
    signers: &[&Keypair],
) -> Result<VersionedTransaction, SchemeError> {
    let required = usize::from(message.header().num_required_signatures);
    let bytes = message.serialize();
    let signatures = message
        .static_account_keys()
        .iter()
        .take(required)
        .map(|key| {
            signers
                .iter()
                .find(|s| s.pubkey() == *key)
                .map_or_else(Signature::default, |s| s.sign_message(&bytes))
        })
        .collect();
    Ok(VersionedTransaction {
        signatures,
        message,
    })
}

/// The buyer role of `exact` on Solana: pays from its key's associated token accounts, reading
/// mints and blockhashes through its RPC.
pub struct Buyer {
    keypair: Keypair,
    rpc: Rpc,
    options: BuyerOptions,
}

impl std::fmt::Debug for Buyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buyer")
            .field("pubkey", &self.keypair.pubkey())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl BuyerRole for Buyer {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    async fn sign(&self, requirements: &RequirementsView<'_>) -> Result<Raw, SchemeError> {
        self.sign_payment(requirements)
            .await?
            .to_raw()
            .map_err(SchemeError::other)
    }
}

impl Buyer {
    /// A buyer paying from `keypair`'s associated token accounts through `rpc`.
    pub fn new(keypair: Keypair, rpc: Rpc, options: BuyerOptions) -> Self {
        Self {
            keypair,
            rpc,
            options,
        }
    }

    /// Builds and signs the payment for `req`.
    pub async fn sign_payment(
        &self,
        req: &RequirementsView<'_>,
    ) -> Result<ExactSvmPayload, SchemeError> {
        let unusable = SchemeError::Unusable;
        if req.scheme != SCHEME || req.network.namespace() != "solana" {
            return Err(unusable(format!(
                "{} on {} is not exact on Solana",
                req.scheme, req.network
            )));
        }
        let extra = Extra::read(req).map_err(|r| unusable(r.to_string()))?;
        let fee_payer = extra
            .fee_payer
            .as_deref()
            .ok_or_else(|| unusable("extra.feePayer is required".into()))?;
        let fee_payer = pubkey("feePayer", fee_payer).map_err(unusable)?;
        let mint = pubkey("asset", req.asset).map_err(unusable)?;
        let pay_to = pubkey("payTo", req.pay_to).map_err(unusable)?;
        let amount = req
            .amount
            .to_u64()
            .ok_or_else(|| unusable(format!("{} does not fit u64", req.amount)))?;
        let info = fetch_mint(&self.rpc, &mint).await?;
        let memo = match extra.required_memo() {
            Some(m) => m.as_bytes().to_vec(),
            None => hex::encode(rand::random::<[u8; 16]>()).into_bytes(),
        };
        let plan = PaymentPlan {
            fee_payer,
            token_program: info.token_program,
            mint,
            decimals: info.decimals,
            pay_to,
            amount,
            memo,
            options: self.options,
        };
        let blockhash = rpc_get!(self.rpc, "getLatestBlockhash", |c| c.get_latest_blockhash())?;
        let tx = sign_partially(
            &fee_payer,
            &plan.instructions(&self.keypair.pubkey()),
            blockhash,
            &[&self.keypair],
        )?;
        ExactSvmPayload::of(&tx).map_err(SchemeError::other)
    }
}
