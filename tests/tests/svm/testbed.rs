//! The Solana test bed against a real `solana-test-validator`: health, both mints, funded
//! accounts, ATA derivation, and that validators die with their guard and their test binary.
//!
//! The set-up checks inspect [`bed`], a bed of this module's own: the `exact` tests of this binary
//! mint and pay on the shared one, so its supply and balances are no longer the set-up's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::Command;
use std::str::FromStr;
use std::time::Instant;

use solana_keypair::Keypair;
use solana_program_pack::Pack;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use tokio::sync::OnceCell;
use x402_tests::solana::{
    BUYER_LAMPORTS, BUYER_TOKENS, FEE_PAYER_LAMPORTS, SvmTestBed, TestMint, ValidatorGuard,
};
use x402_tests::wait;

const TOKEN_PROGRAM: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
const TOKEN_2022_PROGRAM: &str = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";
const ATA_PROGRAM: &str = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL";
/// Set in the child run of `shared_validator_dies_with_its_test_binary`.
const EXIT_PROBE_ENV: &str = "X402_SVM_EXIT_PROBE";

/// This module's bed, started on first use; nothing but these checks touches it.
async fn bed() -> &'static SvmTestBed {
    static BED: OnceCell<SvmTestBed> = OnceCell::const_new();
    BED.get_or_init(SvmTestBed::start).await
}

fn key(s: &str) -> Pubkey {
    Pubkey::from_str(s).unwrap()
}

#[tokio::test]
async fn validator_answers_get_health_ok() {
    let bed = bed().await;
    assert!(
        bed.rpc_url().starts_with("http://127.0.0.1:"),
        "{}",
        bed.rpc_url()
    );
    bed.rpc().get_health().await.expect("getHealth");
    assert!(bed.validator().is_healthy());
    let version = bed.rpc().get_version().await.expect("getVersion");
    assert!(
        version.solana_core.starts_with("3.1."),
        "validator {}",
        version.solana_core
    );
}

#[tokio::test]
async fn both_mints_exist_under_their_token_program_with_six_decimals() {
    let bed = bed().await;
    let authority = bed.mint_authority().pubkey();
    let rpc = bed.rpc();
    for (mint, program) in [
        (bed.spl_token_mint(), TOKEN_PROGRAM),
        (bed.token_2022_mint(), TOKEN_2022_PROGRAM),
    ] {
        assert_eq!(mint.token_program, key(program));
        let account = rpc.get_account(&mint.address).await.expect("mint account");
        assert_eq!(
            account.owner,
            key(program),
            "owner of mint {}",
            mint.address
        );
        // 82 bytes: a base mint, no Token-2022 extensions.
        assert_eq!(
            account.data.len(),
            82,
            "mint {} has extensions",
            mint.address
        );
        let state = if program == TOKEN_PROGRAM {
            spl_token_interface::state::Mint::unpack(&account.data).unwrap()
        } else {
            let m = spl_token_2022_interface::state::Mint::unpack(&account.data).unwrap();
            spl_token_interface::state::Mint {
                mint_authority: m.mint_authority,
                supply: m.supply,
                decimals: m.decimals,
                is_initialized: m.is_initialized,
                freeze_authority: m.freeze_authority,
            }
        };
        assert!(state.is_initialized);
        assert_eq!(state.decimals, 6);
        assert_eq!(mint.decimals, 6);
        assert_eq!(state.mint_authority, Some(authority).into());
        assert_eq!(state.freeze_authority, Some(authority).into());
        // Two buyers funded, nothing else minted.
        assert_eq!(state.supply, 2 * BUYER_TOKENS);
    }
    assert_ne!(bed.spl_token_mint().address, bed.token_2022_mint().address);
}

#[tokio::test]
async fn buyers_hold_the_funded_tokens_and_the_seller_has_empty_atas() {
    let bed = bed().await;
    let rpc = bed.rpc();
    assert_eq!(BUYER_TOKENS, 1_000_000_000);
    for mint in bed.mints() {
        for buyer in bed.buyers() {
            let owner = buyer.pubkey();
            assert_eq!(bed.token_balance(&owner, &mint.address).await, BUYER_TOKENS);
            // The node's own view of the same account, parsed by the validator.
            let ui = rpc
                .get_token_account_balance(&mint.ata(&owner))
                .await
                .unwrap();
            assert_eq!(ui.amount, "1000000000");
            assert_eq!(ui.decimals, 6);
        }
        let seller = bed.seller().pubkey();
        let seller_ata = rpc
            .get_account(&mint.ata(&seller))
            .await
            .expect("seller ATA exists");
        assert_eq!(seller_ata.owner, mint.token_program);
        assert_eq!(bed.token_balance(&seller, &mint.address).await, 0);
        // An owner without an ATA reads as 0, and no account exists for it.
        let stranger = Pubkey::new_unique();
        assert_eq!(bed.token_balance(&stranger, &mint.address).await, 0);
        assert!(rpc.get_account(&mint.ata(&stranger)).await.is_err());
    }
}

#[tokio::test]
async fn ata_addresses_are_the_pda_of_owner_token_program_and_mint() {
    let bed = bed().await;
    let rpc = bed.rpc();
    let owners: Vec<Pubkey> = bed
        .buyers()
        .iter()
        .chain([bed.seller()])
        .map(|k| k.pubkey())
        .collect();
    for mint in bed.mints() {
        for owner in &owners {
            let (pda, _bump) = Pubkey::find_program_address(
                &[
                    owner.as_ref(),
                    mint.token_program.as_ref(),
                    mint.address.as_ref(),
                ],
                &key(ATA_PROGRAM),
            );
            assert_eq!(mint.ata(owner), pda);
            let account = rpc.get_account(&pda).await.expect("ATA on chain");
            let state = spl_token_2022_interface::extension::StateWithExtensions::<
                spl_token_2022_interface::state::Account,
            >::unpack(&account.data)
            .unwrap();
            assert_eq!(state.base.owner, *owner);
            assert_eq!(state.base.mint, mint.address);
        }
    }
    // The two programs give the same owner different ATAs.
    let buyer = owners[0];
    assert_ne!(
        bed.spl_token_mint().ata(&buyer),
        bed.token_2022_mint().ata(&buyer)
    );
}

#[tokio::test]
async fn fee_payers_and_buyers_hold_their_sol() {
    let bed = bed().await;
    let fee_payers = bed.fee_payers();
    assert_ne!(fee_payers[0].pubkey(), fee_payers[1].pubkey());
    for payer in fee_payers {
        assert_eq!(bed.sol_balance(&payer.pubkey()).await, FEE_PAYER_LAMPORTS);
    }
    // The mint authority paid for every set-up transaction, so the buyers' SOL is untouched.
    for buyer in bed.buyers() {
        assert_eq!(bed.sol_balance(&buyer.pubkey()).await, BUYER_LAMPORTS);
    }
    assert_eq!(bed.sol_balance(&bed.seller().pubkey()).await, 0);
    let debug = format!("{bed:?}");
    assert!(
        debug.contains(&fee_payers[0].pubkey().to_string()),
        "{debug}"
    );
}

/// Waits until `pid` is gone (or a zombie awaiting its reaper); false if it is still alive after
/// the hang guard.
fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + wait::HANG_GUARD;
    loop {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|s| !s.trim_start().starts_with('Z'))
        });
        if !alive {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(wait::POLL_INTERVAL);
    }
}

#[tokio::test]
async fn an_owned_bed_is_isolated_and_its_validator_dies_on_drop() {
    let shared = SvmTestBed::shared().await;
    let own = SvmTestBed::start().await;
    assert_ne!(own.rpc_url(), shared.rpc_url());
    assert_ne!(own.spl_token_mint(), shared.spl_token_mint());
    // The shared bed's mint does not exist on the owned validator.
    assert!(
        own.rpc()
            .get_account(&shared.spl_token_mint().address)
            .await
            .is_err()
    );

    let holder = own.new_token_holder(BUYER_LAMPORTS, 5_000_000).await;
    for (own_mint, shared_mint) in own.mints().into_iter().zip(shared.mints()) {
        let balance = own.token_balance(&holder.pubkey(), &own_mint.address).await;
        assert_eq!(balance, 5_000_000);
        let elsewhere = shared
            .token_balance(&holder.pubkey(), &shared_mint.address)
            .await;
        assert_eq!(elsewhere, 0);
    }
    // A mint the bed did not create: token_balance finds its program on chain.
    let extra = Keypair::new();
    let authority = own.mint_authority();
    let t22 = key(TOKEN_2022_PROGRAM);
    let rent = own
        .rpc()
        .get_minimum_balance_for_rent_exemption(82)
        .await
        .unwrap();
    let extra_ata = spl_associated_token_account_interface::address::
        get_associated_token_address_with_program_id(&holder.pubkey(), &extra.pubkey(), &t22);
    let ixs = [
        solana_system_interface::instruction::create_account(
            &authority.pubkey(),
            &extra.pubkey(),
            rent,
            82,
            &t22,
        ),
        spl_token_2022_interface::instruction::initialize_mint2(
            &t22,
            &extra.pubkey(),
            &authority.pubkey(),
            None,
            2,
        )
        .unwrap(),
        spl_associated_token_account_interface::instruction::create_associated_token_account(
            &authority.pubkey(),
            &holder.pubkey(),
            &extra.pubkey(),
            &t22,
        ),
        spl_token_2022_interface::instruction::mint_to(
            &t22,
            &extra.pubkey(),
            &extra_ata,
            &authority.pubkey(),
            &[],
            7,
        )
        .unwrap(),
    ];
    own.send(&ixs, authority, &[&extra]).await;
    assert_eq!(
        own.token_balance(&holder.pubkey(), &extra.pubkey()).await,
        7
    );
    assert_eq!(own.sol_balance(&holder.pubkey()).await, BUYER_LAMPORTS);
    assert!(own.mint(&shared.token_2022_mint().address).is_none());
    let t22: Option<TestMint> = own.mint(&own.token_2022_mint().address);
    assert_eq!(t22, Some(own.token_2022_mint()));

    let pid = own.validator().validator_pid().expect("validator pid");
    let ledger = own.validator().ledger_path().to_path_buf();
    assert!(ledger.join("validator.log").exists());
    let rpc_url = own.rpc_url().to_owned();
    let probe = own.rpc();
    drop(own);
    assert!(wait_gone(pid), "validator {pid} survived its guard");
    assert!(
        !ledger.exists(),
        "ledger {} survived its guard",
        ledger.display()
    );
    assert!(probe.get_health().await.is_err(), "{rpc_url} still answers");
    // The shared bed is untouched.
    shared
        .rpc()
        .get_health()
        .await
        .expect("shared validator still healthy");
}

/// The shared validator lives in a `static` and is never dropped; the watchdog must kill it when
/// the test binary exits. This test runs itself in a child test process (selected by env var)
/// that starts a validator in a static and exits, then checks the validator is gone.
#[test]
fn shared_validator_dies_with_its_test_binary() {
    static HELD: std::sync::OnceLock<ValidatorGuard> = std::sync::OnceLock::new();
    if std::env::var_os(EXIT_PROBE_ENV).is_some() {
        let guard = HELD.get_or_init(ValidatorGuard::start);
        let pid = guard.validator_pid().expect("validator pid");
        let line = format!("X402_PROBE pid={pid} url={}\n", guard.rpc_url());
        std::io::stdout().write_all(line.as_bytes()).unwrap();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    // The test's name in this binary: its module path without the crate's name.
    let (_, module) = module_path!().split_once("::").unwrap();
    let name = format!("{module}::shared_validator_dies_with_its_test_binary");
    let out = Command::new(&exe)
        .args(["--exact", &name, "--nocapture"])
        .env(EXIT_PROBE_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child run failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let probe = stdout
        .lines()
        .find_map(|l| l.strip_prefix("X402_PROBE "))
        .unwrap_or_else(|| panic!("no probe line in child output:\n{stdout}"));
    let pid: u32 = probe
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .unwrap();
    let url = probe
        .split_whitespace()
        .find_map(|w| w.strip_prefix("url="))
        .unwrap();
    assert!(
        wait_gone(pid),
        "solana-test-validator {pid} ({url}) outlived its test binary"
    );
}
