//! The workspace's integration tests, as one binary: the command line, the
//! checker's golden cases, the daemon over HTTP (real sockets, fresh SQLite
//! files and PostgreSQL databases), the language server, the scenarios and
//! the templates. One binary links the world once instead of once per file
//! (build time and disk). Run one suite with `cargo test --test it <module>::`,
//! e.g. `cargo test --test it scenarios::`.

#[path = "../../runtime/tests/common/pgtest.rs"]
mod pgtest;
#[macro_use]
#[path = "../http_support/mod.rs"]
mod http_support;
#[path = "../lsp_support/mod.rs"]
mod lsp_support;
#[path = "../../runtime/tests/common/smtp.rs"]
mod smtp;

mod action_links;
mod bulk;
mod check;
mod cli;
mod cli_fmt;
mod http_actors;
mod http_api;
mod http_bulk;
mod http_errors;
mod http_history;
mod http_kpis;
mod http_limits;
mod http_org;
mod http_queues;
mod http_ratelimit;
mod http_reload;
mod http_report_runs;
mod http_shutdown;
mod http_views;
mod http_why;
mod kpi_conformance;
mod lsp;
mod migrate_timers;
mod notifications;
mod openapi_client;
mod scenarios;
mod schema;
mod templates;
mod traceability;
