//! Error display shared by every module: an error and its causes on one line, as `main`
//! prints them and as run records store them.

use std::error::Error;

/// An error and its sources on one line: `loading NVML: libnvidia-ml.so.1: cannot open ...`.
/// A source whose message the line already holds is left out: some errors (nvml-wrapper's
/// library-loading one) print their source in their own message and return it as well.
pub fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    #[test]
    fn error_chain_joins_sources() {
        let inner = std::io::Error::other("cannot open shared object file");
        assert_eq!(
            error_chain(&WithSource(inner)),
            "outer: cannot open shared object file"
        );
    }

    #[test]
    fn error_chain_leaves_out_a_source_the_message_already_holds() {
        let inner = std::io::Error::other("libnvidia-ml.so.1: cannot open shared object file");
        assert_eq!(
            error_chain(&Repeats(WithSource(inner))),
            "loading NVML: outer: libnvidia-ml.so.1: cannot open shared object file"
        );
    }

    /// Prints its source in its own message and returns it as well.
    #[derive(Debug)]
    struct Repeats(WithSource);
    impl fmt::Display for Repeats {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "loading NVML: {}", self.0)
        }
    }
    impl Error for Repeats {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[derive(Debug)]
    struct WithSource(std::io::Error);
    impl fmt::Display for WithSource {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }
    impl Error for WithSource {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
}
