use anyhow::{anyhow, bail, Context};
use leadflow_engine::duration::Span;
use leadflow_engine::Calendar;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(
    name: &str,
    from: Option<String>,
    add: Option<String>,
    holidays: Option<i32>,
    root: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let root = root.or_else(|| crate::project::root_above(Path::new(".")));
    let path = root.as_ref().map(|r| {
        crate::project::shown(r)
            .join("calendars")
            .join(format!("{name}.toml"))
    });
    let cal = match path {
        Some(path) if path.exists() || name != "always" => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read calendar {}", path.display()))?;
            Calendar::parse(name, &text)
                .map_err(|e| anyhow!("{}: {} [{}]", path.display(), e, e.code()))?
        }
        // Built in: what a workflow naming no calendar runs on.
        _ if name == "always" => Calendar::always_open(),
        _ => bail!(
            "no calendar `{name}`: no project here (no workflows/, rules/ or calendars/ in the \
             current directory or above; give --root); only `always` is built in"
        ),
    };
    let tz = cal.timezone();
    if let Some(year) = holidays {
        crate::outln!("{} ({}), closed days in {year}:", cal.title(), tz)?;
        for h in cal.holidays(year) {
            let note = if h.on_working_weekday {
                ""
            } else {
                "  (not a working day anyway)"
            };
            crate::outln!("{}  {:<9}  {}{note}", h.date, h.date.format("%A"), h.name)?;
        }
    }
    match (from, add) {
        (Some(from), Some(add)) => {
            let t = leadflow_engine::value::parse_instant(&from)
                .ok_or_else(|| anyhow!("--from: expected an RFC 3339 instant such as 2026-11-20T17:30:00+01:00, got {from}"))?;
            let span = Span::parse(&add).map_err(|e| anyhow!("--add: {e}"))?;
            let due = span.add_to(t, &cal);
            crate::outln!("{}", due.with_timezone(&tz).to_rfc3339())?;
        }
        (None, None) if holidays.is_some() => {}
        _ => bail!("give --from and --add together (or --holidays YEAR)"),
    }
    Ok(ExitCode::SUCCESS)
}
