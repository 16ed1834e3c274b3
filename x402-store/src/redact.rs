//! Store addresses without their secrets, for logs, errors and `Debug` output (threat model S85:
//! no secret in any `Debug`, error or log).

/// What is shown in place of a secret.
const HIDDEN: &str = "***";

/// `url` as it may be shown: a password becomes `***`, a query or fragment (which may carry
/// `password=`, `sslpassword=` or a token) becomes `?<redacted>`, and text that cannot be read
/// unambiguously as `scheme:…` (a `key=value` connection string, a password with an unescaped
/// `@`, `/`, `?` or `#`) shows nothing but its scheme.
///
/// ```
/// use x402_store::redact_url;
/// assert_eq!(
///     redact_url("postgres://x402:s3cret@db.internal:5432/x402?sslmode=require"),
///     "postgres://x402:***@db.internal:5432/x402?<redacted>"
/// );
/// assert_eq!(redact_url("sqlite:/var/lib/x402/settlements.db"), "sqlite:/var/lib/x402/settlements.db");
/// assert_eq!(redact_url("host=db password=s3cret"), "<redacted>");
/// ```
pub fn redact_url(url: &str) -> String {
    if url == "memory" {
        return url.to_owned();
    }
    let Some((scheme, rest)) = url.split_once(':') else {
        return "<redacted>".to_owned();
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return "<redacted>".to_owned();
    }
    let Some(hier) = rest.strip_prefix("//") else {
        // Opaque: `sqlite:path`, `file:path`, `memory:`.
        if rest.contains('@') {
            return format!("{scheme}:<redacted>");
        }
        return format!("{scheme}:{}", without_query(rest));
    };
    let end = hier.find(['/', '?', '#']).unwrap_or(hier.len());
    let (authority, tail) = hier.split_at(end);
    // An `@` past the authority, or more than one in it, means a user or password with an
    // unescaped delimiter: where the secret ends cannot be told, so show none of it.
    if tail.contains('@') || authority.matches('@').count() > 1 {
        return format!("{scheme}://<redacted>");
    }
    let shown_authority = match authority.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:{HIDDEN}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{shown_authority}{}", without_query(tail))
}

/// `text` up to its query or fragment, which is replaced by `?<redacted>`.
fn without_query(text: &str) -> String {
    match text.find(['?', '#']) {
        Some(at) => format!("{}?<redacted>", &text[..at]),
        None => text.to_owned(),
    }
}

/// `text` with every occurrence of `secret` replaced by `***` (a driver's error message that
/// might echo a connection parameter, say). An empty secret changes nothing.
#[cfg(feature = "postgres")]
pub(crate) fn scrub(text: String, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() && text.contains(secret) => text.replace(secret, HIDDEN),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_queries_and_fragments_never_show() {
        let cases = [
            ("memory", "memory"),
            ("hunter2", "<redacted>"),
            ("sqlite:/var/lib/x402/s.db", "sqlite:/var/lib/x402/s.db"),
            ("sqlite:data/s.db?key=SECRET", "sqlite:data/s.db?<redacted>"),
            ("file:///srv/s.db", "file:///srv/s.db"),
            (
                "postgres://x402:SECRET@db:5432/x402",
                "postgres://x402:***@db:5432/x402",
            ),
            (
                "postgresql://x402:SECRET@db/x402?sslmode=require&password=SECRET",
                "postgresql://x402:***@db/x402?<redacted>",
            ),
            ("postgres://x402@db/x402", "postgres://x402@db/x402"),
            ("postgres://:SECRET@db/x402", "postgres://:***@db/x402"),
            ("postgres://db/x402#SECRET", "postgres://db/x402?<redacted>"),
            (
                "postgres://x402:SE:CRET@[::1]:5/d",
                "postgres://x402:***@[::1]:5/d",
            ),
            // Unescaped delimiters inside the password: nothing past the scheme.
            ("postgres://x402:SE@CRET@db/x402", "postgres://<redacted>"),
            ("postgres://x402:SE/CRET@db/x402", "postgres://<redacted>"),
            ("postgres://x402:SE?CRET@db/x402", "postgres://<redacted>"),
            ("postgres://x402:SE#CRET@db/x402", "postgres://<redacted>"),
            ("redis:x402:SECRET@db", "redis:<redacted>"),
            // Not a URL: a key=value connection string.
            ("host=db user=x402 password=SECRET", "<redacted>"),
            ("host=db password=SE:CRET", "<redacted>"),
            ("", "<redacted>"),
        ];
        for (url, shown) in cases {
            let redacted = redact_url(url);
            assert_eq!(redacted, shown, "redact_url({url:?})");
            assert!(!redacted.contains("SECRET"), "{redacted}");
            assert!(!redacted.contains("SE"), "{redacted}");
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn scrub_hides_a_known_secret() {
        assert_eq!(
            scrub("auth failed for hunter2".into(), Some("hunter2")),
            "auth failed for ***"
        );
        assert_eq!(scrub("nothing".into(), Some("")), "nothing");
        assert_eq!(scrub("nothing".into(), None), "nothing");
    }
}
