//! `leadflow kpi` and `leadflow report`: the tenant's KPIs and reports,
//! computed by its store (docs/kpis.md). Glue only: the computation is
//! `leadflow_runtime::kpi`, the one the daemon and the scenarios use.

use crate::cli::TableFormat;
use anyhow::{Context, Result};
use leadflow_runtime::kpi::{self, GroupKey, KpiResult, QueryError, Range, ReportResult};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

pub struct StoreArgs {
    pub config: PathBuf,
    pub database_url: Option<String>,
    pub tenant: String,
}

pub struct KpiArgs {
    pub store: StoreArgs,
    pub workflow: String,
    pub names: Vec<String>,
    pub period: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub group_by: Option<String>,
    /// `postgres` or `sqlite`: print the SQL, compute nothing.
    pub show_sql: Option<String>,
    pub json: bool,
}

pub struct ReportArgs {
    pub store: StoreArgs,
    pub workflow: String,
    pub name: String,
    pub period: Option<String>,
    pub show_sql: Option<String>,
    pub format: TableFormat,
}

/// The tenant's store and current workflow `id`.
async fn open(
    a: &StoreArgs,
    id: &str,
) -> Result<(leadflow_runtime::AnyBackend, Arc<leadflow_engine::Workflow>)> {
    let mut config = super::serve::load_config(&a.config)?;
    if let Some(u) = &a.database_url {
        config.database_url = Some(u.clone());
    }
    let tc = config
        .tenants
        .get(&a.tenant)
        .with_context(|| format!("no tenant `{}` in {}", a.tenant, a.config.display()))?;
    let (set, _, _) = leadflow_runtime::http::state::load_project(tc).map_err(|(d, e)| {
        anyhow::anyhow!(
            "the workflow files have errors ({}); run `leadflow check`",
            e.unwrap_or_else(|| format!("{} findings", d.len()))
        )
    })?;
    let wf = set
        .get(id)
        .with_context(|| format!("tenant `{}` has no workflow `{id}`", a.tenant))?
        .clone();
    let b = leadflow_runtime::open(config.database_url(), &a.tenant, Arc::new(set)).await?;
    Ok((b, wf))
}

fn bad(e: QueryError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub fn kpi(a: KpiArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (b, wf) = open(&a.store, &a.workflow).await?;
        let range = match &a.period {
            Some(_) if a.from.is_some() || a.to.is_some() => {
                anyhow::bail!("give either --period or --from/--to, not both")
            }
            Some(p) => Range::period(&wf, p).map_err(bad)?,
            None => Range::between(&wf, a.from.as_deref(), a.to.as_deref()).map_err(bad)?,
        };
        let asked = a
            .group_by
            .as_deref()
            .map(|g| GroupKey::parse_list(&wf, g))
            .transpose()
            .map_err(bad)?;
        let chosen: Vec<&leadflow_engine::model::Kpi> = if a.names.is_empty() {
            wf.kpis.iter().collect()
        } else {
            a.names
                .iter()
                .map(|n| kpi::find_kpi(&wf, n))
                .collect::<Result<_, _>>()
                .map_err(bad)?
        };
        let now = chrono::Utc::now();
        let mut out = Vec::new();
        for k in chosen {
            let group_by = match &asked {
                Some(g) => g.clone(),
                None => kpi::default_groups(&wf, k).map_err(bad)?,
            };
            let q = kpi::Query {
                wf: &wf,
                range: range.clone(),
                group_by,
                now,
            };
            if let Some(d) = &a.show_sql {
                let pg = match d.as_str() {
                    "postgres" | "pg" => true,
                    "sqlite" => false,
                    other => anyhow::bail!("--show-sql {other}: use postgres or sqlite"),
                };
                let text = kpi::show_sql(pg, &q, k).map_err(bad)?;
                crate::outln!(
                    "-- {}: {}\n{};\n",
                    k.name,
                    k.title,
                    text.unwrap_or_else(|| "-- a Rhai KPI: evaluated in memory, no SQL".into())
                )?;
                continue;
            }
            out.push(kpi::kpi(&b, &q, k).await.map_err(bad)?);
        }
        if a.show_sql.is_some() {
            return Ok(ExitCode::SUCCESS);
        }
        if a.json {
            crate::outln!("{}", serde_json::to_string_pretty(&out)?)?;
        } else {
            for k in &out {
                crate::out::stdout(&human_kpi(k))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn pct(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{:.1}%", r * 100.0))
}

fn human_kpi(k: &KpiResult) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let target = k
        .target
        .map(|t| format!(", target {}", pct(Some(t))))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "{} ({}, {}{target}): {}",
        k.name, k.kind, k.computed, k.title
    );
    let line = |s: &mut String, label: &str, r: &kpi::KpiRow| {
        let met = match r.met {
            Some(true) => "  met",
            Some(false) => "  missed",
            None => "",
        };
        let avg = r
            .durations
            .as_ref()
            .and_then(|d| d.avg_seconds)
            .map(|a| format!("  avg {:.1} h", a / 3600.0))
            .unwrap_or_default();
        let steps: Vec<String> = r
            .steps
            .iter()
            .map(|st| format!("{} {}", st.state, st.count))
            .collect();
        let steps = if steps.is_empty() {
            String::new()
        } else {
            format!("  [{}]", steps.join(" > "))
        };
        let _ = writeln!(
            s,
            "  {label:<24} {} of {}  {}{met}{avg}{steps}",
            r.hits,
            r.population,
            pct(r.ratio)
        );
    };
    for r in &k.rows {
        let label = r
            .group
            .iter()
            .map(|g| if g.is_empty() { "(none)" } else { g.as_str() })
            .collect::<Vec<_>>()
            .join(" / ");
        line(&mut s, &label, r);
    }
    line(&mut s, "total", &k.total);
    s
}

pub fn report(a: ReportArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (b, wf) = open(&a.store, &a.workflow).await?;
        let r = kpi::find_report(&wf, &a.name).map_err(bad)?;
        let range = match &a.period {
            Some(p) => Range::period(&wf, p).map_err(bad)?,
            None => Range::all(),
        };
        if let Some(d) = &a.show_sql {
            let pg = match d.as_str() {
                "postgres" | "pg" => true,
                "sqlite" => false,
                other => anyhow::bail!("--show-sql {other}: use postgres or sqlite"),
            };
            let text = kpi::show_report_sql(pg, &wf, r, range).map_err(bad)?;
            crate::outln!(
                "-- {}: {}\n{};\n",
                r.name,
                r.title,
                text.unwrap_or_else(|| "-- a Rhai filter: evaluated in memory, no SQL".into())
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        let out = kpi::report(&b, &wf, r, range, chrono::Utc::now())
            .await
            .map_err(bad)?;
        match a.format {
            TableFormat::Json => crate::outln!("{}", serde_json::to_string_pretty(&out)?)?,
            TableFormat::Csv => crate::out::stdout(&kpi::report_csv(&out).map_err(bad)?)?,
            TableFormat::Human => crate::out::stdout(&human_report(&out))?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn human_report(r: &ReportResult) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}, {}): {}",
        r.name,
        r.period.as_deref().unwrap_or("whole history"),
        r.computed,
        r.title
    );
    let cur = r.currency.as_deref().unwrap_or("");
    for l in &r.rows {
        let label = l
            .group
            .iter()
            .map(|g| if g.is_empty() { "(none)" } else { g.as_str() })
            .collect::<Vec<_>>()
            .join(" / ");
        let amount = l
            .amount
            .map(|a| format!("  {a:.2} {cur}"))
            .unwrap_or_default();
        let _ = writeln!(s, "  {label:<32} {:>6}{amount}", l.count);
    }
    let amount = r
        .total_amount
        .map(|a| format!("  {a:.2} {cur}"))
        .unwrap_or_default();
    let _ = writeln!(s, "  {:<32} {:>6}{amount}", "total", r.total_count);
    s
}
