//! Retrying one logical request after an ambiguous outcome without paying twice:
//! [`Buyer::execute_idempotent`].

use std::time::Duration;

use crate::client::{Buyer, Error, Paid, read_402, settlement_of, settlement_pending};

/// How [`Buyer::execute_idempotent`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// How many times each request (the unpaid one, then the paid one) is sent at most; at
    /// least 1. Default 3.
    pub attempts: u32,
    /// The pause before the first retry, doubled before each next one. Default 500 ms.
    pub pause: Duration,
    /// How long one attempt may wait for the response head before it counts as ambiguous
    /// (`None`: the HTTP client's own timeout, if any). Default `None`.
    pub timeout: Option<Duration>,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 3,
            pause: Duration::from_millis(500),
            timeout: None,
        }
    }
}

impl Retry {
    /// `attempts` sends at most per request, other settings default.
    pub fn attempts(attempts: u32) -> Self {
        Self {
            attempts,
            ..Self::default()
        }
    }
}

/// The outcome of one send: `Err` when the next attempt should be made (the last one is
/// returned as it is).
enum Outcome {
    Final(Result<reqwest::Response, Error>),
    Ambiguous(Result<reqwest::Response, Error>),
}

impl Buyer {
    async fn send_once(&self, request: reqwest::Request, retry: &Retry) -> Outcome {
        let sent = self.http.execute(request);
        let result = match retry.timeout {
            Some(t) => match tokio::time::timeout(t, sent).await {
                Ok(r) => r.map_err(Error::Http),
                Err(_) => {
                    return Outcome::Ambiguous(Err(Error::Unanswered(format!(
                        "no answer within {t:?}"
                    ))));
                }
            },
            None => sent.await.map_err(Error::Http),
        };
        match result {
            // A request that never left (a bad URL, a body that cannot be built) is final.
            Err(Error::Http(e)) if e.is_builder() => Outcome::Final(Err(Error::Http(e))),
            Err(e) => Outcome::Ambiguous(Err(e)),
            Ok(response) if response.status().is_server_error() => {
                // A pending settlement (x402-seller's 504) is an answer: the payment was sent
                // and may still land; it is reported, not retried.
                let pending =
                    settlement_of(response.headers()).is_some_and(|s| settlement_pending(&s));
                if pending {
                    Outcome::Final(Ok(response))
                } else {
                    Outcome::Ambiguous(Ok(response))
                }
            }
            // A seller processing the same payment id right now (x402-seller's 409 with
            // `Retry-After`): the first copy's outcome is not known yet.
            Ok(response)
                if response.status() == reqwest::StatusCode::CONFLICT
                    && response
                        .headers()
                        .contains_key(reqwest::header::RETRY_AFTER) =>
            {
                Outcome::Ambiguous(Ok(response))
            }
            Ok(response) => Outcome::Final(Ok(response)),
        }
    }

    /// Sends `request` up to `retry.attempts` times while the outcome is ambiguous.
    async fn send_retrying(
        &self,
        request: &reqwest::Request,
        retry: &Retry,
    ) -> Result<reqwest::Response, Error> {
        let mut pause = retry.pause;
        let attempts = retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            let copy = request.try_clone().ok_or(Error::NotReplayable)?;
            match self.send_once(copy, retry).await {
                Outcome::Final(r) => return r,
                Outcome::Ambiguous(r) if attempt >= attempts => return r,
                Outcome::Ambiguous(r) => {
                    let what = match &r {
                        Ok(response) => format!("HTTP {}", response.status()),
                        Err(e) => e.to_string(),
                    };
                    tracing::info!(attempt, %what, ?pause, "ambiguous outcome; sending the same request again");
                }
            }
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
            attempt += 1;
        }
    }

    /// [`Buyer::execute`] for one logical request that may be retried: a transport error, a
    /// timeout ([`Retry::timeout`]), a 5xx answer (other than a pending settlement) or a 409
    /// with `Retry-After` (the seller is still processing the same payment id) is ambiguous — the seller may have settled the payment and then lost the answer — and the
    /// request is sent again, up to [`Retry::attempts`] times.
    ///
    /// The payment is signed **once**: every retry of the paid request carries the same payment
    /// header — the same signed payload and, when the seller declares `payment-identifier`, the
    /// same payment id — so the budgets and the ledger count it once, and a seller that already
    /// settled it answers with the response it stored (or, without `payment-identifier`, refuses
    /// the already used authorization: nothing is paid twice either way). A 402 to the unpaid
    /// request is paid as [`Buyer::execute`] pays it; a 402 or 412 to the paid one is
    /// [`Error::Refused`]. The request's body must be replayable.
    pub async fn execute_idempotent(
        &self,
        request: reqwest::Request,
        retry: &Retry,
    ) -> Result<Paid, Error> {
        let carries_payment = request
            .headers()
            .contains_key(x402_core::header::PAYMENT_SIGNATURE)
            || request.headers().contains_key(x402_core::header::X_PAYMENT);
        let (method, url) = (request.method().clone(), request.url().clone());
        let response = self.send_retrying(&request, retry).await?;
        if response.status().as_u16() != 402 || carries_payment {
            return Ok(Paid {
                response,
                payment: None,
            });
        }
        let required = read_402(response).await?;
        let prepared = self.pay(&method, &url, &required).await?;
        let mut paid = request;
        let (name, value) = prepared.header.clone();
        paid.headers_mut().insert(name, value);
        let response = self.send_retrying(&paid, retry).await?;
        self.finish(prepared, response).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// Answers one request per entry of `answers` (status line and extra headers); hands back
    /// how many requests it read.
    async fn serve(
        answers: &'static [(&'static str, &'static str)],
    ) -> (String, tokio::task::JoinHandle<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/r", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut n = 0;
            for (status, headers) in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let _ = socket.read(&mut buf).await.unwrap();
                n += 1;
                let body = format!("answer {n}");
                let response = format!(
                    "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
            }
            n
        });
        (url, task)
    }

    fn buyer() -> Buyer {
        Buyer::new(
            reqwest::Client::new(),
            x402_core::Registry::new(),
            crate::Policy::default(),
        )
    }

    fn quick(attempts: u32) -> Retry {
        Retry {
            attempts,
            pause: Duration::from_millis(1),
            timeout: None,
        }
    }

    #[tokio::test]
    async fn ambiguous_answers_are_retried_and_the_last_is_returned() {
        let (url, server) = serve(&[
            ("503 Service Unavailable", ""),
            ("409 Conflict", "retry-after: 1\r\n"),
            ("200 OK", ""),
        ])
        .await;
        let request = reqwest::Client::new().get(&url).build().unwrap();
        let paid = buyer()
            .execute_idempotent(request, &quick(3))
            .await
            .unwrap();
        assert_eq!(paid.response.status(), 200);
        assert_eq!(paid.response.text().await.unwrap(), "answer 3");
        assert!(paid.payment.is_none());
        assert_eq!(server.await.unwrap(), 3);

        // Out of attempts: the last ambiguous answer is returned as it is.
        let (url, server) = serve(&[("502 Bad Gateway", ""), ("502 Bad Gateway", "")]).await;
        let request = reqwest::Client::new().get(&url).build().unwrap();
        let paid = buyer()
            .execute_idempotent(request, &quick(2))
            .await
            .unwrap();
        assert_eq!(paid.response.status(), 502);
        assert_eq!(server.await.unwrap(), 2);
    }

    #[tokio::test]
    async fn final_answers_are_not_retried() {
        // A 409 without Retry-After (a payment id reused with another payment) and a 404.
        const ANSWERS: [&[(&str, &str)]; 2] = [&[("409 Conflict", "")], &[("404 Not Found", "")]];
        for answers in ANSWERS {
            let status: u16 = answers[0].0[..3].parse().unwrap();
            let (url, server) = serve(answers).await;
            let request = reqwest::Client::new().get(&url).build().unwrap();
            let paid = buyer()
                .execute_idempotent(request, &quick(3))
                .await
                .unwrap();
            assert_eq!(paid.response.status().as_u16(), status);
            assert_eq!(server.await.unwrap(), 1);
        }
        // A connection refused every time: the transport error after the last attempt.
        let request = reqwest::Client::new()
            .get("http://127.0.0.1:1/")
            .build()
            .unwrap();
        let error = buyer()
            .execute_idempotent(request, &quick(2))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Http(_)), "{error}");
    }
}
