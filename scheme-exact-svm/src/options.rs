//! The facilitator's configuration of `exact` on one Solana network, and the builder the
//! catalogue calls. Unknown keys and bad values are errors naming the key; keys are never printed.

use std::time::Duration;

use serde::Deserialize;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use x402_core::{AllowList, Network, SchemeConfig, SchemeError};

use crate::facilitator::{Facilitator, Policy};
use crate::parse_keypair;
use crate::rpc::{Rpc, describe};

/// Options of `exact` on one Solana network (the merged network and scheme tables of the config
/// file; fee-payer keys already resolved from their `$VAR`s).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactSvmOptions {
    /// RPC URLs, tried in order.
    pub rpc_urls: Vec<String>,
    /// Fee-payer keypairs: base58 of the 64 keypair bytes, or the JSON byte array of a Solana
    /// CLI keypair file. Never printed.
    #[serde(default)]
    pub signer_keys: Vec<String>,
    /// Accepted mints (base58), or `"any"`: any mint that passes the checks (warned at
    /// start-up). Required.
    pub assets: AllowList<String>,
    /// Start-up refuses fee payers with less than this (lamports, decimal); `/ready` reports them.
    #[serde(default)]
    pub min_signer_balance: Option<String>,
    /// RPC request timeout in milliseconds.
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// The longest a settle waits for confirmation, in milliseconds (it answers earlier once the
    /// blockhash has expired).
    #[serde(default = "default_receipt_timeout_ms")]
    pub receipt_timeout_ms: u64,
    /// The highest compute-unit limit accepted.
    #[serde(default = "default_max_compute_unit_limit")]
    pub max_compute_unit_limit: u32,
    /// The highest compute-unit price accepted, in micro-lamports.
    #[serde(default = "default_max_compute_unit_price")]
    pub max_compute_unit_price: u64,
    /// The highest priority fee (limit × price) accepted, in lamports, whatever the payment.
    #[serde(default = "default_max_priority_fee_lamports")]
    pub max_priority_fee_lamports: u64,
    /// How long, in seconds, a payer whose transaction landed with an error (our fee payer paid
    /// its fee) is refused `payer_throttled`. 0 turns the cool-down off.
    #[serde(default = "default_failed_payer_cooldown_secs")]
    pub failed_payer_cooldown_secs: u64,
    /// The priority fee any payment may carry whatever its value, in lamports; above it the fee
    /// must stay below the payment's value (see `facilitator::priority`).
    #[serde(default = "default_priority_fee_floor_lamports")]
    pub priority_fee_floor_lamports: u64,
    /// What one atomic unit of a mint is worth at least, in lamports (a decimal string), per
    /// mint (base58): the value a payment's priority fee must stay below. Added to the defaults
    /// (each built-in stablecoin mint at "1"); a mint valued nowhere gets only the floor.
    #[serde(default)]
    pub priority_fee_lamports_per_unit: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for ExactSvmOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactSvmOptions")
            .field("rpc_urls", &self.rpc_urls.len())
            .field("signer_keys", &self.signer_keys.len())
            .field("assets", &self.assets)
            .field("min_signer_balance", &self.min_signer_balance)
            .field("rpc_timeout_ms", &self.rpc_timeout_ms)
            .field("receipt_timeout_ms", &self.receipt_timeout_ms)
            .field("max_compute_unit_limit", &self.max_compute_unit_limit)
            .field("max_compute_unit_price", &self.max_compute_unit_price)
            .field("max_priority_fee_lamports", &self.max_priority_fee_lamports)
            .field(
                "failed_payer_cooldown_secs",
                &self.failed_payer_cooldown_secs,
            )
            .field(
                "priority_fee_floor_lamports",
                &self.priority_fee_floor_lamports,
            )
            .field(
                "priority_fee_lamports_per_unit",
                &self.priority_fee_lamports_per_unit,
            )
            .finish()
    }
}

fn default_rpc_timeout_ms() -> u64 {
    10_000
}

fn default_receipt_timeout_ms() -> u64 {
    millis(Policy::default().confirm_timeout)
}

fn default_max_compute_unit_limit() -> u32 {
    Policy::default().max_compute_unit_limit
}

fn default_max_compute_unit_price() -> u64 {
    Policy::default().max_compute_unit_price
}

fn default_max_priority_fee_lamports() -> u64 {
    Policy::default().max_priority_fee_lamports
}

fn default_failed_payer_cooldown_secs() -> u64 {
    Policy::default().failed_payer_cooldown.as_secs()
}

fn default_priority_fee_floor_lamports() -> u64 {
    Policy::default().priority_fee_floor_lamports
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn config_error(m: impl Into<String>) -> SchemeError {
    SchemeError::Config(m.into())
}

impl ExactSvmOptions {
    /// The policy these options describe.
    pub fn policy(&self) -> Result<Policy, SchemeError> {
        let assets = self
            .assets
            .only()
            .map(|list| {
                list.iter()
                    .enumerate()
                    .map(|(i, a)| {
                        a.parse::<Pubkey>().map_err(|_| {
                            config_error(format!("assets[{i}] {a:?} is not a base58 public key"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let min_signer_balance = self
            .min_signer_balance
            .as_deref()
            .map(|m| {
                x402_core::amount::parse_u64(m)
                    .map_err(|e| config_error(format!("min_signer_balance: {e}")))
            })
            .transpose()?;
        let mut priority_fee_valuations = Policy::default().priority_fee_valuations;
        for (mint, value) in &self.priority_fee_lamports_per_unit {
            let key = mint.parse::<Pubkey>().map_err(|_| {
                config_error(format!(
                    "priority_fee_lamports_per_unit: {mint:?} is not a base58 public key"
                ))
            })?;
            let nano = crate::facilitator::priority::parse_valuation(value)
                .map_err(|e| config_error(format!("priority_fee_lamports_per_unit.{mint}: {e}")))?;
            priority_fee_valuations.insert(key, nano);
        }
        if self.receipt_timeout_ms == 0 || self.rpc_timeout_ms == 0 {
            return Err(config_error("timeouts must be positive"));
        }
        Ok(Policy {
            assets,
            max_compute_unit_limit: self.max_compute_unit_limit,
            max_compute_unit_price: self.max_compute_unit_price,
            max_priority_fee_lamports: self.max_priority_fee_lamports,
            priority_fee_floor_lamports: self.priority_fee_floor_lamports,
            priority_fee_valuations,
            min_signer_balance,
            confirm_timeout: Duration::from_millis(self.receipt_timeout_ms),
            failed_payer_cooldown: Duration::from_secs(self.failed_payer_cooldown_secs),
            ..Policy::default()
        })
    }

    /// The fee-payer keypairs (`signer_keys[i]` named in errors, never printed).
    pub fn fee_payers(&self) -> Result<Vec<Keypair>, SchemeError> {
        self.signer_keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                parse_keypair(k).map_err(|e| config_error(format!("signer_keys[{i}]: {e}")))
            })
            .collect()
    }
}

/// Builds the facilitator from a [`SchemeConfig`], refusing to start on a wrong chain or an
/// unfunded fee payer.
pub async fn build_facilitator(config: SchemeConfig) -> Result<Facilitator, SchemeError> {
    let network = config.network.clone();
    let options: ExactSvmOptions = serde_json::from_value(config.options.clone())
        .map_err(|e| config_error(format!("exact on {network}: {e}")))?;
    let policy = options.policy()?;
    if options.assets == AllowList::Any {
        tracing::warn!(
            network = %config.network,
            "assets = \"any\": payments in any mint that passes the checks are accepted"
        );
    }
    let fee_payers = options.fee_payers()?;
    let rpc = Rpc::new(
        &options.rpc_urls,
        Duration::from_millis(options.rpc_timeout_ms),
    )?;
    check_genesis(&rpc, &network).await?;
    let facilitator = Facilitator::new(network.clone(), rpc, fee_payers, config.store, policy)?;
    let floor = facilitator.policy().min_signer_balance.unwrap_or(1).max(1);
    for status in facilitator.probe().await?.signers {
        let balance = status.balance.to_u64().unwrap_or(u64::MAX);
        if balance < floor {
            return Err(config_error(format!(
                "fee payer {} on {network} holds {balance} lamports, below the floor of {floor}",
                status.address
            )));
        }
    }
    Ok(facilitator)
}

/// Checks that every endpoint that answers serves `network`: its CAIP-2 reference is the first 32
/// characters of the base58 genesis hash. Unreachable endpoints are logged; none reachable is an
/// error. Then pins the chain in `rpc`: an endpoint unreachable now, or failing later, has its
/// genesis hash read again before its next use (see [`crate::rpc`]).
pub async fn check_genesis(rpc: &Rpc, network: &Network) -> Result<(), SchemeError> {
    let mut answered = 0;
    for (i, client) in rpc.clients().iter().enumerate() {
        match client.get_genesis_hash().await {
            Ok(hash) => {
                let hash = hash.to_string();
                if hash.get(..32) != Some(network.reference()) {
                    return Err(config_error(format!(
                        "rpc_urls[{i}] serves the chain with genesis hash {hash}, not {network}"
                    )));
                }
                answered += 1;
            }
            Err(e) => {
                tracing::warn!(
                    endpoint = i,
                    error = %describe(&e),
                    %network,
                    "RPC endpoint unreachable at start-up"
                );
                rpc.suspect(i);
            }
        }
    }
    if answered == 0 {
        return Err(SchemeError::Rpc(format!(
            "no RPC endpoint for {network} answered getGenesisHash"
        )));
    }
    rpc.pin_genesis(network.reference());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use solana_signer::Signer;

    #[test]
    fn keys_in_both_formats_and_errors_without_secrets() {
        let kp = Keypair::new_from_array([7; 32]);
        let b58 = kp.to_base58_string();
        assert_eq!(parse_keypair(&b58).unwrap().pubkey(), kp.pubkey());
        let json = serde_json::to_string(&kp.to_bytes().to_vec()).unwrap();
        assert_eq!(parse_keypair(&json).unwrap().pubkey(), kp.pubkey());
        let mut bad = kp.to_bytes();
        bad[40] ^= 1; // public half does not match the secret
        let e = parse_keypair(&serde_json::to_string(&bad.to_vec()).unwrap()).unwrap_err();
        assert!(!e.contains(&b58[..10]));
        assert!(parse_keypair("not a key").is_err());
        assert!(parse_keypair("[1,2,3]").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let ok = serde_json::json!({"rpc_urls": ["http://x"], "signer_keys": [], "assets": "any"});
        let o: ExactSvmOptions = serde_json::from_value(ok).unwrap();
        assert_eq!(o.policy().unwrap(), Policy::default());
        let off =
            serde_json::json!({"rpc_urls": [], "assets": "any", "failed_payer_cooldown_secs": 0});
        let o: ExactSvmOptions = serde_json::from_value(off).unwrap();
        assert_eq!(o.policy().unwrap().failed_payer_cooldown, Duration::ZERO);
        // The allow-list is required: accepting any mint is written down, never a default.
        let missing = serde_json::json!({"rpc_urls": ["http://x"]});
        let e = serde_json::from_value::<ExactSvmOptions>(missing).unwrap_err();
        assert!(e.to_string().contains("missing field `assets`"), "{e}");
        let unknown = serde_json::json!({"rpc_urls": [], "assets": "any", "rpc_url": "x"});
        assert!(serde_json::from_value::<ExactSvmOptions>(unknown).is_err());
        let valued = serde_json::json!({"rpc_urls": [], "assets": "any",
            "priority_fee_lamports_per_unit": {"So11111111111111111111111111111111111111112": "0.5"}});
        let o: ExactSvmOptions = serde_json::from_value(valued).unwrap();
        let policy = o.policy().unwrap();
        assert_eq!(
            policy.priority_fee_valuations.len(),
            Policy::default().priority_fee_valuations.len() + 1
        );
        let bad_value = serde_json::json!({"rpc_urls": [], "assets": "any",
            "priority_fee_lamports_per_unit": {"So11111111111111111111111111111111111111112": "1e9"}});
        let o: ExactSvmOptions = serde_json::from_value(bad_value).unwrap();
        let e = o.policy().unwrap_err().to_string();
        assert!(e.contains("priority_fee_lamports_per_unit"), "{e}");
        let bad = serde_json::json!({"rpc_urls": [], "assets": ["nope"]});
        let o: ExactSvmOptions = serde_json::from_value(bad).unwrap();
        assert!(o.policy().unwrap_err().to_string().contains("assets[0]"));
        let secret = Keypair::new().to_base58_string();
        let keys =
            serde_json::json!({"rpc_urls": [], "assets": "any", "signer_keys": ["zz", secret]});
        let o: ExactSvmOptions = serde_json::from_value(keys).unwrap();
        let e = o.fee_payers().unwrap_err().to_string();
        assert!(e.contains("signer_keys[0]") && !e.contains(&secret), "{e}");
        assert!(!format!("{o:?}").contains(&secret));
    }
}
