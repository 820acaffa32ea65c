//! KPIs and reports give the same answer on memory, SQLite and PostgreSQL
//! (docs/kpis.md): every shipped scenario is replayed on the three stores,
//! then every KPI and report of every workflow of the project is computed
//! with several groupings and ranges, and the answers must be equal (the
//! SQL path against the memory path, which evaluates record by record).

use leadflow_runtime::kpi::{self, GroupKey, Query, Range, Source};
use leadflow_runtime::scenario::files::{find_scenarios, project_root, Projects};
use leadflow_runtime::scenario::{parse, run};
use leadflow_runtime::MemBackend;
use std::path::PathBuf;

/// Every answer for the workflows with KPIs or reports, as JSON lines
/// (without `computed`, which names the path taken).
async fn answers<S: Source>(
    b: &S,
    set: &leadflow_engine::WorkflowSet,
    start: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let now: chrono::DateTime<chrono::Utc> = "2031-01-01T00:00:00Z".parse().unwrap();
    let mut out = Vec::new();
    for (id, wf) in &set.workflows {
        if wf.kpis.is_empty() && wf.reports.is_empty() {
            continue;
        }
        let year = start.format("%Y").to_string().parse::<i32>().unwrap();
        let span = format!("{}-01-01..{}-12-31", year - 1, year + 1);
        let ranges = [Range::all(), Range::period(wf, &span).unwrap()];
        let groupings: Vec<Vec<GroupKey>> = vec![
            Vec::new(),
            vec![GroupKey::Assignee],
            vec![
                GroupKey::State,
                GroupKey::Period(leadflow_engine::measure::PeriodKind::Month),
            ],
            vec![GroupKey::Period(leadflow_engine::measure::PeriodKind::Week)],
        ];
        for k in &wf.kpis {
            let mut gs = groupings.clone();
            gs.push(kpi::default_groups(wf, k).unwrap());
            for range in &ranges {
                for g in &gs {
                    let periodic = g.iter().any(|k| matches!(k, GroupKey::Period(_)));
                    if periodic && range.from.is_none() {
                        continue;
                    }
                    let q = Query {
                        wf,
                        range: range.clone(),
                        group_by: g.clone(),
                        now,
                    };
                    let r = kpi::kpi(b, &q, k)
                        .await
                        .unwrap_or_else(|e| panic!("{id}.{}: {e}", k.name));
                    let mut v = serde_json::to_value(&r).unwrap();
                    v.as_object_mut().unwrap().remove("computed");
                    out.push(format!("{id} {v}"));
                }
            }
        }
        for r in &wf.reports {
            for range in &ranges {
                let res = kpi::report(b, wf, r, range.clone(), now)
                    .await
                    .unwrap_or_else(|e| panic!("{id}.{}: {e}", r.name));
                let mut v = serde_json::to_value(&res).unwrap();
                v.as_object_mut().unwrap().remove("computed");
                out.push(format!("{id} {v}"));
            }
        }
    }
    out
}

#[test]
fn kpis_and_reports_agree_on_memory_sqlite_and_postgres() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = find_scenarios(&[root.join("tests/scenarios")]).unwrap();
    // The scenarios of the seeds' workflows (all have KPIs or reports).
    files.retain(|f| {
        let p = f.display().to_string();
        ["aslm", "oplead", "callcenter", "qpartner", "socrate"]
            .iter()
            .any(|w| p.contains(&format!("/{w}/")))
    });
    // Every other file keeps the run near two minutes; the answers of the
    // others are held equal by their own expectations on three stores
    // (tests/scenarios.rs).
    let files: Vec<PathBuf> = files.into_iter().step_by(2).collect();
    assert!(!files.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let lite_url = format!("sqlite:{}", dir.path().join("kpis.db").display());
    let name = format!("leadflow_kpis_{}", std::process::id());
    let pg_url = crate::pgtest::create_db(&name);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let projects = Projects::default();
    // One PostgreSQL pool for every tenant (a scenario each).
    let mut stores = leadflow_runtime::any::Stores::new(leadflow_runtime::pg::PgOptions::default());
    let mut compared = 0;
    rt.block_on(async {
        for (i, file) in files.iter().enumerate() {
            let path = file.display().to_string();
            let mut sc = parse(&path, &std::fs::read_to_string(file).unwrap()).unwrap();
            let proj = project_root(file, sc.project.as_deref()).unwrap();
            let loaded = projects.load(&proj);
            let loaded = loaded.as_ref().as_ref().unwrap();
            // As `leadflow test` runs them: with the project's templates.
            sc.templates = Some(loaded.templates.clone());
            sc.resolve(&loaded.set, &loaded.broken).unwrap();
            // Message expectations render with the project's templates, as
            // `leadflow test` does.
            sc.templates = Some(loaded.templates.clone());
            let set = loaded.set.clone();
            let mem = MemBackend::new(set.clone());
            let lite = leadflow_runtime::open(&lite_url, &format!("t{i}"), set.clone())
                .await
                .unwrap();
            let pg = stores
                .open(&pg_url, &format!("t{i}"), set.clone())
                .await
                .unwrap();
            let r = run(&sc, &set, &mem).await;
            assert!(r.passed, "{}", r.human());
            for b in [&lite, &pg] {
                let r = run(&sc, &set, b).await;
                assert!(r.passed, "{}", r.human());
            }
            let want = answers(&mem, &set, sc.start).await;
            for (label, b) in [("sqlite", &lite), ("postgres", &pg)] {
                let got = answers(b, &set, sc.start).await;
                assert_eq!(want.len(), got.len());
                for (w, g) in want.iter().zip(&got) {
                    assert_eq!(w, g, "{path}: memory and {label} disagree");
                }
            }
            compared += want.len();
        }
    });
    assert!(compared > 500, "only {compared} answers compared");
    crate::pgtest::drop_db(&name);
}
