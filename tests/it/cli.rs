//! The authoring commands as a user runs them: calendar arithmetic, graph
//! export (snapshots), explain.

use std::process::Command;

fn leadflow(args: &[&str]) -> (i32, String, String) {
    leadflow_in(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// Run `leadflow args` with `dir` as the current directory.
fn leadflow_in(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run leadflow");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn calendar_prints_when_an_sla_falls_due() {
    // it: Mon-Fri 09-13, 14-18 (8 h a day). Friday 17:30 + 24 working hours:
    // 0.5 h Friday, 8 h Monday, 8 h Tuesday, 7.5 h Wednesday.
    let (code, out, _) = leadflow(&[
        "calendar",
        "it",
        "--from",
        "2026-11-20T17:30:00+01:00",
        "--add",
        "24wh",
    ]);
    assert_eq!((code, out.trim()), (0, "2026-11-25T17:30:00+01:00"));
    // Saturday 10:00 + 2 working hours: Monday 11:00.
    let (_, out, _) = leadflow(&[
        "calendar",
        "it",
        "--from",
        "2026-11-21T10:00:00+01:00",
        "--add",
        "2wh",
    ]);
    assert_eq!(out.trim(), "2026-11-23T11:00:00+01:00");
    // Friday 17:30 + 1 working day: Monday 17:30.
    let (_, out, _) = leadflow(&[
        "calendar",
        "it",
        "--from",
        "2026-11-20T17:30:00+01:00",
        "--add",
        "1wd",
    ]);
    assert_eq!(out.trim(), "2026-11-23T17:30:00+01:00");
    // A holiday in the way: 8 December 2026 (Immacolata, a Tuesday).
    let (_, out, _) = leadflow(&[
        "calendar",
        "it",
        "--from",
        "2026-12-07T09:00:00+01:00",
        "--add",
        "16wh",
    ]);
    assert_eq!(out.trim(), "2026-12-09T18:00:00+01:00");
}

#[test]
fn calendar_lists_a_years_holidays() {
    let (code, out, _) = leadflow(&["calendar", "it", "--holidays", "2026"]);
    assert_eq!(code, 0);
    for day in [
        "2026-01-01",
        "2026-04-06",
        "2026-04-25",
        "2026-06-02",
        "2026-08-15",
        "2026-12-08",
        "2026-12-26",
    ] {
        assert!(out.contains(day), "{day} missing from:\n{out}");
    }
    assert!(out.contains("Lunedì dell'Angelo"));
}

#[test]
fn calendar_errors_are_clear() {
    let (code, _, err) = leadflow(&["calendar", "it", "--from", "yesterday", "--add", "24wh"]);
    assert_eq!(code, 2);
    assert!(err.contains("RFC 3339"), "{err}");
    let (code, _, err) = leadflow(&[
        "calendar",
        "it",
        "--from",
        "2026-11-20T17:30:00+01:00",
        "--add",
        "3y",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown unit"), "{err}");
    let (code, _, err) = leadflow(&["calendar", "atlantis", "--holidays", "2026"]);
    assert_eq!(code, 2);
    assert!(err.contains("calendars/atlantis.toml"), "{err}");
}

#[test]
fn graph_mermaid_and_dot() {
    let (code, mermaid, _) = leadflow(&["graph", "workflows/aslm.toml", "--format", "mermaid"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("aslm_mermaid", mermaid);
    let (code, dot, _) = leadflow(&["graph", "workflows/aslm.toml", "--format", "dot"]);
    assert_eq!(code, 0);
    assert!(dot.contains("style=dashed"), "timers are dashed");
    assert!(dot.contains("peripheries=2"), "final states are marked");
    insta::assert_snapshot!("aslm_dot", dot);
}

#[test]
fn committed_graphs_match_the_workflows() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let rel = format!("workflows/{}", path.file_name().unwrap().to_string_lossy());
        let (code, mermaid, err) = leadflow(&["graph", &rel]);
        assert_eq!(code, 0, "{err}");
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let doc = std::fs::read_to_string(format!(
            "{}/docs/graphs/{stem}.md",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap_or_else(|_| panic!("docs/graphs/{stem}.md is missing: run leadflow graph {rel}"));
        assert!(
            doc.contains(mermaid.trim()),
            "docs/graphs/{stem}.md is stale: regenerate with `leadflow graph {rel}`"
        );
    }
}

#[test]
fn explain_knows_codes() {
    let (code, out, _) = leadflow(&["explain", "E004"]);
    assert_eq!(code, 0);
    assert!(out.contains("unknown field") && out.contains("docs/diagnostics.md#e004"));
    let (code, out, _) = leadflow(&["explain", "e_guard"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("E_GUARD"));
    let (code, _, err) = leadflow(&["explain", "E999"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown code"));
}

/// `leadflow db migrate` brings a fresh PostgreSQL database to the schema
/// of this build (run again, nothing to do); other URLs are refused with
/// a clear message.
#[test]
fn db_migrate_applies_the_postgres_schema() {
    let psql = |sql: &str| {
        let ok = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qAtc",
                sql,
            ])
            .status()
            .expect("psql runs")
            .success();
        assert!(ok, "{sql}");
    };
    let name = format!("lf_cli_migrate_{}", std::process::id());
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    psql(&format!("CREATE DATABASE {name}"));
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let (code, out, err) = leadflow(&["db", "migrate", "--database-url", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("schema at migration "), "{out}");
    let (code, again, _) = leadflow(&["db", "migrate", "--database-url", &url]);
    assert_eq!((code, &again), (0, &out));
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    let (code, _, err) = leadflow(&["db", "migrate", "--database-url", "sqlite:x.db"]);
    assert_ne!(code, 0);
    assert!(err.contains("for PostgreSQL URLs"), "{err}");
}

/// Run `leadflow args` in `dir` with a stdout whose reader is gone before
/// the first write (`leadflow test | head -1` once head has exited).
fn with_closed_stdout(args: &[&str]) -> (i32, String) {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run leadflow");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_pipe_ends_every_printing_command_quietly() {
    for args in [
        &["test", "tests/scenarios/aslm"][..],
        &["calendar", "it", "--holidays", "2026"],
        &["check"],
        &["check", "--format", "json"],
        &["graph", "workflows/aslm.toml"],
        &["schema"],
        &["explain", "E004"],
        &["explain", "S005"],
        &["completions", "bash"],
        &["fmt", "--check", "tests/check/e060_text_too_long.toml"],
    ] {
        let (code, err) = with_closed_stdout(args);
        assert_eq!(code, 141, "leadflow {args:?}: {err}");
        assert!(err.is_empty(), "leadflow {args:?} wrote to stderr: {err}");
    }
}

fn repo(sub: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(sub)
}

/// A workflow that needs no rules module and no calendar.
const TINY: &str = r#"[workflow]
id = "tiny"
initial = "open"

[states.open]
[states.done]
final = true

[transitions.finish]
from = ["open"]
to = "done"
by = ["agent"]
"#;

#[test]
fn paths_work_from_inside_a_project() {
    // A bare file name in the current directory (was: an empty path).
    let (code, inside, err) = leadflow_in(&repo("workflows"), &["graph", "aslm.toml"]);
    assert_eq!(code, 0, "{err}");
    let (_, from_root, _) = leadflow(&["graph", "workflows/aslm.toml"]);
    assert_eq!(inside, from_root);
    // The project root is found upward: check and test without a path.
    let (code, out, err) = leadflow_in(&repo("workflows"), &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    let shipped = std::fs::read_dir(repo("workflows")).unwrap().count();
    assert!(
        out.contains(&format!("checked {shipped} workflow file(s)")),
        "{out}"
    );
    let (code, out, err) = leadflow_in(&repo("tests/scenarios"), &["test", "--filter", "aslm02"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    // A bare scenario file name works like ./name (was: S005).
    let (code, out, err) = leadflow_in(
        &repo("tests/scenarios/aslm"),
        &["test", "aslm02_assignment.toml"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    let (code, out, err) = leadflow_in(
        &repo("rules"),
        &[
            "calendar",
            "it",
            "--from",
            "2026-11-20T17:30:00+01:00",
            "--add",
            "24wh",
        ],
    );
    assert_eq!(
        (code, out.trim()),
        (0, "2026-11-25T17:30:00+01:00"),
        "{err}"
    );
}

#[test]
fn outside_a_project_commands_read_only_what_they_are_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.toml"), TINY).unwrap();
    // Unrelated, broken TOML files beside it and below it are not read.
    std::fs::write(dir.path().join("junk.toml"), "not = [toml").unwrap();
    std::fs::create_dir(dir.path().join("deep")).unwrap();
    std::fs::write(dir.path().join("deep/more.toml"), "[[[").unwrap();
    let (code, out, err) = leadflow_in(dir.path(), &["graph", "tiny.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("s_open -- \"finish\" --> s_done"), "{out}");
    // `always` is built in.
    let (code, out, err) = leadflow_in(
        dir.path(),
        &[
            "calendar",
            "always",
            "--from",
            "2026-11-21T10:00:00Z",
            "--add",
            "2wh",
        ],
    );
    assert_eq!(
        (code, out.trim()),
        (0, "2026-11-21T12:00:00+00:00"),
        "{err}"
    );
    let (code, _, err) = leadflow_in(dir.path(), &["calendar", "it", "--holidays", "2026"]);
    assert_eq!(code, 2);
    assert!(err.contains("no project here"), "{err}");
    let (code, _, err) = leadflow_in(dir.path(), &["check"]);
    assert_eq!(code, 2);
    assert!(err.contains("no project here"), "{err}");
}

/// Run `leadflow args` with stdout and stderr redirected into one file, as
/// `leadflow check > out.txt 2>&1` does; the file's bytes.
fn into_file(args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let file = std::fs::File::create(&path).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leadflow"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .envs(env.iter().copied())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    cmd.status().unwrap();
    std::fs::read(&path).unwrap()
}

const ESC: u8 = 0x1b;

#[test]
fn colour_only_on_a_terminal_or_when_asked() {
    let broken = ["check", "tests/check/e003_unknown_state.toml"];
    let plain = into_file(&broken, &[]);
    assert!(String::from_utf8_lossy(&plain).contains("error[E003]"));
    assert!(!plain.contains(&ESC), "ANSI escapes in a redirected file");
    let graph_err = into_file(&["graph", "tests/check/e003_unknown_state.toml"], &[]);
    assert!(String::from_utf8_lossy(&graph_err).contains("error[E003]"));
    assert!(!graph_err.contains(&ESC));
    let with = |extra: &[&str], env: &[(&str, &str)]| {
        let args: Vec<&str> = broken.iter().chain(extra).copied().collect();
        into_file(&args, env).contains(&ESC)
    };
    assert!(with(&["--color", "always"], &[]));
    assert!(
        with(&["--color=always"], &[("NO_COLOR", "1")]),
        "the flag wins"
    );
    assert!(with(&[], &[("CLICOLOR_FORCE", "1")]));
    assert!(!with(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]));
    assert!(!with(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]));
}

/// The daemon's logs (on stdout), redirected into a file, carry no ANSI
/// escapes unless asked.
#[test]
fn daemon_logs_into_a_file_are_plain() {
    for (extra, coloured) in [(None, false), (Some("always"), true)] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("daemon.log");
        let db = format!("sqlite:{}", dir.path().join("d.db").display());
        let mut args = vec![
            "serve",
            "--config",
            "examples/leadflow.toml",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db,
        ];
        if let Some(c) = extra {
            args.extend(["--color", c]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_leadflow"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let text = loop {
            let text = std::fs::read(&log).unwrap_or_default();
            if String::from_utf8_lossy(&text).contains("leadflow serving") {
                break text;
            }
            assert!(
                started.elapsed().as_secs() < 60,
                "the daemon did not start: {}",
                String::from_utf8_lossy(&text)
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(text.contains(&ESC), coloured, "{extra:?}");
    }
}

#[test]
fn version_names_the_commit() {
    let (code, out, _) = leadflow(&["--version"]);
    assert_eq!(code, 0);
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        out.trim(),
        format!("leadflow {} ({head})", env!("CARGO_PKG_VERSION"))
    );
}

/// Every argument of every command has a help line, and every command's
/// help ends with an example.
#[test]
fn every_command_is_documented_with_an_example() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" || arg.is_hide_set() {
                continue;
            }
            assert!(
                arg.get_help().is_some(),
                "`leadflow {}` argument `{id}` has no help text",
                path.join(" ")
            );
        }
        for sub in cmd.get_subcommands() {
            path.push(sub.get_name().to_string());
            if sub.has_subcommands() {
                walk(sub, path, out);
            } else {
                out.push(path.clone());
            }
            path.pop();
        }
    }
    let mut leaves = Vec::new();
    walk(&leadflow::cli::Cli::command(), &mut Vec::new(), &mut leaves);
    assert!(leaves.len() >= 10, "{leaves:?}");
    for leaf in leaves {
        let mut args: Vec<&str> = leaf.iter().map(String::as_str).collect();
        args.push("--help");
        let (code, out, err) = leadflow(&args);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("Example:") || out.contains("Examples:"),
            "`leadflow {}` has no example:\n{out}",
            leaf.join(" ")
        );
    }
}

#[test]
fn completions_load_in_bash() {
    let (code, script, err) = leadflow(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    for sub in ["check", "graph", "explain", "calendar", "completions"] {
        assert!(script.contains(sub), "{sub}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leadflow.bash");
    std::fs::write(&file, &script).unwrap();
    let out = Command::new("bash")
        .args([
            "-c",
            &format!("source {} && complete -p leadflow", file.display()),
        ])
        .output()
        .expect("bash runs");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("leadflow"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let (code, script, err) = leadflow(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(script.contains("leadflow"), "{shell}");
    }
}

/// Every code literal the program can print (engine, runtime, CLI
/// sources: `"E_…"` and `"S0nn"`) is known to `leadflow explain`, so a new
/// code without an explanation fails here.
#[test]
fn explain_knows_every_code_in_the_sources() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let re = regex::Regex::new(r#""(E_[A-Z][A-Z_]*[A-Z]|E\d{3}|W\d{3}|S\d{3})""#).unwrap();
    let mut codes = std::collections::BTreeSet::new();
    for dir in ["engine/src", "runtime/src", "src"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for m in re.captures_iter(&text) {
                        codes.insert(m[1].to_string());
                    }
                }
            }
        }
    }
    for must in [
        "S001",
        "S005",
        "E_SINK_HOST",
        "E_CONFLICT",
        "E_UNKNOWN_WORKFLOW",
        "E004",
    ] {
        assert!(codes.contains(must), "the grep missed {must}: {codes:?}");
    }
    let unknown: Vec<_> = codes
        .iter()
        .filter(|c| leadflow(&["explain", c]).0 != 0)
        .collect();
    assert!(
        unknown.is_empty(),
        "`leadflow explain` does not know {unknown:?}"
    );
    let (code, out, _) = leadflow(&["explain", "s005"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("S005: no project") && out.contains("docs/scenarios.md"),
        "{out}"
    );
}

fn walkthrough(port: u16, tmp: &std::path::Path) -> (i32, String, String) {
    let out = Command::new("bash")
        .arg("examples/walkthrough.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TMPDIR", tmp)
        .env("LEADFLOW", env!("CARGO_BIN_EXE_leadflow"))
        .env("PORT", port.to_string())
        .output()
        .expect("bash runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// examples/walkthrough.sh succeeds on a free port, and fails (instead of
/// touring whatever already listens there) on a taken one.
#[test]
fn walkthrough_runs_on_a_free_port_and_fails_on_a_taken_one() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, out, err) = walkthrough(port, tmp.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("port {port} is taken")), "{err}");
    drop(taken);
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let (code, out, err) = walkthrough(port, tmp.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Done: ASLM lead"), "{out}");
    assert!(!out.contains('\u{1b}'), "no bold escapes into a pipe");
    let log = out
        .rsplit("daemon log: ")
        .next()
        .and_then(|s| s.split(')').next())
        .unwrap();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("leadflow serving"), "{log}");
}

/// `leadflow serve` with the example config on a free port and a fresh
/// SQLite file in `dir`; returns once it listens.
fn start_daemon(dir: &std::path::Path) -> (std::process::Child, u16) {
    start_daemon_with(dir, &repo("examples/leadflow.toml"))
}

/// `leadflow serve --config config` on a free port and a fresh SQLite file
/// in `dir`; returns once it listens.
fn start_daemon_with(
    dir: &std::path::Path,
    config: &std::path::Path,
) -> (std::process::Child, u16) {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let log = dir.join("daemon.log");
    let child = Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args([
            "serve",
            "--config",
            &config.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &format!("sqlite:{}", dir.join("d.db").display()),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("leadflow serving")
    {
        assert!(started.elapsed().as_secs() < 60, "the daemon did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (child, port)
}

/// The README's curl example, run as written against the daemon.
#[test]
fn the_readme_curl_example_works() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let block = readme
        .split("<!-- curl-example:start -->")
        .nth(1)
        .and_then(|s| s.split("<!-- curl-example:end -->").next())
        .expect("README has the curl example");
    let script = block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, port) = start_daemon(dir.path());
    let script = script.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(record["revision"], 2, "{record}");
    assert_eq!(record["fields"]["attempts"], 1, "{record}");
    assert_eq!(record["assignee"], "dealer-rm", "{record}");
}

/// `leadflow init` makes a project that passes check and test, and whose
/// daemon config accepts the printed key; it never writes into a
/// non-empty directory.
#[test]
fn init_makes_a_runnable_project() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = leadflow_in(tmp.path(), &["init", "shop"]);
    assert_eq!(code, 0, "{err}");
    let key = out.lines().last().unwrap().trim().to_string();
    assert!(key.starts_with("lf_") && key.len() == 51, "{out}");
    let project = tmp.path().join("shop");
    let config = std::fs::read_to_string(project.join("leadflow.toml")).unwrap();
    assert!(config.contains(&leadflow_runtime::config::hash_key(&key)));
    assert!(!config.contains(&key), "the plaintext key is not stored");
    let (code, out, err) = leadflow_in(&project, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("1 workflow file(s): 0 error(s), 0 warning(s)"),
        "{out}"
    );
    let (code, out, err) = leadflow_in(&project, &["test"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    let (code, out, err) = leadflow_in(&project, &["fmt", "--check"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    // The daemon starts with the generated config and takes the key.
    let (mut daemon, port) = start_daemon_with(tmp.path(), &project.join("leadflow.toml"));
    let created = Command::new("curl")
        .args(["-sS", "-X", "POST"])
        .arg(format!("http://127.0.0.1:{port}/v1/records"))
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"workflow":"lead","fields":{"name":"Ada Lovelace"}}"#)
        .output()
        .unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let record: serde_json::Value = serde_json::from_slice(&created.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&created.stdout)));
    assert_eq!(record["state"], "new", "{record}");
    assert!(record["assignee"].is_string(), "{record}");
    // Never over existing files.
    let (code, _, err) = leadflow_in(tmp.path(), &["init", "shop"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not empty"), "{err}");
    std::fs::write(tmp.path().join("file"), "x").unwrap();
    let (code, _, err) = leadflow_in(tmp.path(), &["init", "file"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a directory"), "{err}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, err) = leadflow_in(&empty, &["init"]);
    assert_eq!(code, 0, "{err}");
    assert!(empty.join("workflows/lead.toml").exists());
}

/// `leadflow why`: every reason a transition is refused now, from a record
/// saved as JSON (what `GET /v1/records/{id}` answers); exit 1 when
/// refused, 0 when it would be accepted.
#[test]
fn why_explains_every_reason_a_transition_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lead.json");
    let record = |attempts: i64| {
        serde_json::json!({
            "id": 42, "workflow": "aslm", "version": "x", "state": "assigned",
            "fields": {"first_name": "Mario", "last_name": "Rossi", "attempts": attempts,
                       "assigned_at": "2026-01-05T09:00:00.000000Z"},
            "assignee": "dealer-rm", "revision": 1,
            "created_at": "2026-01-05T09:00:00.000000Z",
            "entered_at": "2026-01-05T09:00:00.000000Z",
            "updated_at": "2026-01-05T09:00:00.000000Z"
        })
        .to_string()
    };
    std::fs::write(&file, record(0)).unwrap();
    let f = file.to_str().unwrap();
    let (code, out, err) = leadflow(&["why", "--record-json", f, "close_sale", "--role", "dealer"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("`close_sale` of record 42 in state `assigned`"),
        "{out}"
    );
    assert!(out.contains("refused"), "{out}");
    assert!(
        out.contains("E_REQUIRED") && out.contains("`vin` is required"),
        "{out}"
    );
    assert!(
        out.contains("E_GUARD") && out.contains("log at least one contact attempt first"),
        "{out}"
    );
    assert!(out.contains("threw  rules::can_close_sale(lead)"), "{out}");
    // The wrong role is one more reason; JSON for tools.
    let (code, out, _) = leadflow(&[
        "why",
        "--record-json",
        f,
        "close_sale",
        "--role",
        "hq",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1);
    let w: serde_json::Value = serde_json::from_str(&out).unwrap();
    let codes: Vec<&str> = w["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["E_FORBIDDEN", "E_REQUIRED", "E_GUARD"], "{w:#}");
    // With an attempt logged, the VIN and notes given: accepted.
    std::fs::write(&file, record(1)).unwrap();
    let (code, out, err) = leadflow(&[
        "why",
        "--record-json",
        f,
        "close_sale",
        "--role",
        "dealer",
        "--input",
        r#"{"vin": "ZAMXX00C000123456", "notes": "sold at the desk"}"#,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("allowed"), "{out}");
    // A file that is not a record is a clear error (exit 2).
    std::fs::write(&file, "{}").unwrap();
    let (code, _, err) = leadflow(&["why", "--record-json", f, "close_sale"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a record"), "{err}");
}
