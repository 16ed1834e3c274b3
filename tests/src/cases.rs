//! Table-driven tests: each case of a table runs to completion on its own task, so a failing case
//! neither stops the others nor loses its name; the test then fails once, listing every failed
//! case with its message.

use std::future::Future;

/// The outcome of the cases of one table (see the module documentation).
#[derive(Debug)]
#[must_use = "call `finish` to fail the test when a case failed"]
pub struct Cases {
    suite: String,
    ran: usize,
    failed: Vec<(String, String)>,
    finished: bool,
}

impl Cases {
    /// An empty record for the table `suite` (named in the failure message).
    pub fn new(suite: impl Into<String>) -> Self {
        Self {
            suite: suite.into(),
            ran: 0,
            failed: Vec::new(),
            finished: false,
        }
    }

    /// Runs `case` on its own task and waits for it; a panic is recorded under `name`.
    pub async fn run(
        &mut self,
        name: impl Into<String>,
        case: impl Future<Output = ()> + Send + 'static,
    ) {
        let name = name.into();
        self.ran += 1;
        if let Err(e) = tokio::spawn(case).await {
            let message = if e.is_panic() {
                let payload = e.into_panic();
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".to_owned())
            } else {
                e.to_string()
            };
            self.failed.push((name, message));
        }
    }

    /// How many cases ran.
    pub fn ran(&self) -> usize {
        self.ran
    }

    /// Fails when a case failed, listing them; also when no case ran (an empty table tests
    /// nothing).
    ///
    /// # Panics
    /// As described.
    pub fn finish(mut self) {
        self.finished = true;
        assert!(self.ran > 0, "{}: no case ran", self.suite);
        if !self.failed.is_empty() {
            let list: Vec<String> = self
                .failed
                .iter()
                .map(|(name, message)| format!("- {name}: {message}"))
                .collect();
            panic!(
                "{}: {} of {} cases failed:\n{}",
                self.suite,
                self.failed.len(),
                self.ran,
                list.join("\n")
            );
        }
    }
}

impl Drop for Cases {
    fn drop(&mut self) {
        if !self.finished && !std::thread::panicking() {
            panic!("{}: the cases were never checked (`finish`)", self.suite);
        }
    }
}
