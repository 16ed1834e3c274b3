//! Solana programs, constants and the four instructions of an `exact` payment (x402-spec §3.4,
//! §4): compute-unit limit, compute-unit price, `TransferChecked`, memo — built by the buyer and
//! parsed back by the facilitator with the same code.

use solana_instruction::{AccountMeta, Instruction};
use solana_pubkey::Pubkey;

/// The SPL Token program.
pub const TOKEN_PROGRAM: Pubkey =
    Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
/// The Token-2022 program.
pub const TOKEN_2022_PROGRAM: Pubkey =
    Pubkey::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
/// The associated token account program.
pub const ASSOCIATED_TOKEN_PROGRAM: Pubkey =
    Pubkey::from_str_const("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");
/// The compute budget program.
pub const COMPUTE_BUDGET_PROGRAM: Pubkey =
    Pubkey::from_str_const("ComputeBudget111111111111111111111111111111");
/// The SPL Memo program (v2).
pub const MEMO_PROGRAM: Pubkey =
    Pubkey::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
/// The Lighthouse assertion program: wallets (Phantom, Solflare) add its instructions to the
/// transactions they sign, to make them fail when an account ends up other than simulated.
pub const LIGHTHOUSE_PROGRAM: Pubkey =
    Pubkey::from_str_const("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95");
/// The system program.
pub const SYSTEM_PROGRAM: Pubkey = Pubkey::from_str_const("11111111111111111111111111111111");

/// USDC on Solana mainnet.
pub const USDC_MAINNET: Pubkey =
    Pubkey::from_str_const("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v");
/// USDC on Solana devnet and testnet.
pub const USDC_DEVNET: Pubkey =
    Pubkey::from_str_const("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU");
/// USDC's decimals.
pub const USDC_DECIMALS: u8 = 6;

/// The compute-unit limit a buyer sets (the reference client's).
pub const DEFAULT_COMPUTE_UNIT_LIMIT: u32 = 20_000;
/// The compute-unit price a buyer sets, in micro-lamports.
pub const DEFAULT_COMPUTE_UNIT_PRICE: u64 = 1;
/// The highest compute-unit price the reference accepts, in micro-lamports (5 lamports/CU).
pub const MAX_COMPUTE_UNIT_PRICE: u64 = 5_000_000;
/// The longest memo, in bytes.
pub const MAX_MEMO_BYTES: usize = 256;
/// The largest serialized transaction (one packet).
pub const MAX_TRANSACTION_BYTES: usize = 1232;

const SET_COMPUTE_UNIT_LIMIT: u8 = 2;
const SET_COMPUTE_UNIT_PRICE: u8 = 3;
const TRANSFER_CHECKED: u8 = 12;
/// `SystemInstruction::AdvanceNonceAccount` (a `u32` discriminant).
const ADVANCE_NONCE_ACCOUNT: [u8; 4] = 4u32.to_le_bytes();

/// Whether `program` is SPL Token or Token-2022.
pub fn is_token_program(program: &Pubkey) -> bool {
    *program == TOKEN_PROGRAM || *program == TOKEN_2022_PROGRAM
}

/// The associated token account of `owner` for `mint` under `token_program`.
pub fn associated_token_address(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(
        &[owner.as_ref(), token_program.as_ref(), mint.as_ref()],
        &ASSOCIATED_TOKEN_PROGRAM,
    )
    .0
}

/// How many (owner, mint, program) triples [`associated_token_address_remembered`] keeps.
#[cfg(feature = "facilitator")]
const REMEMBERED_ATAS: usize = 4096;

/// [`associated_token_address`], remembered. The derivation tries bump seeds, each a SHA-256 and
/// an on-curve test (a field square root): profiled, the two a verify makes (the destination's,
/// each fee payer's) were about 8 % of its CPU. The answer is the derivation's, only not
/// computed twice; at most [`REMEMBERED_ATAS`] triples are kept, and a full table is emptied, so
/// payments naming ever new accounts cannot grow it.
#[cfg(feature = "facilitator")]
pub(crate) fn associated_token_address_remembered(
    owner: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
) -> Pubkey {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex, PoisonError};
    static TABLE: LazyLock<Mutex<HashMap<[Pubkey; 3], Pubkey>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let key = [*owner, *mint, *token_program];
    if let Some(ata) = TABLE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return *ata;
    }
    let ata = associated_token_address(owner, mint, token_program);
    let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    if table.len() >= REMEMBERED_ATAS {
        table.clear();
    }
    table.insert(key, ata);
    ata
}

/// `SetComputeUnitLimit(units)`.
pub fn set_compute_unit_limit(units: u32) -> Instruction {
    let mut data = vec![SET_COMPUTE_UNIT_LIMIT];
    data.extend_from_slice(&units.to_le_bytes());
    Instruction::new_with_bytes(COMPUTE_BUDGET_PROGRAM, &data, Vec::new())
}

/// `SetComputeUnitPrice(micro_lamports)`.
pub fn set_compute_unit_price(micro_lamports: u64) -> Instruction {
    let mut data = vec![SET_COMPUTE_UNIT_PRICE];
    data.extend_from_slice(&micro_lamports.to_le_bytes());
    Instruction::new_with_bytes(COMPUTE_BUDGET_PROGRAM, &data, Vec::new())
}

/// The accounts and amount of a `TransferChecked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferChecked {
    /// SPL Token or Token-2022.
    pub token_program: Pubkey,
    /// The payer's token account.
    pub source: Pubkey,
    /// The mint.
    pub mint: Pubkey,
    /// The recipient's token account.
    pub destination: Pubkey,
    /// The owner of `source`, who signs.
    pub authority: Pubkey,
    /// Atomic units.
    pub amount: u64,
    /// The mint's decimals.
    pub decimals: u8,
}

impl TransferChecked {
    /// The instruction (single-signer authority, no extra accounts).
    pub fn instruction(&self) -> Instruction {
        let mut data = vec![TRANSFER_CHECKED];
        data.extend_from_slice(&self.amount.to_le_bytes());
        data.push(self.decimals);
        Instruction::new_with_bytes(
            self.token_program,
            &data,
            vec![
                AccountMeta::new(self.source, false),
                AccountMeta::new_readonly(self.mint, false),
                AccountMeta::new(self.destination, false),
                AccountMeta::new_readonly(self.authority, true),
            ],
        )
    }
}

/// A memo instruction without signer accounts.
pub fn memo(bytes: &[u8]) -> Instruction {
    Instruction::new_with_bytes(MEMO_PROGRAM, bytes, Vec::new())
}

/// The units of a `SetComputeUnitLimit` instruction's data (exactly 5 bytes).
pub fn parse_compute_unit_limit(data: &[u8]) -> Option<u32> {
    match data {
        [SET_COMPUTE_UNIT_LIMIT, rest @ ..] => Some(u32::from_le_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// The micro-lamports of a `SetComputeUnitPrice` instruction's data (exactly 9 bytes).
pub fn parse_compute_unit_price(data: &[u8]) -> Option<u64> {
    match data {
        [SET_COMPUTE_UNIT_PRICE, rest @ ..] => Some(u64::from_le_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// The amount and decimals of a `TransferChecked` instruction's data (exactly 10 bytes).
pub fn parse_transfer_checked(data: &[u8]) -> Option<(u64, u8)> {
    match data {
        [TRANSFER_CHECKED, amount @ .., decimals] => {
            Some((u64::from_le_bytes(amount.try_into().ok()?), *decimals))
        }
        _ => None,
    }
}

/// Whether an instruction of `program` with `data` advances a durable nonce.
pub fn is_advance_nonce(program: &Pubkey, data: &[u8]) -> bool {
    *program == SYSTEM_PROGRAM && data.starts_with(&ADVANCE_NONCE_ACCOUNT)
}

/// The priority fee in lamports of `units` at `micro_lamports` per unit, rounded up.
pub fn priority_fee_lamports(units: u32, micro_lamports: u64) -> u64 {
    let micro = u128::from(units) * u128::from(micro_lamports);
    u64::try_from(micro.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_parsers_agree() {
        assert_eq!(
            parse_compute_unit_limit(&set_compute_unit_limit(20_000).data),
            Some(20_000)
        );
        assert_eq!(
            parse_compute_unit_price(&set_compute_unit_price(7).data),
            Some(7)
        );
        let t = TransferChecked {
            token_program: TOKEN_PROGRAM,
            source: Pubkey::new_unique(),
            mint: Pubkey::new_unique(),
            destination: Pubkey::new_unique(),
            authority: Pubkey::new_unique(),
            amount: 1000,
            decimals: 6,
        };
        assert_eq!(
            parse_transfer_checked(&t.instruction().data),
            Some((1000, 6))
        );
        // Wrong lengths and discriminators never parse (and never panic).
        for bad in [&[][..], &[2, 0, 0, 0], &[2, 0, 0, 0, 0, 0], &[3; 9]] {
            assert_eq!(parse_compute_unit_limit(bad), None, "{bad:?}");
        }
        assert_eq!(parse_compute_unit_price(&[3; 8]), None);
        assert_eq!(parse_transfer_checked(&[12; 9]), None);
        assert_eq!(parse_transfer_checked(&[3; 10]), None);
        assert_eq!(priority_fee_lamports(20_000, 1), 1);
        assert_eq!(priority_fee_lamports(200_000, 5_000_000), 1_000_000);
        assert_eq!(priority_fee_lamports(u32::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn vector_atas() {
        // x402-spec §6.3: client [1;32], payTo [3;32], devnet USDC under SPL Token.
        let client = Pubkey::from_str_const("AKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9");
        let pay_to = Pubkey::from_str_const("GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse");
        assert_eq!(
            associated_token_address(&client, &USDC_DEVNET, &TOKEN_PROGRAM).to_string(),
            "H1AviagU5Y17z77v1F9qZPJ9kCbCsL4ewiZABNfGYoRs"
        );
        assert_eq!(
            associated_token_address(&pay_to, &USDC_DEVNET, &TOKEN_PROGRAM).to_string(),
            "6ndWAgFxMAVLobD8WrdBj5w41GrDeJYiQX91nNSrwkZp"
        );
    }

    #[cfg(feature = "facilitator")]
    #[test]
    fn a_remembered_ata_is_the_derived_one_also_past_a_full_table() {
        let owners: Vec<Pubkey> = (0..REMEMBERED_ATAS + 2)
            .map(|_| Pubkey::new_unique())
            .collect();
        for program in [TOKEN_PROGRAM, TOKEN_2022_PROGRAM] {
            for owner in owners.iter().take(3).chain(owners.iter()) {
                assert_eq!(
                    associated_token_address_remembered(owner, &USDC_DEVNET, &program),
                    associated_token_address(owner, &USDC_DEVNET, &program)
                );
            }
        }
    }
}
