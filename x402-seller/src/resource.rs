//! The service members of a route's resource (`serviceName`, `tags`, `iconUrl`), checked when the
//! paywall is built.

use std::collections::HashSet;

use x402_core::wire::ResourceInfo;

use crate::config::{ConfigError, Route};

/// Checks the service members against the limits of the reference's `ResourceInfo` schema,
/// which a catalogue applies (it drops a value outside them).
pub(crate) fn check(route: &Route) -> Result<(), ConfigError> {
    let bad = |member, why: String| Err(ConfigError::Resource { member, why });
    let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if let Some(name) = &route.service_name
        && (!printable(name) || name.len() > ResourceInfo::SERVICE_NAME_MAX)
    {
        return bad(
            "serviceName",
            format!(
                "{name:?} is not 1 to {} printable ASCII characters",
                ResourceInfo::SERVICE_NAME_MAX
            ),
        );
    }
    if let Some(tags) = &route.tags {
        if tags.len() > ResourceInfo::TAGS_MAX {
            return bad(
                "tags",
                format!("{} tags; at most {}", tags.len(), ResourceInfo::TAGS_MAX),
            );
        }
        let mut seen = HashSet::new();
        for tag in tags {
            if !printable(tag) || tag.len() > ResourceInfo::TAG_MAX {
                return bad(
                    "tags",
                    format!(
                        "{tag:?} is not 1 to {} printable ASCII characters",
                        ResourceInfo::TAG_MAX
                    ),
                );
            }
            if !seen.insert(tag.to_ascii_lowercase()) {
                return bad("tags", format!("{tag:?} is given twice"));
            }
        }
    }
    if let Some(url) = &route.icon_url {
        let lower = url.to_ascii_lowercase();
        let absolute = ["http://", "https://"]
            .iter()
            .any(|p| lower.starts_with(p) && lower.len() > p.len());
        if !absolute
            || url.chars().count() > ResourceInfo::ICON_URL_MAX
            || url.chars().any(char::is_control)
        {
            return bad(
                "iconUrl",
                format!(
                    "{url:?} is not an absolute http(s) URL of at most {} characters",
                    ResourceInfo::ICON_URL_MAX
                ),
            );
        }
    }
    Ok(())
}
