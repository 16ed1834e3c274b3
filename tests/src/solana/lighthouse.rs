//! Lighthouse assertion instructions as wallets (Phantom, Solflare) add them to the payments they
//! sign: guards over the buyer's own accounts, in the program's borsh encoding (discriminator,
//! log level, assertion). The program is not on solana-test-validator (no build of it ships in a
//! package registry), so a transaction carrying one passes the facilitator's layout checks and
//! then fails simulation.

use solana_instruction::{AccountMeta, Instruction};
use solana_pubkey::Pubkey;

pub use scheme_exact_svm::instructions::LIGHTHOUSE_PROGRAM as PROGRAM;

const ASSERT_ACCOUNT_INFO: u8 = 5;
const ASSERT_TOKEN_ACCOUNT: u8 = 9;
const LOG_SILENT: u8 = 0;
/// `AccountInfoAssertion::Lamports`.
const LAMPORTS: u8 = 0;
/// `TokenAccountAssertion::Amount`.
const AMOUNT: u8 = 2;
/// `IntegerOperator::GreaterThanOrEqual`.
const AT_LEAST: u8 = 4;

fn assertion(kind: u8, target: &Pubkey, field: u8, value: u64) -> Instruction {
    let mut data = vec![kind, LOG_SILENT, field];
    data.extend_from_slice(&value.to_le_bytes());
    data.push(AT_LEAST);
    Instruction::new_with_bytes(
        PROGRAM,
        &data,
        vec![AccountMeta::new_readonly(*target, false)],
    )
}

/// `AssertAccountInfo`: `target` keeps at least `lamports` (a wallet's guard on its SOL).
pub fn lamports_at_least(target: &Pubkey, lamports: u64) -> Instruction {
    assertion(ASSERT_ACCOUNT_INFO, target, LAMPORTS, lamports)
}

/// `AssertTokenAccount`: the token account `target` keeps at least `amount`.
pub fn tokens_at_least(target: &Pubkey, amount: u64) -> Instruction {
    assertion(ASSERT_TOKEN_ACCOUNT, target, AMOUNT, amount)
}
