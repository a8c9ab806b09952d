use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{exit, CliError};
use crate::report::{self, Completeness, Format, Incomplete};
use crate::results::store;

#[derive(Debug, Args)]
#[command(after_help = "\
Exit status: 0 the study holds every planned run; 4 it is incomplete (fewer runs recorded
than planned: interrupted, or its runner was killed or is still running), said on the
report's first lines and on stderr; 1 the file could not be read; 2 bad command line.")]
pub struct ReportArgs {
    /// A study directory (results/<study>) or its run.json; run.json.gz is read too.
    pub dir: PathBuf,
    /// How to render it. `html` is one self-contained page (redirect it to a file);
    /// `svg` one chart, the one `--chart` names.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// With `--format svg`: the chart to draw: np, sharing, latency, throughput or gpu.
    #[arg(long, default_value = "np")]
    pub chart: String,
}

pub fn run(args: ReportArgs) -> Result<ExitCode, CliError> {
    let study = store::read_study(&args.dir)?;
    // A reader that went away (`| head`) ends the report quietly: nothing is lost.
    let text = if args.format == Format::Svg {
        report::render_chart(&study, &args.chart)?
    } else {
        report::render(&study, args.format)
    };
    let _ = write!(std::io::stdout(), "{text}");
    let completeness = Completeness::of(&study);
    let Some(sentence) = completeness.sentence() else {
        return Ok(ExitCode::SUCCESS);
    };
    let runner = match completeness.incomplete {
        Some(Incomplete::Unfinished) if store::is_being_written(&args.dir) => {
            ": a `gpushare run` is still writing it; re-render it when the run ends"
        }
        Some(Incomplete::Unfinished) => {
            ": no runner holds its lock, so the runner was killed or crashed; the runs recorded are kept"
        }
        _ => "",
    };
    let _ = writeln!(
        std::io::stderr(),
        "{}: {sentence}{runner}",
        args.dir.display()
    );
    Ok(ExitCode::from(exit::INCOMPLETE))
}
