//! The command line's arguments: the help texts, the exit statuses, the clap structures and
//! their translation into [`Args`] (with the buyer's [`Policy`]).

use clap::Parser as _;
use x402_core::{Network, NetworkPattern};

use super::governance::GovernanceArgs;
use super::history::{HISTORY_AFTER_HELP, HistoryArgs};
use crate::{KnownAsset, Policy};

/// The Solana RPC used when neither `--solana-rpc` nor `$X402_SOLANA_RPC` is given.
pub const DEFAULT_SOLANA_RPC: &str = "https://api.mainnet-beta.solana.com";

macro_rules! environment {
    () => {
        "\
Environment:
  X402_PRIVATE_KEY       the EVM key (hex, 0x optional): exact and upto on eip155:*
  X402_PRIVATE_KEY_FILE  a file holding the EVM key (--key-file); a file wins over the key
  X402_SOLANA_KEY        the Solana keypair (base58 of its 64 bytes, or a solana-keygen JSON
                         array): exact on solana:*
  X402_SOLANA_KEY_FILE   a file holding the Solana keypair (--solana-key-file)
  X402_SOLANA_RPC        the Solana RPC endpoint (--solana-rpc)
  X402_EVM_RPC           an EVM RPC endpoint (--evm-rpc), to check EVM --asset decimals and
                         sign gas-sponsoring permits
  X402_EXPLORER          a transaction link prefix for every network (--explorer)
  X402_MAX               the most one request may cost (--max); pay needs one or the other
  X402_PER_HOUR          the most paid per asset within any hour (--per-hour)
  X402_PER_DAY           the most paid per asset within any 24 hours (--per-day)
  X402_LEDGER            the ledger file (--ledger) [default: $XDG_DATA_HOME/x402/ledger.jsonl,
                         else ~/.local/share/x402/ledger.jsonl]
At least one key is needed to pay. Keys are never printed."
    };
}

macro_rules! exit_status {
    () => {
        "\
Exit status:
  0  success: paid (or nothing to pay), requirements printed
  1  failure: payment refused or failed, network error, unusable key
  2  usage error; pay: also an --asset whose decimals are not the token's, or an EVM
     --asset without an --evm-rpc of its chain (nothing is paid)
  3  pay: the payment was sent but its settlement is still pending (see its transaction)"
    };
}

/// The environment variables read, as `--help` lists them.
pub const ENVIRONMENT: &str = environment!();
/// The exit statuses, as `--help` lists them.
pub const EXIT_STATUS: &str = exit_status!();
const AFTER_HELP: &str = concat!(environment!(), "\n\n", exit_status!());
const REQUIREMENTS_AFTER_HELP: &str = "\
Exit status:
  0  success: the payment options printed (or no payment asked)
  1  failure: network error, unreadable 402
  2  usage error";

/// How a run ended; [`Exit::code`] is the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: paid (or nothing to pay), requirements printed, help or version shown.
    Success,
    /// 1: the payment was refused or failed, a network error, an unusable key.
    Failure,
    /// 2: the arguments could not be parsed (clap prints the usage), or `pay` refused an
    /// `--asset` whose decimals are not the token's (or could not be checked for want of an
    /// `--evm-rpc` of its chain); nothing was paid.
    Usage,
    /// 3: `pay` sent the payment, and the seller reported its settlement as still pending
    /// (`settlement_pending` with the transaction in its settlement header), whatever status it
    /// answered with: x402-seller answers 504 and withholds the content, other sellers 402.
    Pending,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Pending => 3,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// Pay for an x402-protected URL, or show what it asks for.
#[derive(Debug, clap::Parser)]
#[command(name = "x402", version, propagate_version = true, after_help = AFTER_HELP)]
pub(super) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Show what a URL asks for (its 402 payment options); pays nothing.
    #[command(after_help = REQUIREMENTS_AFTER_HELP)]
    Requirements(RequirementsArgs),
    /// GET a URL, paying its 402 once by policy; prints the body and the settlement.
    #[command(after_help = AFTER_HELP)]
    Pay(Box<PayArgs>),
    /// List what a facilitator's discovery catalogue (bazaar) or an origin's /.well-known/x402
    /// manifest offers for sale; pays nothing.
    #[command(after_help = super::discover::AFTER_HELP)]
    Discover(super::discover::DiscoverArgs),
    /// List the payments recorded in the ledger (every payment `pay` signed).
    #[command(after_help = HISTORY_AFTER_HELP)]
    History(HistoryArgs),
}

#[derive(Debug, clap::Args)]
struct RequirementsArgs {
    /// The URL.
    url: String,
    /// An asset to show amounts of, with its decimals (NETWORK is CAIP-2); repeatable. Each EVM
    /// network's default stablecoin is built in.
    #[arg(long = "asset", value_name = "NETWORK:ADDRESS:DECIMALS[:SYMBOL]", value_parser = parse_asset)]
    assets: Vec<KnownAsset>,
    /// Print the decoded 402 document as JSON on stdout (`null` when no payment is asked).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct PayArgs {
    /// The URL.
    url: String,
    /// The most one request may cost, in the asset's units (0.10). Required: the CLI never pays
    /// without a cap.
    #[arg(long, value_name = "AMOUNT", env = "X402_MAX", required = true)]
    max: String,
    /// The most this run may spend per asset, in the asset's units [default: no limit].
    #[arg(long, value_name = "AMOUNT")]
    total: Option<String>,
    /// Send the request again up to N times after an ambiguous outcome (a connection error, a
    /// 5xx), with the same signed payment and payment id: never pays twice [default: 0].
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10))]
    retries: u32,
    /// Pay only on these networks, preferred in this order (eip155:8453, eip155:*, solana:*);
    /// repeatable [default: any network a key can pay].
    #[arg(long = "network", value_name = "PATTERN", value_parser = parse_network)]
    networks: Vec<NetworkPattern>,
    /// An asset that may be paid, with its decimals (NETWORK is CAIP-2); repeatable. Each EVM
    /// network's default stablecoin is built in; other tokens and Solana mints need this.
    /// DECIMALS is checked against the token before anything is paid (--max and --total are read
    /// with it): an EVM token's decimals() on --evm-rpc (required with an EVM --asset), a Solana
    /// mint's on --solana-rpc; a mismatch exits 2.
    #[arg(long = "asset", value_name = "NETWORK:ADDRESS:DECIMALS[:SYMBOL]", value_parser = parse_asset)]
    assets: Vec<KnownAsset>,
    /// Prefer this scheme (exact, upto), best first; repeatable.
    #[arg(long = "prefer-scheme", value_name = "SCHEME")]
    prefer_schemes: Vec<String>,
    /// Read the EVM key from this file (hex, 0x optional).
    #[arg(
        long,
        value_name = "PATH",
        env = "X402_PRIVATE_KEY_FILE",
        hide_env_values = true
    )]
    key_file: Option<String>,
    /// Read the Solana keypair from this file (base58, or a solana-keygen JSON array).
    #[arg(
        long,
        value_name = "PATH",
        env = "X402_SOLANA_KEY_FILE",
        hide_env_values = true
    )]
    solana_key_file: Option<String>,
    /// The Solana RPC endpoint, for mints and blockhashes (it may carry an API key: never
    /// printed) [default: https://api.mainnet-beta.solana.com].
    #[arg(
        long,
        value_name = "URL",
        env = "X402_SOLANA_RPC",
        hide_env_values = true
    )]
    solana_rpc: Option<String>,
    /// An EVM RPC endpoint, to check each EVM --asset's decimals against the token's
    /// decimals() on its chain (it may carry an API key: never printed); repeatable, one per
    /// chain. Required with an EVM --asset: unchecked decimals are never trusted. With one, a
    /// Permit2 payment to a seller offering eip2612GasSponsoring carries an EIP-2612 permit
    /// when the allowance to Permit2 is short; otherwise payments need no EVM RPC.
    #[arg(
        long = "evm-rpc",
        value_name = "URL",
        env = "X402_EVM_RPC",
        hide_env_values = true
    )]
    evm_rpcs: Vec<String>,
    /// Print transaction links as URL_PREFIX followed by the transaction, on every network.
    /// Without it only Solana mainnet and devnet transactions get a link.
    #[arg(long, value_name = "URL_PREFIX", env = "X402_EXPLORER")]
    explorer: Option<String>,
    /// Print one JSON object on stdout (url, status, paid, pending, settlement, explorer, body,
    /// error) instead of the body and the settlement.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    governance: GovernanceArgs,
}

/// Which command.
#[derive(Debug, Clone)]
pub(super) enum Action {
    Requirements,
    Pay,
    Discover,
    History(HistoryArgs),
}

/// What the command line asked for.
#[derive(Debug)]
pub(super) struct Args {
    pub(super) command: Action,
    pub(super) url: String,
    pub(super) policy: Policy,
    pub(super) key_file: Option<String>,
    pub(super) solana_key_file: Option<String>,
    pub(super) solana_rpc: Option<String>,
    /// The `--asset` entries (checked against the chain before paying; the built-in ones are not).
    pub(super) assets: Vec<KnownAsset>,
    pub(super) evm_rpcs: Vec<String>,
    pub(super) explorer: Option<String>,
    pub(super) json: bool,
    /// `discover`'s filters.
    pub(super) discover: Option<super::discover::DiscoverArgs>,
    /// `--ledger` (or `$X402_LEDGER` as clap read it).
    pub(super) ledger: Option<String>,
    /// `pay --retries`.
    pub(super) retries: u32,
}

fn parse_network(s: &str) -> Result<NetworkPattern, String> {
    NetworkPattern::parse(s).map_err(|e| e.to_string())
}

pub(super) fn parse_asset(s: &str) -> Result<KnownAsset, String> {
    // NETWORK is CAIP-2 and itself contains one ':'.
    let parts: Vec<&str> = s.split(':').collect();
    let (network, rest) = match parts.as_slice() {
        [ns, reference, rest @ ..] if rest.len() >= 2 => (format!("{ns}:{reference}"), rest),
        _ => return Err("expected NETWORK:ADDRESS:DECIMALS[:SYMBOL]".to_owned()),
    };
    let network = Network::parse(&network).map_err(|e| e.to_string())?;
    let decimals = rest[1]
        .parse::<u8>()
        .map_err(|e| format!("decimals: {e}"))?;
    Ok(KnownAsset {
        network,
        address: rest[0].to_owned(),
        decimals,
        symbol: rest.get(2).copied().unwrap_or("tokens").to_owned(),
    })
}

/// The built-in known assets: the default stablecoins of each EVM network
/// (`x402_evm::assets::DEFAULT_ASSETS`).
fn builtin_assets() -> Vec<KnownAsset> {
    x402_evm::assets::DEFAULT_ASSETS
        .iter()
        .map(|a| KnownAsset {
            network: Network::eip155(a.chain),
            address: a.address.to_checksum(None),
            decimals: a.decimals,
            symbol: a.symbol.to_owned(),
        })
        .collect()
}

/// Parses the arguments (without the program name).
pub(super) fn parse(args: &[String]) -> Result<Args, clap::Error> {
    let cli = Cli::try_parse_from(std::iter::once("x402").chain(args.iter().map(String::as_str)))?;
    // The last --asset first, then the built-in ones: a flag overrides a built-in asset.
    let policy = |assets: Vec<KnownAsset>| Policy {
        assets: assets.into_iter().rev().chain(builtin_assets()).collect(),
        ..Policy::default()
    };
    Ok(match cli.command {
        Command::Requirements(a) => Args {
            command: Action::Requirements,
            url: a.url,
            policy: policy(a.assets),
            key_file: None,
            solana_key_file: None,
            solana_rpc: None,
            assets: Vec::new(),
            evm_rpcs: Vec::new(),
            explorer: None,
            json: a.json,
            discover: None,
            ledger: None,
            retries: 0,
        },
        Command::Discover(a) => Args {
            command: Action::Discover,
            url: a.url.clone(),
            policy: policy(a.assets.clone()),
            key_file: None,
            solana_key_file: None,
            solana_rpc: None,
            assets: Vec::new(),
            evm_rpcs: Vec::new(),
            explorer: None,
            json: a.json,
            discover: Some(a),
            ledger: None,
            retries: 0,
        },
        Command::History(a) => Args {
            command: Action::History(a),
            url: String::new(),
            policy: Policy::default(),
            key_file: None,
            solana_key_file: None,
            solana_rpc: None,
            assets: Vec::new(),
            evm_rpcs: Vec::new(),
            explorer: None,
            json: false,
            discover: None,
            ledger: None,
            retries: 0,
        },
        Command::Pay(a) => {
            let a = *a;
            Args {
                command: Action::Pay,
                url: a.url,
                policy: a.governance.apply(Policy {
                    max_per_request: Some(a.max),
                    max_total: a.total,
                    prefer_networks: a.networks.clone(),
                    networks: a.networks,
                    prefer_schemes: a.prefer_schemes,
                    ..policy(a.assets.clone())
                }),
                key_file: a.key_file,
                solana_key_file: a.solana_key_file,
                solana_rpc: a.solana_rpc,
                assets: a.assets,
                evm_rpcs: a.evm_rpcs,
                explorer: a.explorer,
                json: a.json,
                discover: None,
                ledger: a.governance.ledger,
                retries: a.retries,
            }
        }
    })
}
