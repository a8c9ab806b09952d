use thiserror::Error;

/// Why a report could not be rendered.
#[derive(Debug, Error, PartialEq)]
pub enum ReportError {
    #[error(
        "comparing studies of different {what} (base `{base}`, new `{new}`): their figures \
         do not measure the same thing; add --force to compare them anyway"
    )]
    Mismatch {
        what: &'static str,
        base: String,
        new: String,
    },
    #[error("rendering chart `{name}`: there is no such chart; the charts are {known}")]
    UnknownChart { name: String, known: String },
    #[error("drawing chart `{chart}`: {message}")]
    Draw { chart: String, message: String },
}
