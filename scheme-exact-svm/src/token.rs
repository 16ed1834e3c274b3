//! Reading mints and token accounts (SPL Token and Token-2022), and the Token-2022 extension
//! allow-list (threat-model S57): a payment is only as good as the transfer it makes, so a mint
//! whose transfers can be taxed, hooked, clawed back or refused is not accepted.

use solana_pubkey::Pubkey;
use spl_token_2022_interface::extension::permanent_delegate::PermanentDelegate;
use spl_token_2022_interface::extension::transfer_fee::TransferFeeConfig;
use spl_token_2022_interface::extension::transfer_hook::TransferHook;
use spl_token_2022_interface::extension::{
    BaseStateWithExtensions, ExtensionType, StateWithExtensions,
};
use spl_token_2022_interface::state::{Account, AccountState, Mint};

use solana_commitment_config::CommitmentConfig;
use x402_core::SchemeError;

use crate::instructions::{TOKEN_PROGRAM, is_token_program};
use crate::rpc::{Rpc, rpc_get};

/// A mint as read from its account.
#[derive(Debug, Clone, PartialEq)]
pub struct MintInfo {
    /// The owning program: SPL Token or Token-2022.
    pub token_program: Pubkey,
    /// Decimals.
    pub decimals: u8,
    /// Token-2022 extensions (empty for SPL Token).
    pub extensions: Vec<ExtensionType>,
}

/// A token account as read from its account.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenAccountInfo {
    /// The mint it holds.
    pub mint: Pubkey,
    /// Its owner (the wallet).
    pub owner: Pubkey,
    /// Its balance.
    pub amount: u64,
    /// Its delegate, if any.
    pub delegate: Option<Pubkey>,
    /// Whether it is frozen.
    pub frozen: bool,
    /// Token-2022 account extensions.
    pub extensions: Vec<ExtensionType>,
}

/// Reads a mint owned by `owner` from its data.
pub fn read_mint(owner: &Pubkey, data: &[u8]) -> Result<MintInfo, String> {
    if !is_token_program(owner) {
        return Err(format!("owned by {owner}, not a token program"));
    }
    let state =
        StateWithExtensions::<Mint>::unpack(data).map_err(|e| format!("not a mint: {e}"))?;
    if !state.base.is_initialized {
        return Err("the mint is not initialized".into());
    }
    let extensions = extension_types(owner, &state)?;
    Ok(MintInfo {
        token_program: *owner,
        decimals: state.base.decimals,
        extensions,
    })
}

/// Reads a token account owned by `owner` from its data.
pub fn read_token_account(owner: &Pubkey, data: &[u8]) -> Result<TokenAccountInfo, String> {
    if !is_token_program(owner) {
        return Err(format!("owned by {owner}, not a token program"));
    }
    let state = StateWithExtensions::<Account>::unpack(data)
        .map_err(|e| format!("not a token account: {e}"))?;
    let extensions = extension_types(owner, &state)?;
    Ok(TokenAccountInfo {
        mint: state.base.mint,
        owner: state.base.owner,
        amount: state.base.amount,
        delegate: state.base.delegate.into(),
        frozen: state.base.state == AccountState::Frozen,
        extensions,
    })
}

fn extension_types<S, T>(owner: &Pubkey, state: &T) -> Result<Vec<ExtensionType>, String>
where
    S: spl_token_2022_interface::extension::BaseState,
    T: BaseStateWithExtensions<S>,
{
    if *owner == TOKEN_PROGRAM {
        return Ok(Vec::new());
    }
    state
        .get_extension_types()
        .map_err(|e| format!("unreadable extensions: {e}"))
}

/// Refuses a Token-2022 mint with an extension outside the allow-list, or an allowed extension in
/// a dangerous setting (a non-zero transfer fee, a transfer-hook program, a permanent delegate).
pub fn check_mint_extensions(data: &[u8], mint: &MintInfo) -> Result<(), String> {
    if mint.extensions.is_empty() {
        return Ok(());
    }
    let state =
        StateWithExtensions::<Mint>::unpack(data).map_err(|e| format!("not a mint: {e}"))?;
    for ext in &mint.extensions {
        match ext {
            ExtensionType::TransferFeeConfig => {
                let config = state
                    .get_extension::<TransferFeeConfig>()
                    .map_err(|e| format!("transfer fee config: {e}"))?;
                for fee in [&config.older_transfer_fee, &config.newer_transfer_fee] {
                    let bps = u16::from(fee.transfer_fee_basis_points);
                    let max = u64::from(fee.maximum_fee);
                    if bps != 0 && max != 0 {
                        return Err(format!(
                            "the mint charges a transfer fee ({bps} basis points, at most {max})"
                        ));
                    }
                }
            }
            ExtensionType::TransferHook => {
                let hook = state
                    .get_extension::<TransferHook>()
                    .map_err(|e| format!("transfer hook: {e}"))?;
                if let Some(program) = Option::<Pubkey>::from(hook.program_id) {
                    return Err(format!("the mint runs transfer-hook program {program}"));
                }
            }
            ExtensionType::PermanentDelegate => {
                let delegate = state
                    .get_extension::<PermanentDelegate>()
                    .map_err(|e| format!("permanent delegate: {e}"))?;
                if let Some(d) = Option::<Pubkey>::from(delegate.delegate) {
                    return Err(format!("the mint has permanent delegate {d}"));
                }
            }
            ExtensionType::MintCloseAuthority
            | ExtensionType::DefaultAccountState
            | ExtensionType::InterestBearingConfig
            | ExtensionType::ScaledUiAmount
            | ExtensionType::MetadataPointer
            | ExtensionType::TokenMetadata
            | ExtensionType::GroupPointer
            | ExtensionType::TokenGroup
            | ExtensionType::GroupMemberPointer
            | ExtensionType::TokenGroupMember => {}
            other => return Err(format!("the mint has extension {other:?}")),
        }
    }
    Ok(())
}

/// Refuses a Token-2022 token account with an extension outside the allow-list.
pub fn check_account_extensions(account: &TokenAccountInfo) -> Result<(), String> {
    for ext in &account.extensions {
        match ext {
            ExtensionType::ImmutableOwner
            | ExtensionType::TransferFeeAmount
            | ExtensionType::MemoTransfer
            | ExtensionType::CpiGuard => {}
            other => return Err(format!("the token account has extension {other:?}")),
        }
    }
    Ok(())
}

/// Reads the mint at `address` (its program and decimals).
pub async fn fetch_mint(rpc: &Rpc, address: &Pubkey) -> Result<MintInfo, SchemeError> {
    let account = rpc_get!(rpc, "getAccountInfo", |c| {
        c.get_account_with_commitment(address, CommitmentConfig::confirmed())
    })?
    .value
    .ok_or_else(|| SchemeError::Unusable(format!("mint {address} does not exist")))?;
    read_mint(&account.owner, &account.data)
        .map_err(|e| SchemeError::Unusable(format!("mint {address}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused() {
        for data in [&[][..], &[0u8; 10], &[1u8; 82], &[0u8; 300]] {
            assert!(read_mint(&TOKEN_PROGRAM, data).is_err());
            assert!(read_mint(&crate::instructions::TOKEN_2022_PROGRAM, data).is_err());
            assert!(read_token_account(&crate::instructions::TOKEN_2022_PROGRAM, data).is_err());
        }
        let mut mint = vec![0u8; 82];
        mint[44] = 6; // decimals
        mint[45] = 1; // initialized
        assert!(read_mint(&Pubkey::new_unique(), &mint).is_err());
        let info = read_mint(&TOKEN_PROGRAM, &mint).expect("a plain mint");
        assert_eq!(info.decimals, 6);
        assert!(info.extensions.is_empty());
        assert!(check_mint_extensions(&mint, &info).is_ok());
    }
}
