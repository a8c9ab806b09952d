use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// Errors from reading, validating or planning a scenario.
#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("reading scenario {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "reading scenario {path}: it is not a text file (no UTF-8 at byte {offset}); a scenario is a TOML file"
    )]
    NotText { path: PathBuf, offset: usize },
    #[error(
        "finding scenario {arg}: no such file and no shipped scenario of that name{suggestion}; shipped: {shipped}"
    )]
    NotFound {
        arg: PathBuf,
        suggestion: String,
        shipped: String,
    },
    /// The file is not valid TOML or does not match the format. Nothing runs.
    #[error("{0}")]
    Invalid(Problems),
    /// The plan exceeds a size limit of [`super::budget`] and `--force` was not given.
    #[error(
        "planning scenario `{scenario}`: {over} ({budget}): shrink the sweep, or add --force to accept it"
    )]
    TooLarge {
        scenario: String,
        over: String,
        budget: String,
    },
    #[error("planning scenario `{scenario}`: {reason}")]
    Plan { scenario: String, reason: String },
    /// A `--shard` or `--per-node shard` that does not fit the plan.
    #[error("sharding scenario `{scenario}`: {reason}")]
    Shard { scenario: String, reason: String },
}

/// One problem in a scenario file, located.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    /// The field, as a path: `tenants[1].params.step_ms`.
    pub field: String,
    pub message: String,
}

/// All problems found in one file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Problems {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, p) in self.problems.iter().enumerate() {
            if idx > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: ", self.path.display(), p.line, p.column)?;
            if !p.field.is_empty() {
                write!(f, "`{}`: ", p.field)?;
            }
            write!(f, "{}", p.message)?;
        }
        Ok(())
    }
}

/// Line and column (both from 1, columns in characters) of a byte offset in `source`.
pub fn locate(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let mut offset = offset;
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_lines_and_characters_from_one() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(locate(src, 0), (1, 1));
        assert_eq!(locate(src, 6), (2, 1));
        // "bé" is 3 bytes; the space after it is the third character.
        assert_eq!(locate(src, 9), (2, 3));
    }
}

#[cfg(test)]
mod read_tests {
    use super::*;

    #[test]
    fn an_unreadable_file_names_the_reason() {
        // Tests run as root here, where no file mode denies reading: the error the
        // kernel gives a user without permission, as the chain prints it.
        let err = ScenarioError::Read {
            path: PathBuf::from("s.toml"),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            crate::errors::error_chain(&err),
            "reading scenario s.toml: Permission denied (os error 13)"
        );
    }
}
