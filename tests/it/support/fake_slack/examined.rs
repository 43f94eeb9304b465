//! Strict mode: a test that asks for it must look at every call cusp made to Slack.
//!
//! As bors's tester does for GitHub comments: after `slack.strict()`, each call the fake
//! receives has to be taken by the test (`take_calls`, `take_calls_to`), which marks it
//! examined. When the fake is dropped at the end of the test (or at
//! `assert_all_examined`), any call left unexamined fails the test with the list, so an
//! unexpected message, a call with the wrong token or a duplicate cannot slip through
//! a test that only checked what it was looking for. Calls made before `strict()` (an
//! app's start-up `auth.test`) count as examined.

use super::{FakeSlack, RecordedCall};

#[derive(Debug, Default)]
pub(super) struct Examined {
    strict: bool,
    /// Indexes of calls a test has taken.
    taken: std::collections::HashSet<usize>,
}

impl FakeSlack {
    /// Every call from now on must be taken by the test before the fake is dropped;
    /// earlier ones count as examined.
    pub fn strict(&self) {
        let mut inner = self.lock();
        let made = inner.calls.len();
        inner.examined.strict = true;
        inner.examined.taken.extend(0..made);
    }

    /// The calls not taken yet, in order, now marked examined.
    pub fn take_calls(&self) -> Vec<RecordedCall> {
        self.take_where(|_| true)
    }

    /// The calls to `method` not taken yet, in order, now marked examined.
    pub fn take_calls_to(&self, method: &str) -> Vec<RecordedCall> {
        self.take_where(|c| c.method == method)
    }

    fn take_where(&self, wanted: impl Fn(&RecordedCall) -> bool) -> Vec<RecordedCall> {
        let mut inner = self.lock();
        let picked: Vec<usize> = inner
            .calls
            .iter()
            .enumerate()
            .filter(|(i, c)| !inner.examined.taken.contains(i) && wanted(c))
            .map(|(i, _)| i)
            .collect();
        inner.examined.taken.extend(picked.iter().copied());
        picked.into_iter().map(|i| inner.calls[i].clone()).collect()
    }

    /// Calls made since `strict()` that no test took.
    pub fn unexamined_calls(&self) -> Vec<RecordedCall> {
        let inner = self.lock();
        if !inner.examined.strict {
            return Vec::new();
        }
        inner
            .calls
            .iter()
            .enumerate()
            .filter(|(i, _)| !inner.examined.taken.contains(i))
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Fails (in strict mode) when a call was left unexamined.
    pub fn assert_all_examined(&self) {
        let left = self.unexamined_calls();
        assert!(
            left.is_empty(),
            "the fake Slack received {} call(s) the test never examined:\n{}",
            left.len(),
            describe(&left)
        );
    }

    /// Run by `Drop`: the same check, unless the test is already failing.
    pub(super) fn check_examined_on_drop(&self) {
        if !std::thread::panicking() {
            self.assert_all_examined();
        }
    }
}

fn describe(calls: &[RecordedCall]) -> String {
    calls
        .iter()
        .map(|c| {
            format!(
                "  {} by {} channel={:?} text={:?}",
                c.method,
                c.team.as_deref().unwrap_or("(no known token)"),
                c.param_str("channel"),
                c.param_str("text")
                    .map(|t| t.chars().take(60).collect::<String>()),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
