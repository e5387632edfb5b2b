//! An error with its chain of causes, as one line of text: for logs, reports and answers.

use std::error::Error as StdError;
use std::fmt;

/// Shows an error and each of its causes, joined by `: `.
pub(crate) struct Causes<'a>(pub &'a dyn StdError);

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(inner) = cause {
            write!(f, ": {inner}")?;
            cause = inner.source();
        }
        Ok(())
    }
}

/// An error and its chain of causes, as one line.
pub fn with_causes(error: &dyn StdError) -> String {
    Causes(error).to_string()
}
