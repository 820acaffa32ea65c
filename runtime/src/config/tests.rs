//! `leadflow.toml` parsing and validation, with the stable error codes.

use super::*;
use crate::outbox::SmtpTls;

#[test]
fn server_limits_have_defaults_and_are_checked() {
    let parse = |t: &str| Config::parse(t, "t.toml", Path::new("/"));
    let c = parse("").unwrap();
    assert_eq!(c.server.max_body_bytes, 1024 * 1024);
    assert_eq!(
        c.server.header_timeout(),
        std::time::Duration::from_secs(10)
    );
    let c = parse("[server]\nheader_timeout = 0.5\nmax_connections = 4").unwrap();
    assert_eq!(
        c.server.header_timeout(),
        std::time::Duration::from_millis(500)
    );
    assert_eq!(c.server.max_connections, 4);
    for bad in [
        "[server]\nheader_timeout = 0",
        "[server]\nbody_timeout = -1",
        "[server]\nshutdown_grace = nan",
        "[server]\nmax_connections = 0",
        "[server]\nmax_body_bytes = 0",
    ] {
        let e = parse(bad).unwrap_err();
        assert_eq!(e.code(), "E_CONFIG", "{bad}: {e}");
    }
    let e = parse("[server]\nheader_timeot = 1").unwrap_err();
    assert_eq!(e.code(), "E_CONFIG_SYNTAX", "{e}");
}

#[test]
fn pool_size_and_metrics_token() {
    let p = |t: &str| Config::parse(t, "t.toml", Path::new("/"));
    let e = p("database_max_connections = 0").unwrap_err();
    assert!(e.to_string().contains("at least 1"), "{e}");
    let c = p("database_max_connections = 7").unwrap();
    assert_eq!(c.pg_options().max_connections, 7);
    assert_eq!(p("").unwrap().metrics_token().unwrap(), None);
    let c = p(r#"metrics_token_env = "LF_CONFIG_TEST_UNSET_TOKEN""#).unwrap();
    let e = c.metrics_token().unwrap_err();
    assert!(e.to_string().contains("LF_CONFIG_TEST_UNSET_TOKEN"), "{e}");
    std::env::set_var("LF_CONFIG_TEST_SET_TOKEN", "t0ken");
    let c = p(r#"metrics_token_env = "LF_CONFIG_TEST_SET_TOKEN""#).unwrap();
    let h: [u8; 32] = Sha256::digest(b"t0ken").into();
    assert_eq!(c.metrics_token().unwrap(), Some(h));
}

#[test]
fn parses_a_tenant_and_resolves_paths() {
    let c = Config::parse(
        r#"
        [tenants.acme]
        root = "proj"
        workflows = ["aslm"]
        [tenants.acme.actors.d1]
        role = "dealer"
        zones = ["RM"]
        [tenants.acme.actors.x1]
        role = "expert"
        applications = ["tapparelle", "tende da sole"]
        [[tenants.acme.keys]]
        name = "d1"
        sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        actor = "d1"
        "#,
        "t.toml",
        Path::new("/etc/lf"),
    )
    .unwrap();
    assert_eq!(c.database_url(), DEFAULT_DATABASE_URL);
    assert_eq!(c.listen, DEFAULT_LISTEN);
    assert_eq!(c.tenants["acme"].root, Path::new("/etc/lf/proj"));
    assert_eq!(hash_key("test"), c.tenants["acme"].keys[0].sha256);
    assert_eq!(
        c.tenants["acme"].actors["x1"].skills,
        ["tapparelle", "tende da sole"]
    );
}

#[test]
fn rejects_unknown_keys_and_bad_hashes() {
    let e = Config::parse("lisen = 1", "t.toml", Path::new(".")).unwrap_err();
    assert!(e.to_string().contains("unknown field"), "{e}");
    let e = Config::parse(
        "[tenants.a]\nroot = \".\"\n[[tenants.a.keys]]\nname = \"k\"\nsha256 = \"abc\"\n",
        "t.toml",
        Path::new("."),
    )
    .unwrap_err();
    assert!(e.to_string().contains("64 hex digits"), "{e}");
}

fn keys(lines: &str) -> Result<Config, ConfigError> {
    Config::parse(
        &format!("[tenants.a]\nroot = \".\"\n{lines}"),
        "t.toml",
        Path::new("."),
    )
}

#[test]
fn key_names_are_unique_in_a_tenant() {
    let key = |name: &str, hash: &str| {
        format!(
            "[[tenants.a.keys]]\nname = \"{name}\"\nsha256 = \"{}\"\n",
            hash_key(hash)
        )
    };
    let e = keys(&format!("{}{}", key("k", "one"), key("k", "two"))).unwrap_err();
    assert_eq!(e.code(), "E_KEY_DUPLICATE", "{e}");
    assert!(e.to_string().starts_with("tenant `a`, key `k`: "), "{e}");
    // The same name in two tenants is two ids.
    let two = format!(
        "{}[tenants.b]\nroot = \".\"\n{}",
        key("k", "one"),
        key("k", "two").replace("tenants.a", "tenants.b")
    );
    keys(&two).unwrap();
}

#[test]
fn key_expiry_is_an_rfc3339_instant() {
    let hash = hash_key("x");
    let base = format!("[[tenants.a.keys]]\nname = \"k\"\nsha256 = \"{hash}\"\n");
    for v in ["2027-01-31T00:00:00Z", "\"2027-01-31T01:00:00+01:00\""] {
        let c = keys(&format!("{base}expires_at = {v}\n")).unwrap();
        assert_eq!(
            c.tenants["a"].keys[0].expires_at.unwrap().to_rfc3339(),
            "2027-01-31T00:00:00+00:00"
        );
    }
    for v in ["2027-01-31", "2027-01-31T00:00:00", "\"soon\"", "7"] {
        let e = keys(&format!("{base}expires_at = {v}\n")).unwrap_err();
        assert_eq!(e.code(), "E_CONFIG_SYNTAX", "{v}: {e}");
        assert!(e.to_string().contains("RFC 3339"), "{v}: {e}");
    }
}

#[test]
fn rate_limits_default_to_none_and_are_checked() {
    assert_eq!(keys("").unwrap().tenants["a"].rate_limit, None);
    let c = keys("[tenants.a.rate_limit]\nrequests_per_second = 50\nburst = 100\n").unwrap();
    let r = c.tenants["a"].rate_limit.unwrap();
    assert_eq!((r.requests_per_second, r.burst()), (50.0, 100));
    // The burst defaults to the rate, rounded up (at least 1).
    for (rate, burst) in [("2.5", 3), ("0.5", 1), ("1000000", 1_000_000)] {
        let c = keys(&format!(
            "[tenants.a.rate_limit]\nrequests_per_second = {rate}\n"
        ))
        .unwrap();
        assert_eq!(c.tenants["a"].rate_limit.unwrap().burst(), burst, "{rate}");
    }
    for (bad, what) in [
        ("requests_per_second = 0", "requests_per_second = 0"),
        ("requests_per_second = -3", "above 0"),
        ("requests_per_second = nan", "above 0"),
        ("requests_per_second = inf", "above 0"),
        ("requests_per_second = 1e7", "at most 1000000"),
        ("requests_per_second = 5\nburst = 0", "burst = 0"),
        ("requests_per_second = 5\nburst = -1", "from 1 to 1000000"),
        (
            "requests_per_second = 5\nburst = 2000000",
            "from 1 to 1000000",
        ),
    ] {
        let e = keys(&format!("[tenants.a.rate_limit]\n{bad}\n")).unwrap_err();
        assert_eq!(e.code(), "E_RATE_LIMIT", "{bad}: {e}");
        assert!(e.to_string().starts_with("tenant `a`, rate_limit: "), "{e}");
        assert!(e.to_string().contains(what), "{bad}: {e}");
    }
    // A missing rate or an unknown name is a syntax error naming it.
    let e = keys("[tenants.a.rate_limit]\nburst = 5\n").unwrap_err();
    assert!(e.to_string().contains("requests_per_second"), "{e}");
    let e = keys("[tenants.a.rate_limit]\nrequests_per_second = 5\nbrust = 5\n").unwrap_err();
    assert_eq!(e.code(), "E_CONFIG_SYNTAX");
    assert!(e.to_string().contains("brust"), "{e}");
}

#[test]
fn cors_origins_default_to_none_and_are_checked() {
    assert!(keys("").unwrap().tenants["a"].cors_origins.is_empty());
    let c =
        keys("cors_origins = [\"https://crm.example.com\", \"http://localhost:3000\", \"*\"]\n")
            .unwrap();
    assert_eq!(c.tenants["a"].cors_origins.len(), 3);
    for bad in [
        "https://crm.example.com/",
        "https://*.example.com",
        "null",
        "crm.example.com",
    ] {
        let e = keys(&format!("cors_origins = [\"{bad}\"]\n")).unwrap_err();
        assert_eq!(e.code(), "E_CORS_ORIGIN", "{bad}: {e}");
        assert!(
            e.to_string().starts_with("tenant `a`, cors_origins: `"),
            "{e}"
        );
    }
}

fn smtp(lines: &str) -> Result<Config, ConfigError> {
    Config::parse(
        &format!("[tenants.a]\nroot = \".\"\n[tenants.a.sink]\nkind = \"smtp\"\n{lines}"),
        "t.toml",
        Path::new("."),
    )
}

#[test]
fn an_smtp_sink_with_defaults_and_a_password_from_the_environment() {
    let c = smtp(
        "host = \"smtp.example.com\"\nfrom = \"Leads <noreply@example.com>\"\nusername = \"lf\"\npassword_env = \"LF_SMTP_PASSWORD\"\n[tenants.a.sink.addresses]\nd1 = \"d1@example.com\"\n",
    )
    .unwrap();
    let Some(SinkConfig::Smtp(s)) = &c.tenants["a"].sink else {
        panic!("not an smtp sink: {:?}", c.tenants["a"].sink)
    };
    assert_eq!((s.tls, s.port()), (SmtpTls::Starttls, 587));
    let env = |v: &str| (v == "LF_SMTP_PASSWORD").then(|| "s3cret".to_string());
    let r = s.resolve("a", env).unwrap();
    assert_eq!(
        (r.port, r.username.as_deref(), r.password.as_deref()),
        (587, Some("lf"), Some("s3cret"))
    );
    assert_eq!(r.addresses["d1"], "d1@example.com");
    let e = s.resolve("a", |_| None).unwrap_err();
    assert_eq!(e.code(), "E_SINK_CREDENTIALS");
    assert!(e.to_string().contains("`LF_SMTP_PASSWORD`"), "{e}");
    let c = smtp("host = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\nfrom = \"a@b.c\"\n").unwrap();
    let Some(SinkConfig::Smtp(s)) = &c.tenants["a"].sink else {
        panic!()
    };
    assert_eq!((s.tls, s.port()), (SmtpTls::None, 2525));
    assert!(s.resolve("a", |_| None).unwrap().password.is_none());
}

fn webhook(lines: &str) -> Result<Config, ConfigError> {
    Config::parse(
        &format!("[tenants.a]\nroot = \".\"\n[tenants.a.sink]\nkind = \"webhook\"\n{lines}"),
        "t.toml",
        Path::new("."),
    )
}

fn webhook_sink(c: &Config) -> &WebhookSinkConfig {
    match &c.tenants["a"].sink {
        Some(SinkConfig::Webhook(w)) => w,
        other => panic!("not a webhook sink: {other:?}"),
    }
}

#[test]
fn a_webhook_secret_from_the_environment_or_the_file_and_a_previous_one() {
    let url = "url = \"https://crm.example.com/hook\"\n";
    let env = |v: &str| match v {
        "LF_HOOK" => Some("new-secret".to_string()),
        "LF_HOOK_OLD" => Some("old-secret".to_string()),
        "LF_EMPTY" => Some(String::new()),
        _ => None,
    };
    let c = webhook(&format!("{url}secret_env = \"LF_HOOK\"\n")).unwrap();
    let w = webhook_sink(&c).resolve("a", env).unwrap();
    assert_eq!(w.secrets, ["new-secret"]);
    assert!(!w.legacy_signature && !webhook_sink(&c).secret_in_file());
    assert!(!format!("{w:?}").contains("new-secret"), "{w:?}");
    let c = webhook(&format!(
        "{url}secret_env = \"LF_HOOK\"\nprevious_secret_env = \"LF_HOOK_OLD\"\nlegacy_signature = true\n"
    ))
    .unwrap();
    let w = webhook_sink(&c).resolve("a", env).unwrap();
    assert_eq!(w.secrets, ["new-secret", "old-secret"]);
    assert!(w.legacy_signature);
    // The literal secret of existing files still works.
    let c = webhook(&format!("{url}secret = \"in-file\"\n")).unwrap();
    assert!(webhook_sink(&c).secret_in_file());
    assert_eq!(
        webhook_sink(&c).resolve("a", env).unwrap().secrets,
        ["in-file"]
    );
    // A variable unset or empty when the daemon starts.
    for (lines, var) in [
        ("secret_env = \"LF_UNSET\"\n", "LF_UNSET"),
        ("secret_env = \"LF_EMPTY\"\n", "LF_EMPTY"),
        (
            "secret_env = \"LF_HOOK\"\nprevious_secret_env = \"LF_UNSET\"\n",
            "LF_UNSET",
        ),
    ] {
        let c = webhook(&format!("{url}{lines}")).unwrap();
        let e = webhook_sink(&c).resolve("a", env).unwrap_err();
        assert_eq!(e.code(), "E_SINK_CREDENTIALS", "{e}");
        assert!(e.to_string().contains(&format!("`{var}`")), "{e}");
    }
}

#[test]
fn webhook_sink_errors_have_stable_codes() {
    let env = "secret_env = \"LF_HOOK\"\n";
    let cases = [
        (format!("url = \"ftp://x/hook\"\n{env}"), "E_SINK_URL"),
        (
            format!("url = \"crm.example.com/hook\"\n{env}"),
            "E_SINK_URL",
        ),
        (format!("url = \"http://\"\n{env}"), "E_SINK_URL"),
        (format!("url = \"\"\n{env}"), "E_SINK_URL"),
        ("url = \"https://x\"\n".to_string(), "E_SINK_CREDENTIALS"),
        (
            format!("url = \"https://x\"\n{env}secret = \"s\"\n"),
            "E_SINK_CREDENTIALS",
        ),
        (
            "url = \"https://x\"\nsecret = \"\"\n".to_string(),
            "E_SINK_CREDENTIALS",
        ),
        (
            "url = \"https://x\"\nsecret_env = \"A-B\"\n".to_string(),
            "E_SINK_CREDENTIALS",
        ),
        (
            format!("url = \"https://x\"\n{env}previous_secret_env = \"1X\"\n"),
            "E_SINK_CREDENTIALS",
        ),
    ];
    for (text, code) in cases {
        let e = webhook(&text).unwrap_err();
        assert_eq!(e.code(), code, "{text}: {e}");
        assert!(
            e.to_string().starts_with("tenant `a`, sink: webhook "),
            "{e}"
        );
        assert!(e.to_string().ends_with(&format!("[{code}]")), "{e}");
    }
    let e = webhook(&format!("url = \"https://x\"\n{env}secrte = \"s\"\n")).unwrap_err();
    assert_eq!(e.code(), "E_CONFIG_SYNTAX");
    assert!(e.to_string().contains("secrte"), "{e}");
}

#[test]
fn actors_email_and_language_and_notification_settings_are_checked() {
    let ok = Config::parse(
        "[tenants.a]\nroot = \".\"\n[tenants.a.notifications]\nlanguage = \"IT\"\nlists = { ops = [\"ops@example.com\"] }\n[tenants.a.actors.d1]\nrole = \"dealer\"\nemail = \"Dealer <d1@example.com>\"\nlanguage = \"EN\"\n",
        "t.toml",
        Path::new("/base"),
    )
    .unwrap();
    let t = &ok.tenants["a"];
    let a = &t.directory()[0];
    assert_eq!(
        (a.email.as_deref(), a.language.as_deref()),
        (Some("Dealer <d1@example.com>"), Some("en"))
    );
    let s = t.notification_settings();
    assert_eq!(
        (s.language.as_deref(), s.lists["ops"].len()),
        (Some("it"), 1)
    );
    for (lines, code) in [
        (
            "[tenants.a.actors.d1]\nrole = \"d\"\nemail = \"nobody\"\n",
            "E_SINK_ADDRESS",
        ),
        (
            "[tenants.a.actors.d1]\nrole = \"d\"\nlanguage = \"it_IT!\"\n",
            "E_CONFIG",
        ),
        ("[tenants.a.notifications]\nlanguage = \"\"\n", "E_CONFIG"),
        (
            "[tenants.a.notifications]\nlists = { ops = [\"x\"] }\n",
            "E_SINK_ADDRESS",
        ),
        (
            "[tenants.a.notifications]\nlanguages = \"it\"\n",
            "E_CONFIG_SYNTAX",
        ),
    ] {
        let e = Config::parse(
            &format!("[tenants.a]\nroot = \".\"\n{lines}"),
            "t.toml",
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(e.code(), code, "{lines}: {e}");
    }
}

#[test]
fn smtp_sink_errors_have_stable_codes() {
    let from = "from = \"a@b.c\"\n";
    let cases = [
        (format!("host = \"smtp://x\"\n{from}"), "E_SINK_HOST"),
        (format!("host = \"x:25\"\n{from}"), "E_SINK_HOST"),
        (format!("host = \"\"\n{from}"), "E_SINK_HOST"),
        (format!("host = \"x\"\nport = 0\n{from}"), "E_SINK_PORT"),
        (
            "host = \"x\"\nfrom = \"nobody\"\n".to_string(),
            "E_SINK_FROM",
        ),
        (
            format!("host = \"x\"\n{from}password = \"p\"\nusername = \"u\"\n"),
            "E_SINK_SECRET",
        ),
        (
            format!("host = \"x\"\n{from}username = \"u\"\n"),
            "E_SINK_CREDENTIALS",
        ),
        (
            format!("host = \"x\"\n{from}password_env = \"P\"\n"),
            "E_SINK_CREDENTIALS",
        ),
        (
            format!("host = \"x\"\n{from}username = \"u\"\npassword_env = \"A-B\"\n"),
            "E_SINK_CREDENTIALS",
        ),
        (
            format!("host = \"x\"\n{from}[tenants.a.sink.addresses]\nd1 = \"not an address\"\n"),
            "E_SINK_ADDRESS",
        ),
        (
            format!("host = \"x\"\n{from}[tenants.a.sink.addresses]\ncustomer = \"c@d.e\"\n"),
            "E_SINK_ADDRESS",
        ),
    ];
    for (text, code) in cases {
        let e = smtp(&text).unwrap_err();
        assert_eq!(e.code(), code, "{text}: {e}");
        assert!(e.to_string().starts_with("tenant `a`, sink: smtp "), "{e}");
        assert!(e.to_string().ends_with(&format!("[{code}]")), "{e}");
    }
    // Unknown keys and TLS modes are syntax errors naming the key.
    let e = smtp(&format!("host = \"x\"\n{from}pasword_env = \"P\"\n")).unwrap_err();
    assert_eq!(e.code(), "E_CONFIG_SYNTAX");
    assert!(e.to_string().contains("pasword_env"), "{e}");
    let e = smtp(&format!("host = \"x\"\n{from}tls = \"ssl\"\n")).unwrap_err();
    assert!(e.to_string().contains("starttls"), "{e}");
}
