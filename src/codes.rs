//! What `leadflow explain` says about the codes outside the engine's
//! diagnostic catalogue (`leadflow_engine::diag::CODES`): scenario file
//! errors (S0xx), daemon start errors (E_CONFIG*, E_SINK_*, E_KEY_*) and
//! the HTTP API's own errors. A test greps the sources for code literals and
//! fails when one is missing here or in the engine's catalogue.

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
    "E_SINK_CREDENTIALS" => "the SMTP sink's `username` and `password_env` do not go together", "give both or neither; `password_env` is an environment variable name (letters, digits, `_`)", "examples/leadflow.toml";
    "E_SINK_ADDRESS" => "an SMTP sink address is not an e-mail address, or maps a reserved name", "map role names to mailboxes; `customer` (the record's email field) and `assignee` cannot be mapped", "examples/leadflow.toml";
    // HTTP API answers.
    "E_BAD_REQUEST" => "400: the request cannot be read (bad JSON, a body that is not an object, a bad query parameter or cursor)", "fix the request as the message says; the OpenAPI document is at /openapi.json", "README.md#running-the-daemon";
    "E_UNAUTHORIZED" => "401: the API key is missing or unknown", "send `Authorization: Bearer <key>` with a key listed (as SHA-256) in the tenant's config", "README.md#running-the-daemon";
    "E_KEY_EXPIRED" => "401: the API key is past its `expires_at`", "use the key that replaced it (see key rotation in the README)", "README.md#running-the-daemon";
    "E_NOT_FOUND" => "404: no such record or endpoint, or a record the key may not see", "check the id and the path; an actor-bound key sees only its records and its pools", "README.md#running-the-daemon";
    "E_UNKNOWN_WORKFLOW" => "404: the tenant serves no workflow of that id", "use one of the ids listed by GET /v1/workflows", "README.md#running-the-daemon";
    "E_METHOD" => "405: the endpoint does not accept this HTTP method", "see /openapi.json for the methods of each path", "README.md#running-the-daemon";
    "E_TIMEOUT" => "408: the request body did not arrive in time", "send the body within the server's `body_timeout` (30 s by default)", "README.md#running-the-daemon";
    "E_CONFLICT" => "409: the record changed since the revision sent in If-Match", "read the record again (GET gives its ETag) and retry with the new revision", "README.md#running-the-daemon";
    "E_TOO_LARGE" => "413: the request body is over the server's `max_body_bytes`", "send less (1 MiB by default), or raise `[server] max_body_bytes`", "README.md#running-the-daemon";
    "E_IDEMPOTENCY_MISMATCH" => "422: this Idempotency-Key was used for a different request", "use a new key for a new request; the same key only repeats the same request", "README.md#running-the-daemon";
    "E_SPAWN_LIMIT" => "422: one transition would spawn more than 64 records", "make the spawn conditional (`when`) so a transition does not spawn without bound", "README.md#running-the-daemon";
    "E_METRICS_DISABLED" => "403: /metrics needs its bearer token, or has none configured", "set `metrics_token_env` and send `Authorization: Bearer <token>`", "docs/security.md";
    "E_INTERNAL" => "500: the server failed; the answer carries only the request id", "look up the `request_id` in the daemon's log", "README.md#running-the-daemon";
    "E_UNSUPPORTED" => "501: listing records needs a SQL store", "run the daemon with a sqlite: or postgres:// database_url", "README.md#running-the-daemon";
    "E_OVERLOADED" => "503: the daemon holds its maximum of open connections", "retry after the Retry-After delay, or raise `[server] max_connections`", "README.md#running-the-daemon";
    "E_UNAVAILABLE" => "503: the database is down, restarting or saturated", "retry after Retry-After with the same Idempotency-Key: nothing was done", "README.md#running-the-daemon";
    "E_NOT_READY" => "503 from /readyz: a tenant's database does not answer, or a timer worker or outbox dispatcher died", "read the daemon's log; an admin key on /readyz shows which task", "docs/security.md";
    "E_STORAGE" => "the store failed (a database error that retrying will not cure)", "read the message (in the daemon: its log, by request id); check the database", "docs/store.md";
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
            assert!(!c.title.is_empty() && !c.hint.is_empty() && !c.see.is_empty());
        }
    }
}
