//! Finding the scheme for a payment.
//!
//! Two layers:
//!
//! * **The catalogue** — filled at link time. A scheme crate submits a constant
//!   [`SchemeDescriptor`] with [`register_scheme!`](crate::register_scheme); the catalogue collects
//!   them once, into a sorted map, and fails on a duplicate id naming both crates. A descriptor is
//!   data plus a `fn` that builds a live scheme from configuration — never a live client.
//! * **The registry** — built explicitly, with no global state: `(versions, network pattern,
//!   scheme instance)` entries, looked up by `(version, scheme, network)` with the most specific
//!   pattern first (`eip155:8453` before `eip155:*`). The facilitator binary fills it from its
//!   configuration and the catalogue; libraries and tests fill it by hand, as the reference SDKs'
//!   `register("eip155:*", scheme)` does.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use crate::roles::{FacilitatorRole, Roles};
use crate::scheme::{Scheme, SchemeError};
use crate::settlement::{MemoryStore, SettlementStore};
use crate::{Network, NetworkError, NetworkPattern, Reason, Rejection, X402Version};

/// What a scheme builder receives: the network it will serve, its options table (secrets
/// already resolved by the caller; never logged), the settlement store and the resources shared
/// between schemes.
#[derive(Clone)]
pub struct SchemeConfig {
    /// The network to serve.
    pub network: Network,
    /// The scheme's options (the config file's table for this scheme on this network).
    pub options: serde_json::Value,
    /// Where claims and outcomes are recorded (one store per facilitator: identities such as a
    /// Permit2 nonce are shared between schemes).
    pub store: Arc<dyn SettlementStore>,
    /// Resources schemes share per network (one EVM signer pool serves `exact` and `upto`).
    pub shared: Arc<Shared>,
}

impl SchemeConfig {
    /// A configuration with a fresh in-memory store and nothing shared yet.
    pub fn new(network: Network, options: serde_json::Value) -> Self {
        Self {
            network,
            options,
            store: Arc::new(MemoryStore::new()),
            shared: Arc::new(Shared::default()),
        }
    }
}

impl fmt::Debug for SchemeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Options may hold resolved secrets: show only their keys.
        let keys: Vec<&str> = self
            .options
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        f.debug_struct("SchemeConfig")
            .field("network", &self.network)
            .field("option_keys", &keys)
            .finish_non_exhaustive()
    }
}

/// Resources built once and shared by every scheme that asks for the same key (a signer pool
/// per network, say). Values are created by the first caller.
#[derive(Default)]
pub struct Shared {
    values: Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .values
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Shared").field("keys", &keys).finish()
    }
}

impl Shared {
    /// The value under `key`, created by `init` on first use. A value of another type under the
    /// same key is an error naming the key.
    pub fn get_or_try_init<T, E>(
        &self,
        key: &str,
        init: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, SharedError<E>>
    where
        T: Any + Send + Sync,
    {
        let mut map = self.values.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = map.get(key) {
            return Arc::clone(v)
                .downcast::<T>()
                .map_err(|_| SharedError::WrongType(key.to_owned()));
        }
        let value = Arc::new(init().map_err(SharedError::Init)?);
        map.insert(
            key.to_owned(),
            Arc::clone(&value) as Arc<dyn Any + Send + Sync>,
        );
        Ok(value)
    }
}

/// A shared resource could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SharedError<E> {
    /// Its initializer failed.
    #[error(transparent)]
    Init(E),
    /// Another type is stored under the key.
    #[error("shared resource {0:?} has another type")]
    WrongType(String),
}

/// What a builder returns: a future of the live facilitator role.
pub type BuildFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Arc<dyn FacilitatorRole>, SchemeError>> + Send>,
>;

/// Builds a live facilitator role from configuration (asynchronously: a builder may need its
/// chain, to seed signer nonces for instance). It returns a [`FacilitatorRole`], whose `verify`
/// and `settle` are required methods: a registered scheme cannot lack them.
pub type BuildFn = fn(SchemeConfig) -> BuildFuture;

/// A scheme crate's registration: constant data plus a builder. Written by
/// [`register_scheme!`](crate::register_scheme), which derives the id and the crate name.
#[derive(Debug)]
pub struct SchemeDescriptor {
    /// Stable id, unique across the workspace: `<scheme>-<namespace>` (`exact-eip155`).
    pub id: &'static str,
    /// The crate that registered it (`env!("CARGO_PKG_NAME")`), for error messages.
    pub crate_name: &'static str,
    /// The scheme name on the wire.
    pub scheme: &'static str,
    /// The CAIP-2 namespace served (`eip155`, `solana`).
    pub namespace: &'static str,
    /// The protocol versions served.
    pub versions: &'static [X402Version],
    /// Builds an instance for one network.
    pub build: BuildFn,
}

inventory::collect!(SchemeDescriptor);

/// Registers the calling crate's scheme at link time, and defines its `SCHEME` (the wire name),
/// `ID` (`<scheme>-<namespace>`, the catalogue key), `ANY_NETWORK` (`<namespace>:*`) and `VERSIONS`
/// constants.
///
/// ```ignore
/// x402_core::register_scheme! {
///     scheme: "exact",
///     namespace: "eip155",
///     versions: [V1, V2],
///     build: build_facilitator,   // fn(SchemeConfig) -> BuildFuture
///     when: feature = "facilitator", // optional: register only in builds with this cfg
/// }
/// ```
///
/// With `when`, the constants are always defined and the registration (and the builder it
/// names) only where the cfg holds: a crate whose facilitator role is a Cargo feature compiles
/// its seller and buyer without the settlement code.
#[macro_export]
macro_rules! register_scheme {
    (
        scheme: $scheme:literal,
        namespace: $namespace:literal,
        versions: [$($version:ident),+ $(,)?],
        build: $build:expr $(,)?
    ) => {
        $crate::register_scheme! {
            scheme: $scheme,
            namespace: $namespace,
            versions: [$($version),+],
            build: $build,
            when: all(),
        }
    };
    (
        scheme: $scheme:literal,
        namespace: $namespace:literal,
        versions: [$($version:ident),+ $(,)?],
        build: $build:expr,
        when: $when:meta $(,)?
    ) => {
        /// The scheme name on the wire.
        pub const SCHEME: &str = $scheme;
        /// The catalogue id of this scheme: `<scheme>-<namespace>`.
        pub const ID: &str = concat!($scheme, "-", $namespace);
        /// The network pattern of every network of its namespace (`<namespace>:*`), for
        /// `Registry::register`.
        pub const ANY_NETWORK: &str = concat!($namespace, ":*");
        /// The protocol versions this scheme serves.
        pub const VERSIONS: &[$crate::X402Version] = &[$($crate::X402Version::$version),+];
        #[cfg($when)]
        $crate::inventory::submit! {
            $crate::SchemeDescriptor {
                id: ID,
                crate_name: env!("CARGO_PKG_NAME"),
                scheme: SCHEME,
                namespace: $namespace,
                versions: VERSIONS,
                build: $build,
            }
        }
    };
}

/// Two descriptors share an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scheme id {id:?} is registered twice: by crate {first} and by crate {second}")]
pub struct DuplicateId {
    /// The id.
    pub id: &'static str,
    /// The crate registered first (in sorted order).
    pub first: &'static str,
    /// The other crate.
    pub second: &'static str,
}

/// The link-time catalogue of scheme descriptors, sorted by id.
#[derive(Debug)]
pub struct Catalogue {
    by_id: BTreeMap<&'static str, &'static SchemeDescriptor>,
}

impl Catalogue {
    /// Collects the given descriptors; a duplicate id is an error naming both crates.
    pub fn from_descriptors(
        descriptors: impl IntoIterator<Item = &'static SchemeDescriptor>,
    ) -> Result<Self, DuplicateId> {
        let mut sorted: Vec<&'static SchemeDescriptor> = descriptors.into_iter().collect();
        sorted.sort_by(|a, b| (a.id, a.crate_name).cmp(&(b.id, b.crate_name)));
        let mut by_id = BTreeMap::new();
        for d in sorted {
            if let Some(first) = by_id.insert(d.id, d) {
                return Err(DuplicateId {
                    id: d.id,
                    first: first.crate_name,
                    second: d.crate_name,
                });
            }
        }
        Ok(Self { by_id })
    }

    /// The descriptors linked into this binary, collected once.
    pub fn linked() -> Result<&'static Catalogue, DuplicateId> {
        static LINKED: OnceLock<Result<Catalogue, DuplicateId>> = OnceLock::new();
        LINKED
            .get_or_init(|| Self::from_descriptors(inventory::iter::<SchemeDescriptor>))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_id.keys().copied()
    }

    /// The descriptor with this id.
    pub fn get(&self, id: &str) -> Option<&'static SchemeDescriptor> {
        self.by_id.get(id).copied()
    }

    /// The descriptor of `scheme` on `namespace` (by the descriptors' own fields, never by an id
    /// spelled here).
    pub fn find(&self, scheme: &str, namespace: &str) -> Option<&'static SchemeDescriptor> {
        self.iter()
            .find(|d| d.scheme == scheme && d.namespace == namespace)
    }

    /// The descriptors, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = &'static SchemeDescriptor> + '_ {
        self.by_id.values().copied()
    }
}

/// Why an entry could not be added to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The pattern is not a network or `namespace:*`.
    #[error(transparent)]
    Pattern(#[from] NetworkError),
    /// The same (version, scheme, pattern) twice.
    #[error("scheme {scheme:?} is already registered for x402 v{version} on {pattern}")]
    Duplicate {
        /// The version.
        version: X402Version,
        /// The scheme.
        scheme: &'static str,
        /// The pattern.
        pattern: NetworkPattern,
    },
    /// The scheme's builder failed.
    #[error("building {id} for {network}: {source}")]
    Build {
        /// The descriptor id.
        id: &'static str,
        /// The network.
        network: Network,
        /// The builder's error.
        #[source]
        source: SchemeError,
    },
}

/// One registry entry.
#[derive(Debug, Clone)]
pub struct RegistryEntry {
    /// The version served.
    pub version: X402Version,
    /// The networks served.
    pub pattern: NetworkPattern,
    /// The scheme.
    pub scheme: Arc<dyn Scheme>,
}

/// Why no scheme serves a payment, in the order it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// No entry has this scheme name at all.
    UnknownScheme,
    /// The scheme exists, but not for this protocol version.
    VersionNotServed,
    /// The scheme and version exist, but not on this network.
    NetworkNotServed,
}

impl Miss {
    /// The reason code for a response.
    pub fn rejection(self, version: X402Version, scheme: &str, network: &str) -> Rejection {
        match self {
            Miss::UnknownScheme => Rejection::with_message(
                Reason::UNSUPPORTED_SCHEME,
                format!("no scheme {scheme:?} is registered"),
            ),
            Miss::VersionNotServed => Rejection::with_message(
                Reason::INVALID_X402_VERSION,
                format!("scheme {scheme:?} is not served for x402 v{version}"),
            ),
            Miss::NetworkNotServed => Rejection::with_message(
                Reason::INVALID_NETWORK,
                format!("scheme {scheme:?} (x402 v{version}) is not served on {network}"),
            ),
        }
    }
}

/// Schemes by (version, scheme, network pattern), most specific pattern first.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entries: Vec<RegistryEntry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `scheme` for `versions` on `pattern` (`"eip155:*"`, `"eip155:8453"`).
    pub fn register(
        &mut self,
        pattern: &str,
        versions: &[X402Version],
        scheme: Arc<dyn Scheme>,
    ) -> Result<&mut Self, RegistryError> {
        let pattern = NetworkPattern::parse(pattern)?;
        for &version in versions {
            if self.entries.iter().any(|e| {
                e.version == version && e.pattern == pattern && e.scheme.scheme() == scheme.scheme()
            }) {
                return Err(RegistryError::Duplicate {
                    version,
                    scheme: scheme.scheme(),
                    pattern,
                });
            }
        }
        for &version in versions {
            self.entries.push(RegistryEntry {
                version,
                pattern: pattern.clone(),
                scheme: Arc::clone(&scheme),
            });
        }
        // Stable sort: exact networks first, registration order otherwise.
        self.entries
            .sort_by_key(|e| std::cmp::Reverse(e.pattern.specificity()));
        Ok(self)
    }

    /// Builds `descriptor` for `config.network` and adds it for all its versions.
    pub async fn register_descriptor(
        &mut self,
        descriptor: &'static SchemeDescriptor,
        config: SchemeConfig,
    ) -> Result<&mut Self, RegistryError> {
        let network = config.network.clone();
        let facilitator =
            (descriptor.build)(config)
                .await
                .map_err(|source| RegistryError::Build {
                    id: descriptor.id,
                    network: network.clone(),
                    source,
                })?;
        if facilitator.scheme() != descriptor.scheme {
            return Err(RegistryError::Build {
                id: descriptor.id,
                network,
                source: SchemeError::Config(format!(
                    "crate {} built a {:?} facilitator for its {:?} descriptor",
                    descriptor.crate_name,
                    facilitator.scheme(),
                    descriptor.scheme
                )),
            });
        }
        let scheme = Arc::new(Roles::new(descriptor.scheme).with_facilitator(facilitator));
        self.register(network.as_str(), descriptor.versions, scheme)
    }

    /// The scheme serving (version, scheme, network), most specific pattern first.
    pub fn lookup(
        &self,
        version: X402Version,
        scheme: &str,
        network: &Network,
    ) -> Result<&Arc<dyn Scheme>, Miss> {
        let mut miss = Miss::UnknownScheme;
        for e in self.entries.iter().filter(|e| e.scheme.scheme() == scheme) {
            match (e.version == version, e.pattern.matches(network)) {
                (true, true) => return Ok(&e.scheme),
                // Served on this network, but in another protocol version.
                (false, true) => miss = Miss::VersionNotServed,
                _ if miss == Miss::UnknownScheme => miss = Miss::NetworkNotServed,
                _ => {}
            }
        }
        Err(miss)
    }

    /// All entries, most specific first.
    pub fn entries(&self) -> &[RegistryEntry] {
        &self.entries
    }
}
