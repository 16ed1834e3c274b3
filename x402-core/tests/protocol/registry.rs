//! The link-time catalogue and the explicit registry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::sync::Arc;

use async_trait::async_trait;
use x402_core::registry::{Miss, RegistryError};
use x402_core::{
    Catalogue, FacilitatorRole, Network, PaymentContext, Reason, Registry, Rejection, Role, Roles,
    Scheme, SchemeConfig, SchemeDescriptor, SchemeError, Settlement, Verdict, X402Version,
};

#[derive(Debug)]
struct Named(&'static str, &'static str);

#[async_trait]
impl FacilitatorRole for Named {
    fn scheme(&self) -> &'static str {
        self.0
    }
    async fn verify(&self, _: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        Ok(Verdict::valid(self.1))
    }
    async fn settle(&self, _: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        Ok(Settlement::refused(
            None,
            Rejection::new(Reason::UNEXPECTED_SETTLE_ERROR),
        ))
    }
}

fn build_fail(_: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async { Err(SchemeError::Config("no".into())) })
}

static ALPHA: SchemeDescriptor = SchemeDescriptor {
    id: "exact-eip155",
    crate_name: "crate-alpha",
    scheme: "exact",
    namespace: "eip155",
    versions: &[X402Version::V2],
    build: build_fail,
};
static BETA: SchemeDescriptor = SchemeDescriptor {
    id: "exact-eip155",
    crate_name: "crate-beta",
    scheme: "exact",
    namespace: "eip155",
    versions: &[X402Version::V2],
    build: build_fail,
};
static GAMMA: SchemeDescriptor = SchemeDescriptor {
    id: "exact-solana",
    crate_name: "crate-gamma",
    scheme: "exact",
    namespace: "solana",
    versions: &[X402Version::V1, X402Version::V2],
    build: build_fail,
};

#[test]
fn duplicate_id_names_both_crates() {
    let err = Catalogue::from_descriptors([&GAMMA, &BETA, &ALPHA]).unwrap_err();
    assert_eq!(err.id, "exact-eip155");
    let msg = err.to_string();
    assert!(
        msg.contains("crate-alpha") && msg.contains("crate-beta"),
        "{msg}"
    );
}

#[tokio::test]
async fn catalogue_is_sorted_and_builds_through_descriptors() {
    let cat = Catalogue::from_descriptors([&GAMMA, &ALPHA]).unwrap();
    assert_eq!(
        cat.ids().collect::<Vec<_>>(),
        ["exact-eip155", "exact-solana"]
    );
    // A builder failure surfaces as a registry error naming the descriptor and network.
    let mut reg = Registry::new();
    let err = reg
        .register_descriptor(
            cat.get("exact-solana").unwrap(),
            SchemeConfig::new(
                Network::parse("solana:x").unwrap(),
                serde_json::json!({"key": "secret-value"}),
            ),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("exact-solana") && msg.contains("solana:x"),
        "{msg}"
    );
    // Debug output of a config never shows option values.
    let cfg = SchemeConfig::new(
        Network::eip155(1),
        serde_json::json!({"signer": "0xdeadbeef"}),
    );
    let shown = format!("{cfg:?}");
    assert!(
        shown.contains("signer") && !shown.contains("deadbeef"),
        "{shown}"
    );
}

#[test]
fn the_test_binary_links_no_scheme() {
    // x402-core alone registers nothing; scheme crates do (asserted per feature set in
    // facilitator-bin).
    assert_eq!(Catalogue::linked().unwrap().ids().count(), 0);
}

#[test]
fn lookup_prefers_the_most_specific_pattern() {
    let mut reg = Registry::new();
    reg.register(
        "eip155:*",
        &[X402Version::V2],
        Named("exact", "wide").into_scheme(),
    )
    .unwrap();
    reg.register(
        "eip155:8453",
        &[X402Version::V2],
        Named("exact", "base").into_scheme(),
    )
    .unwrap();
    reg.register(
        "solana:*",
        &[X402Version::V1],
        Named("exact", "sol").into_scheme(),
    )
    .unwrap();
    let payer = |n: &str| {
        let net = Network::parse(n).unwrap();
        let s = reg.lookup(X402Version::V2, "exact", &net).unwrap();
        format!("{s:?}")
    };
    assert!(payer("eip155:8453").contains("base"));
    assert!(payer("eip155:1").contains("wide"));

    let net = |n: &str| Network::parse(n).unwrap();
    assert_eq!(
        reg.lookup(X402Version::V2, "upto", &net("eip155:1"))
            .unwrap_err(),
        Miss::UnknownScheme
    );
    assert_eq!(
        reg.lookup(X402Version::V2, "exact", &net("solana:abc"))
            .unwrap_err(),
        Miss::VersionNotServed
    );
    assert_eq!(
        reg.lookup(X402Version::V1, "exact", &net("cosmos:hub"))
            .unwrap_err(),
        Miss::NetworkNotServed
    );
}

#[test]
fn duplicate_and_bad_registrations_are_errors() {
    let mut reg = Registry::new();
    reg.register(
        "eip155:1",
        &[X402Version::V1, X402Version::V2],
        Named("exact", "a").into_scheme(),
    )
    .unwrap();
    let dup = reg
        .register(
            "eip155:1",
            &[X402Version::V2],
            Named("exact", "b").into_scheme(),
        )
        .unwrap_err();
    assert!(matches!(dup, RegistryError::Duplicate { .. }), "{dup}");
    // Nothing half-registered: v2 on eip155:1 still routes to the first.
    let s = reg
        .lookup(X402Version::V2, "exact", &Network::eip155(1))
        .unwrap();
    assert!(format!("{s:?}").contains("\"a\""));
    assert!(matches!(
        reg.register(
            "base",
            &[X402Version::V2],
            Named("exact", "c").into_scheme()
        ),
        Err(RegistryError::Pattern(_))
    ));
    // Another scheme name on the same pattern is fine.
    reg.register(
        "eip155:1",
        &[X402Version::V2],
        Named("upto", "d").into_scheme(),
    )
    .unwrap();
}

#[test]
fn shared_resources_are_built_once_per_key() {
    let cfg = SchemeConfig::new(Network::eip155(1), serde_json::Value::Null);
    let mut calls = 0;
    let a = cfg
        .shared
        .get_or_try_init::<u32, ()>("pool:eip155:1", || {
            calls += 1;
            Ok(7)
        })
        .unwrap();
    let b = cfg
        .shared
        .get_or_try_init::<u32, ()>("pool:eip155:1", || {
            calls += 1;
            Ok(8)
        })
        .unwrap();
    assert_eq!((*a, *b, calls), (7, 7, 1));
    assert!(Arc::ptr_eq(&a, &b));
    let wrong = cfg
        .shared
        .get_or_try_init::<String, std::io::Error>("pool:eip155:1", || Ok(String::new()));
    assert!(wrong.unwrap_err().to_string().contains("pool:eip155:1"));
    let failed = cfg
        .shared
        .get_or_try_init::<u32, &str>("other", || Err("boom"));
    assert!(failed.is_err());
}

fn build_upto(_: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async {
        let facilitator: Arc<dyn FacilitatorRole> = Arc::new(Named("upto", "x"));
        Ok(facilitator)
    })
}

static MISLABELLED: SchemeDescriptor = SchemeDescriptor {
    id: "exact-eip155",
    crate_name: "crate-mislabelled",
    scheme: "exact",
    namespace: "eip155",
    versions: &[X402Version::V2],
    build: build_upto,
};

#[tokio::test]
async fn a_descriptor_building_another_schemes_facilitator_is_refused_naming_its_crate() {
    let mut reg = Registry::new();
    let err = reg
        .register_descriptor(
            &MISLABELLED,
            SchemeConfig::new(Network::parse("eip155:1").unwrap(), serde_json::json!({})),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("crate-mislabelled"), "{err}");
    assert!(reg.entries().is_empty());
}

#[tokio::test]
async fn roles_answer_a_role_they_were_not_given() {
    let scheme = Roles::new("exact");
    let request = x402_core::PriceRequest {
        network: Network::parse("eip155:1").unwrap(),
        price: x402_core::Price::Decimal("1".into()),
        pay_to: "0x0".into(),
        asset: None,
        max_timeout_seconds: None,
        facilitator_kind: None,
    };
    match scheme.requirements(&request).await {
        Err(SchemeError::RoleNotConfigured { scheme, role }) => {
            assert_eq!((scheme, role), ("exact", Role::Seller));
        }
        other => panic!("{other:?}"),
    }
    // A facilitator-only composition serves verify and reports no seller.
    let facilitator = Named("exact", "payer").into_scheme();
    assert_eq!(facilitator.scheme(), "exact");
    assert!(matches!(
        facilitator.requirements(&request).await,
        Err(SchemeError::RoleNotConfigured {
            role: Role::Seller,
            ..
        })
    ));
}
