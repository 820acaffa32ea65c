//! `leadflow init [DIR]`: a new, runnable project (one workflow, its rules,
//! a calendar, scenarios, a daemon config with a fresh admin key).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;

/// The project's files, from `src/template/`.
const FILES: &[(&str, &str)] = &[
    (
        "workflows/lead.toml",
        include_str!("../template/workflows/lead.toml"),
    ),
    (
        "rules/lead.rhai",
        include_str!("../template/rules/lead.rhai"),
    ),
    (
        "calendars/office.toml",
        include_str!("../template/calendars/office.toml"),
    ),
    (
        "tests/scenarios/happy_path.toml",
        include_str!("../template/tests/scenarios/happy_path.toml"),
    ),
    (
        "tests/scenarios/sla.toml",
        include_str!("../template/tests/scenarios/sla.toml"),
    ),
    ("README.md", include_str!("../template/README.md")),
    (".gitignore", "leadflow.db*\n"),
];

/// The daemon's config; `{SHA256}` is the admin key's hash.
const CONFIG: &str = r#"# leadflow serve   (reads ./leadflow.toml; every key: leadflow's examples/leadflow.toml)
listen = "127.0.0.1:8080"
# database_url = "sqlite:leadflow.db"   # the default; or postgres://...

# One tenant, whose project is this directory.
[tenants.main]
root = "."
workflows = ["lead"]

# The actors leads are assigned to.
[tenants.main.actors.ann]
role = "sales"

[tenants.main.actors.bob]
role = "sales"

[tenants.main.actors.mia]
role = "manager"

# API keys are stored as SHA-256 hex: printf %s "$KEY" | sha256sum
# Without `actor` a key is an admin key; it fires transitions as `role`.
[[tenants.main.keys]]
name = "admin"
sha256 = "{SHA256}"
role = "manager"
"#;

pub fn run(dir: &Path) -> Result<ExitCode> {
    if dir.exists() {
        if !dir.is_dir() {
            bail!("{} exists and is not a directory", dir.display());
        }
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty: `leadflow init` creates a project in a new or empty directory \
                 and never overwrites files",
                dir.display()
            );
        }
    }
    let key = new_key()?;
    let config = CONFIG.replace("{SHA256}", &leadflow_runtime::config::hash_key(&key));
    for (path, text) in FILES.iter().chain([&("leadflow.toml", config.as_str())]) {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    let shown = dir.display();
    crate::outln!(
        "Created a leadflow project in {shown}:\n  \
         workflows/lead.toml, rules/lead.rhai, calendars/office.toml, tests/scenarios/, leadflow.toml, README.md\n\n\
         Next:\n  cd {shown}\n  leadflow check\n  leadflow test\n  leadflow serve             # the API on 127.0.0.1:8080\n\n\
         The admin API key (shown only now; leadflow.toml keeps its SHA-256):\n  {key}"
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A random API key: `lf_` and 48 hex digits (192 bits from the system's
/// random source).
fn new_key() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom to make an API key")?;
    Ok(format!(
        "lf_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}
