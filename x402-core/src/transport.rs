//! How a request to a remote endpoint (a chain's RPC node, a facilitator) failed, told by kind.
//!
//! This is the one wording of transport failures in the workspace. The HTTP client's own error
//! text is never used: it names the URL, and a URL may carry an API token. A reqwest error is
//! classified with [`reqwest_failure!`](crate::reqwest_failure), a macro because the crates of the
//! workspace link different reqwest versions; other clients fill [`Flags`] themselves.

use std::fmt;

/// A failed request, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportFailure {
    /// No connection could be made (nothing was delivered).
    Connect,
    /// No (complete) answer within the timeout.
    Timeout,
    /// The answer had this error status.
    Status(u16),
    /// The answer's body could not be read or decoded.
    Body,
    /// A redirect, which is never followed.
    Redirect,
    /// The request failed for another reason.
    Request,
}

/// What an HTTP client error says about itself (reqwest's `is_connect`, `is_timeout`, `status`,
/// `is_body`/`is_decode`, `is_redirect`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    /// Connecting failed.
    pub connect: bool,
    /// The request timed out.
    pub timeout: bool,
    /// The status of the answer, when one came.
    pub status: Option<u16>,
    /// Reading or decoding the body failed.
    pub body: bool,
    /// A redirect was refused.
    pub redirect: bool,
}

impl TransportFailure {
    /// The kind of a failure from its client's flags; the first that applies, in the order of
    /// the variants.
    pub fn classify(f: Flags) -> Self {
        match f {
            Flags { connect: true, .. } => Self::Connect,
            Flags { timeout: true, .. } => Self::Timeout,
            Flags {
                status: Some(code), ..
            } => Self::Status(code),
            Flags { body: true, .. } => Self::Body,
            Flags { redirect: true, .. } => Self::Redirect,
            _ => Self::Request,
        }
    }

    /// Whether the request certainly never reached the endpoint.
    pub fn undelivered(self) -> bool {
        self == Self::Connect
    }
}

/// The [`TransportFailure`] of a `&reqwest::Error` of any reqwest version, read from its flags.
#[macro_export]
macro_rules! reqwest_failure {
    ($error:expr) => {{
        let e = $error;
        $crate::transport::TransportFailure::classify($crate::transport::Flags {
            connect: e.is_connect(),
            timeout: e.is_timeout(),
            status: e.status().map(|s| s.as_u16()),
            body: e.is_body() || e.is_decode(),
            redirect: e.is_redirect(),
        })
    }};
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect => f.write_str("cannot connect"),
            Self::Timeout => f.write_str("timed out"),
            Self::Status(code) => write!(f, "HTTP status {code}"),
            Self::Body => f.write_str("cannot read the response body"),
            Self::Redirect => f.write_str("redirect refused"),
            Self::Request => f.write_str("request failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_flag_that_applies_names_the_failure() {
        let connect_and_timeout = Flags {
            connect: true,
            timeout: true,
            ..Flags::default()
        };
        assert_eq!(
            TransportFailure::classify(connect_and_timeout),
            TransportFailure::Connect
        );
        let status = Flags {
            status: Some(429),
            body: true,
            ..Flags::default()
        };
        assert_eq!(
            TransportFailure::classify(status).to_string(),
            "HTTP status 429"
        );
        assert_eq!(
            TransportFailure::classify(Flags::default()),
            TransportFailure::Request
        );
        assert!(TransportFailure::Connect.undelivered());
        assert!(!TransportFailure::Timeout.undelivered());
    }
}
