//! What `leadflow explain` says about the codes outside the engine's
//! diagnostic catalogue (`leadflow_engine::diag::CODES`): scenario file
//! errors (S0xx), daemon start errors (E_CONFIG*, E_SINK_*, E_KEY_*) and
//! store errors. The HTTP API's codes come from its own catalogue
//! (`leadflow_runtime::http::codes`, also served at `GET /errors`). A test
//! greps the sources for code literals and fails when one is missing here,
//! in the API catalogue or in the engine's catalogue.

/// One code: its meaning, how to fix it, and where it is documented.
pub struct Code {
    pub code: &'static str,
    pub title: &'static str,
    pub hint: &'static str,
    pub see: &'static str,
}

macro_rules! codes {
    ($($code:literal => $title:literal, $hint:literal, $see:literal;)*) => {
        /// Every code the program can print that the engine does not define.
        pub const CODES: &[Code] = &[$(Code { code: $code, title: $title, hint: $hint, see: $see }),*];
    };
}

codes! {
    // Scenario files (`leadflow test`).
    "S001" => "a scenario file is not TOML or not of the scenario shape (unknown key, wrong type, bad instant or duration, empty step)", "fix the file at the line and column shown; docs/scenarios.md lists every key", "docs/scenarios.md#errors-in-a-scenario-file";
    "S002" => "a scenario names a workflow that is not loaded", "name a workflow id of the project; the message lists the workflow files that did not load (`leadflow check` says why)", "docs/scenarios.md#errors-in-a-scenario-file";
    "S003" => "a scenario step names a record that no earlier step named", "name the record with `as = \"...\"` (or `alias`) in the step that creates it", "docs/scenarios.md#errors-in-a-scenario-file";
    "S004" => "a scenario step fires as an actor the scenario does not declare", "declare the actor under `[actors]` of the scenario, or fix the name in `by`", "docs/scenarios.md#errors-in-a-scenario-file";
    "S005" => "no project for the scenario, or its store could not be opened", "put the scenario below a directory holding workflows/ (or set `project = \"dir\"`); with --database-url, check the URL", "docs/scenarios.md#errors-in-a-scenario-file";
    // The daemon's config (`leadflow serve`, `leadflow migrate`): the daemon does not start.
    "E_CONFIG_IO" => "the daemon's config file cannot be read", "check the path given to --config and its permissions", "examples/leadflow.toml";
    "E_CONFIG_SYNTAX" => "the daemon's config is not valid TOML or has an unknown key or a value of the wrong type", "fix the line shown; examples/leadflow.toml documents every key", "examples/leadflow.toml";
    "E_CONFIG" => "the daemon's config is inconsistent (a tenant, key, pool or limit that does not fit)", "fix what the message names; examples/leadflow.toml documents every key", "examples/leadflow.toml";
    "E_KEY_DUPLICATE" => "two API keys of one tenant share a `name`", "give each key of the tenant its own `name`", "README.md#running-the-daemon";
    "E_SINK_HOST" => "the SMTP sink's host is not a host name or IP address", "write the bare host (`smtp.example.com`): no scheme, path or port (the port goes in `port`)", "examples/leadflow.toml";
    "E_SINK_PORT" => "the SMTP sink's port is out of range", "give a port from 1 to 65535 (587 for starttls, 465 for tls)", "examples/leadflow.toml";
    "E_SINK_FROM" => "the SMTP sink's `from` is not an e-mail address", "write a mailbox such as \"Leads <noreply@example.com>\"", "examples/leadflow.toml";
    "E_SINK_SECRET" => "an SMTP password is written in the config file", "put it in an environment variable and name that variable with `password_env`", "examples/leadflow.toml";
    "E_SINK_CREDENTIALS" => "the sink's credentials are incomplete: SMTP `username` without `password_env` (or the reverse), or a webhook without its secret (`secret_env` unset or empty, both `secret` and `secret_env`)", "SMTP: give both or neither; webhook: set `secret_env` to an environment variable holding the secret; names are letters, digits and `_`", "examples/leadflow.toml";
    "E_SINK_ADDRESS" => "an SMTP sink address is not an e-mail address, or maps a reserved name", "map role names to mailboxes; `customer` (the record's email field) and `assignee` cannot be mapped", "examples/leadflow.toml";
    "E_SINK_URL" => "the webhook sink's `url` is not an http:// or https:// URL with a host", "write the receiver's full URL, e.g. https://crm.example.com/hooks/leadflow", "docs/api.md#webhooks";
    "E_RATE_LIMIT" => "a tenant's `rate_limit` is out of range (`requests_per_second` above 0 and at most 1,000,000; `burst` 1 to 1,000,000)", "fix the value the message names, or remove `[tenants.<id>.rate_limit]` for no limit", "docs/api.md#rate-limits-and-cors";
    "E_CORS_ORIGIN" => "a `cors_origins` entry is not an origin (scheme, host and optional port; no path, no trailing `/`, no partial wildcard)", "write origins as the browser sends them, e.g. https://crm.example.com, or \"*\" for any origin", "docs/api.md#rate-limits-and-cors";
    "E_ORG_UNKNOWN_ACTOR" => "an actor's `reports_to` names no actor of the tenant", "name the id of an actor of the same tenant's `actors`, or remove `reports_to`", "docs/workflow-format.md#the-organisation";
    "E_ORG_CYCLE" => "the tenant's managers go round in a circle (`reports_to`, `manages` and `team`)", "break the circle the message shows: nobody may manage, directly or above, their own manager", "docs/workflow-format.md#the-organisation";
    "E_SINK_RATE" => "the sink's `max_per_second` (SMTP or webhook) is 0", "give the most messages a second the relay should receive (1 or more), or leave it out for no limit", "docs/notifications.md#delivery";
    "E_LINK_KEY" => "the key of action links is missing or unusable: `[links] secret_env` names an unset or empty variable, a key shorter than 32 bytes, or a `base_url` that is not http(s)", "export the variable with a key of 32 bytes or more (`openssl rand -hex 32`), or remove `[links]` for a key made at start", "docs/notifications.md#action-links";
    // Outbox messages (recorded on the row, shown by GET /v1/records/{id}/notifications).
    "E_TEMPLATE_RENDER" => "a message's template failed to render for its payload (a value missing or not visible to the recipient, a filter given a wrong value); the message is failed, never sent half-rendered", "fix the template (guard optional fields with `{% if %}`); `leadflow check` and `leadflow render` show the line", "docs/notifications.md#templates";
    "E_TEMPLATE_MISSING" => "a message's template does not exist (or does not compile); retried with backoff, then failed", "add templates/<id>.<lang>.txt (or fix its syntax); `leadflow check` lists the notifies without a template", "docs/notifications.md#templates";
    // Bulk import (`leadflow import`): codes of the reject report and of an import that cannot run.
    "E_PATTERN" => "an imported value does not match its field's `pattern` (the API answers E_TYPE for the same value)", "fix the value in the reject report and import the report", "docs/import.md";
    "E_IMPORT_DUPLICATE" => "an imported line repeats a stored record or an earlier line by a --dedup key, and --on-duplicate is `error`", "drop the line, or import with --on-duplicate skip or update", "docs/import.md";
    "E_IMPORT_MALFORMED" => "an imported line cannot be read: a CSV line with another number of cells than the header, a line that is not a JSON object, not UTF-8", "fix the line in the reject report (quote cells holding commas) and import the report", "docs/import.md";
    "E_IMPORT_READ" => "the import's input cannot be read (no header row, an I/O error)", "check the file; the lines committed so far stay, and running the import again resumes", "docs/import.md";
    "E_IMPORT_REPORT" => "the reject report cannot be written", "give a writable path with --report", "docs/import.md";
    "E_STORAGE" => "the store failed (a database error that retrying will not cure)", "read the message (in the daemon: its log, by request id); check the database", "docs/store.md";
    "E_TIMER_LOOP" => "a record's timers fired 100 times at one instant, each arming the next (a zero-delay timer cycle): the next firing is refused", "give a timer of the cycle a delay or a guard that turns false; `leadflow check` finds the unguarded cycles (E028)", "docs/store.md#timer-loops-e_timer_loop";
    "E_VERSION_NOT_LOADED" => "a record runs on a workflow version the daemon cannot load", "keep the version's snapshot in the database, or move the records with `leadflow migrate`", "docs/store.md";
}

/// The entry for `code` (any case).
pub fn find(code: &str) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code.eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_code_is_defined_twice_or_also_by_the_engine() {
        let mut seen = std::collections::HashSet::new();
        for c in CODES {
            assert!(seen.insert(c.code), "duplicate {}", c.code);
            assert!(
                leadflow_engine::diag::explain(c.code).is_none(),
                "{} is the engine's",
                c.code
            );
            assert!(
                leadflow_runtime::http::codes::lookup(c.code).is_none(),
                "{} is the HTTP API catalogue's",
                c.code
            );
            assert!(!c.title.is_empty() && !c.hint.is_empty() && !c.see.is_empty());
        }
    }
}
