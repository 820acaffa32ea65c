//! The outbox dispatcher: delivers the messages transitions wrote to the
//! outbox, to a log, a webhook (signed JSON events, see [`crate::webhook`])
//! or SMTP, with exponential backoff. A row is marked delivered only after
//! its sink accepted it; a failure is recorded on the row and retried with
//! backoff until `max_attempts`, then the row is dead (`failed_at`, the
//! metric `leadflow_outbox_dead_total`). A failure retrying cannot mend (a
//! template that does not render for this payload, an address that does
//! not parse: `E_SINK_ADDRESS`) makes the row dead at once: never sent
//! half-rendered, never retried forever.
//!
//! Templates: [`crate::templates`] (MiniJinja, `templates/<id>.<lang>.txt`).

use crate::backend::Error;
use crate::background::{supervise, Health, Restart};
use crate::clock::Clock;
use crate::pg::PgBackend;
use crate::sql::outbox as stmt;
pub use crate::sql::outbox::Mark;
use crate::sql::{db, instant, json_err, micros};
use crate::sqlite::SqliteBackend;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A message claimed for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: i64,
    pub record: i64,
    pub template: String,
    pub recipients: Vec<String>,
    pub payload: serde_json::Value,
    pub attempts: i32,
    /// When the transition queued it.
    pub created_at: DateTime<Utc>,
}

/// What is sent: the rendered message plus its data.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The tenant whose outbox holds the message.
    pub tenant: String,
    pub id: i64,
    pub record: i64,
    pub created_at: DateTime<Utc>,
    pub template: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
    /// The HTML part, when the template has one (`<id>.<lang>.html`).
    pub html: Option<String>,
    pub payload: serde_json::Value,
}

pub use crate::store::api::OutboxQueue;

use crate::templates::Source;

/// Stored form of a template version's files.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredFile {
    path: String,
    text: String,
}

fn stored(files: Vec<Source>) -> serde_json::Value {
    serde_json::to_value(
        files
            .into_iter()
            .map(|f| StoredFile {
                path: f.path,
                text: f.text,
            })
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default()
}

fn unstored(v: serde_json::Value) -> Option<Vec<Source>> {
    let files: Vec<StoredFile> = serde_json::from_value(v).ok()?;
    Some(
        files
            .into_iter()
            .map(|f| Source {
                path: f.path,
                text: f.text,
            })
            .collect(),
    )
}

/// Publish the tenant's templates if they changed: re-read the directory,
/// store the new version, then stamp it on the messages queued from now
/// on (stored first, so every stamped version can be read back). The
/// dispatcher does it before each pass; hot reload when a file changes.
pub async fn publish_templates<Q: OutboxQueue>(q: &Q, templates: &Templates) -> Result<(), Error> {
    templates.refresh();
    if let Some(set) = templates.unpublished() {
        q.save_templates(set.hash(), set.source_list()).await?;
        q.stamp_templates(set.hash());
        templates.mark_published(set.hash());
        tracing::info!(
            tenant = q.tenant(),
            version = set.hash(),
            "templates version published"
        );
    }
    Ok(())
}

/// [`publish_templates`] for any store (the memory store keeps no versions).
pub async fn publish_templates_any(
    b: &crate::any::AnyBackend,
    templates: &Templates,
) -> Result<(), Error> {
    match b {
        crate::any::AnyBackend::Pg(b) => publish_templates(b, templates).await,
        crate::any::AnyBackend::Sqlite(b) => publish_templates(b, templates).await,
        crate::any::AnyBackend::Mem(_) => {
            templates.refresh();
            Ok(())
        }
    }
}

/// Make sure the template version a message was queued under is at hand:
/// read it from the store if this process does not have it. `Some(note)`
/// when it is not stored (the message is then rendered with the current
/// templates).
async fn version_for<Q: OutboxQueue>(
    q: &Q,
    templates: &Templates,
    payload: &serde_json::Value,
) -> Result<Option<String>, Error> {
    let Some(hash) = payload.get("templates").and_then(|h| h.as_str()) else {
        return Ok(None);
    };
    if templates.version(hash).is_some() {
        return Ok(None);
    }
    match q.load_templates(hash).await? {
        Some(files) => {
            templates.add_version(files);
            Ok(None)
        }
        None => Ok(Some(format!(
            "template version {} is not stored: rendered with the current templates",
            &hash[..hash.len().min(12)]
        ))),
    }
}

type PgPending = (
    i64,
    i64,
    String,
    sqlx::types::Json<Vec<String>>,
    serde_json::Value,
    i32,
    DateTime<Utc>,
);

impl OutboxQueue for PgBackend {
    fn tenant(&self) -> &str {
        PgBackend::tenant(self)
    }

    async fn save_templates(&self, hash: &str, files: Vec<Source>) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        sqlx::query("INSERT INTO template_versions (tenant_id, hash, files, stored_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .bind(self.tenant())
            .bind(hash)
            .bind(stored(files))
            .bind(Utc::now())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn load_templates(&self, hash: &str) -> Result<Option<Vec<Source>>, Error> {
        let mut tx = self.tx().await?;
        let v: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT files FROM template_versions WHERE tenant_id = $1 AND hash = $2",
        )
        .bind(self.tenant())
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(v.and_then(unstored))
    }

    fn stamp_templates(&self, hash: &str) {
        self.versions().set_templates(hash);
    }
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: i32,
        limit: i64,
    ) -> Result<Vec<Pending>, Error> {
        let mut tx = self.tx().await?;
        let rows: Vec<PgPending> = sqlx::query_as(
            "UPDATE outbox o SET next_attempt = $1
             FROM (SELECT tenant_id, id FROM outbox WHERE tenant_id = $2 AND delivered_at IS NULL AND failed_at IS NULL AND next_attempt <= $3 AND attempts < $4
                   ORDER BY next_attempt, id LIMIT $5 FOR UPDATE SKIP LOCKED) c
             WHERE o.tenant_id = $2 AND o.tenant_id = c.tenant_id AND o.id = c.id
             RETURNING o.id, coalesce(o.record_id, 0), o.template, o.recipients, o.payload, o.attempts, o.created_at",
        )
        .bind(lease_until)
        .bind(self.tenant())
        .bind(now)
        .bind(max_attempts)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut list: Vec<Pending> = rows
            .into_iter()
            .map(
                |(id, record, template, recipients, payload, attempts, created_at)| Pending {
                    id,
                    record,
                    template,
                    recipients: recipients.0,
                    payload,
                    attempts,
                    created_at,
                },
            )
            .collect();
        list.sort_by_key(|p| p.id);
        Ok(list)
    }

    async fn delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        stmt::delivered(&mut *tx, self.tenant(), id, at).await?;
        tx.commit().await.map_err(db)
    }

    async fn mark(&self, id: i64, mark: Mark, error: &str) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        stmt::mark(&mut *tx, self.tenant(), id, mark, error).await?;
        tx.commit().await.map_err(db)
    }

    async fn noted(&self, id: i64, note: &str) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        stmt::noted(&mut *tx, self.tenant(), id, note).await?;
        tx.commit().await.map_err(db)
    }
}

impl OutboxQueue for SqliteBackend {
    fn tenant(&self) -> &str {
        SqliteBackend::tenant(self)
    }

    async fn save_templates(&self, hash: &str, files: Vec<Source>) -> Result<(), Error> {
        sqlx::query("INSERT INTO template_versions (tenant_id, hash, files, stored_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(self.tenant())
            .bind(hash)
            .bind(stored(files).to_string())
            .bind(crate::sql::micros(Utc::now()))
            .execute(self.pool())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn load_templates(&self, hash: &str) -> Result<Option<Vec<Source>>, Error> {
        let v: Option<String> = sqlx::query_scalar(
            "SELECT files FROM template_versions WHERE tenant_id = ? AND hash = ?",
        )
        .bind(self.tenant())
        .bind(hash)
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        Ok(v.and_then(|t| serde_json::from_str(&t).ok())
            .and_then(unstored))
    }

    fn stamp_templates(&self, hash: &str) {
        self.versions().set_templates(hash);
    }
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: i32,
        limit: i64,
    ) -> Result<Vec<Pending>, Error> {
        let rows: Vec<(i64, i64, String, String, String, i32, i64)> = sqlx::query_as(
            "UPDATE outbox SET next_attempt = ?1
             WHERE tenant_id = ?2 AND id IN (SELECT id FROM outbox WHERE tenant_id = ?2 AND delivered_at IS NULL AND failed_at IS NULL AND next_attempt <= ?3 AND attempts < ?4
                             ORDER BY next_attempt, id LIMIT ?5)
             RETURNING id, coalesce(record_id, 0), template, recipients, payload, attempts, created_at",
        )
        .bind(micros(lease_until))
        .bind(self.tenant())
        .bind(micros(now))
        .bind(max_attempts)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        let mut list = rows
            .into_iter()
            .map(
                |(id, record, template, recipients, payload, attempts, created_at)| {
                    Ok(Pending {
                        id,
                        record,
                        template,
                        recipients: serde_json::from_str(&recipients).map_err(json_err)?,
                        payload: serde_json::from_str(&payload).map_err(json_err)?,
                        attempts,
                        created_at: instant(created_at),
                    })
                },
            )
            .collect::<Result<Vec<_>, Error>>()?;
        list.sort_by_key(|p| p.id);
        Ok(list)
    }

    async fn delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), Error> {
        let mut c = self.pool().acquire().await.map_err(db)?;
        stmt::delivered(&mut *c, self.tenant(), id, at).await
    }

    async fn mark(&self, id: i64, mark: Mark, error: &str) -> Result<(), Error> {
        let mut c = self.pool().acquire().await.map_err(db)?;
        stmt::mark(&mut *c, self.tenant(), id, mark, error).await
    }

    async fn noted(&self, id: i64, note: &str) -> Result<(), Error> {
        let mut c = self.pool().acquire().await.map_err(db)?;
        stmt::noted(&mut *c, self.tenant(), id, note).await
    }
}

pub use crate::templates::Templates;

/// Render a message of `tenant`'s outbox with the templates in force; the
/// note says which language it fell back to, if it did.
pub fn render(
    templates: &Templates,
    tenant: &str,
    p: &Pending,
) -> Result<(Delivery, Option<String>), crate::templates::RenderError> {
    let r = templates.render(&p.template, &p.payload, p.created_at)?;
    Ok((
        Delivery {
            tenant: tenant.to_string(),
            id: p.id,
            record: p.record,
            created_at: p.created_at,
            template: p.template.clone(),
            recipients: p.recipients.clone(),
            subject: r.subject,
            body: r.text,
            html: r.html,
            payload: p.payload.clone(),
        },
        r.note,
    ))
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP, never encrypted (a local relay, tests). Default port 25.
    None,
    /// Plain connection upgraded with STARTTLS, required. Default port 587.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS). Default port 465.
    Tls,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// SMTP settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    /// The `Reply-To` of every message, if any.
    pub reply_to: Option<String>,
    /// At most this many messages a second (the dispatcher waits).
    pub max_per_second: Option<u32>,
    /// Actor id -> e-mail address, for actors without an `email` in the
    /// directory.
    pub addresses: HashMap<String, String>,
}

/// Webhook settings: where to POST and the secrets that sign.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// An `http` or `https` URL.
    pub url: String,
    /// The signing secrets: the current one first, then (during a rotation)
    /// the previous one; each gives a `v1=` in `Leadflow-Signature`.
    pub secrets: Vec<String>,
    /// Also send the deprecated `X-Leadflow-Signature: sha256=<hex HMAC of
    /// the body>` (first secret), for receivers not yet migrated.
    pub legacy_signature: bool,
    /// At most this many events a second (per tenant: each has its sink).
    pub max_per_second: Option<u32>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secrets", &format!("<{} redacted>", self.secrets.len()))
            .field("legacy_signature", &self.legacy_signature)
            .field("max_per_second", &self.max_per_second)
            .finish()
    }
}

/// Where messages go.
#[derive(Clone)]
pub enum Sink {
    /// Logged with tracing (development, dry runs).
    Log,
    /// HTTP POST of a JSON [`WebhookEvent`](crate::webhook::WebhookEvent)
    /// (`message.queued`) with the headers `Leadflow-Event`,
    /// `Leadflow-Delivery` (the same on retries) and `Leadflow-Signature:
    /// t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Any 2xx is
    /// success; anything else, a redirect (not followed), a timeout (10 s)
    /// or a connection error is retried with the dispatcher's backoff.
    Webhook {
        config: Arc<WebhookConfig>,
        client: reqwest::Client,
        /// `max_per_second`, per tenant.
        limiter: Option<Arc<governor::DefaultDirectRateLimiter>>,
    },
    Smtp {
        config: Arc<SmtpConfig>,
        transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
        /// `max_per_second`, per tenant (each tenant has its sink).
        limiter: Option<Arc<governor::DefaultDirectRateLimiter>>,
    },
}

impl Sink {
    /// A webhook signing with one secret.
    pub fn webhook(url: impl Into<String>, secret: impl Into<String>) -> Result<Sink, Error> {
        Sink::webhook_with(WebhookConfig {
            url: url.into(),
            secrets: vec![secret.into()],
            legacy_signature: false,
            max_per_second: None,
        })
    }

    /// A webhook; refused unless the URL is `http(s)://host...` and there is
    /// a non-empty secret.
    pub fn webhook_with(config: WebhookConfig) -> Result<Sink, Error> {
        if let Err(e) = webhook_url(&config.url) {
            return Err(Error::storage(e));
        }
        if config.secrets.is_empty() || config.secrets.iter().any(String::is_empty) {
            return Err(Error::storage("webhook: a non-empty secret is needed"));
        }
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            // A redirect is an answer, not a new destination for signed data.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("leadflow-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::storage(format!("webhook client: {e}")))?;
        Ok(Sink::Webhook {
            limiter: limiter(config.max_per_second),
            config: Arc::new(config),
            client,
        })
    }

    pub fn smtp(config: SmtpConfig) -> Result<Sink, Error> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, Tokio1Executor};
        let tls_err = |e: lettre::transport::smtp::Error| Error::storage(format!("smtp: {e}"));
        let mut b = match config.tls {
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host).map_err(tls_err)?
            }
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                .map_err(tls_err)?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
        };
        // Sessions are kept open and reused (greeting, EHLO, STARTTLS and
        // AUTH once per connection, not per message), as many as the
        // dispatcher's deliveries in flight.
        b = b
            .port(config.port)
            .timeout(Some(std::time::Duration::from_secs(10)))
            .pool_config(
                lettre::transport::smtp::PoolConfig::new()
                    .max_size(u32::try_from(DispatchConfig::default().concurrency).unwrap_or(16))
                    .idle_timeout(std::time::Duration::from_secs(30)),
            );
        if let (Some(u), Some(p)) = (&config.username, &config.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Sink::Smtp {
            transport: b.build(),
            limiter: limiter(config.max_per_second),
            config: Arc::new(config),
        })
    }

    /// Deliver one message; `Ok` means the receiver accepted it.
    pub async fn deliver(&self, d: &Delivery) -> Result<(), String> {
        match self {
            Sink::Log => {
                tracing::info!(id = d.id, record = d.record, template = %d.template, recipients = ?d.recipients, subject = %d.subject, "outbox message");
                Ok(())
            }
            Sink::Webhook {
                config,
                client,
                limiter,
            } => {
                if let Some(l) = limiter {
                    l.until_ready().await;
                }
                post_event(config, client, d).await
            }
            Sink::Smtp {
                config,
                transport,
                limiter,
            } => {
                if let Some(l) = limiter {
                    l.until_ready().await;
                }
                send_mail(config, transport, d).await
            }
        }
    }
}

/// A sink's `max_per_second` budget (a burst of that many, then that rate).
fn limiter(max_per_second: Option<u32>) -> Option<Arc<governor::DefaultDirectRateLimiter>> {
    max_per_second.and_then(std::num::NonZeroU32::new).map(|n| {
        Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(
            n,
        )))
    })
}

/// Why a webhook URL is refused: `Ok` for `http://host...` or
/// `https://host...`.
pub fn webhook_url(url: &str) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url)
        .map_err(|e| format!("webhook url `{url}` is not an http:// or https:// URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "webhook url `{url}` must be an http:// or https:// URL with a host"
        ));
    }
    Ok(u)
}

/// The webhook event of a delivery (the JSON body).
pub fn webhook_event(d: &Delivery) -> crate::webhook::WebhookEvent {
    use crate::webhook::{delivery_id, EventType, WebhookEvent};
    WebhookEvent {
        event_type: EventType::MessageQueued,
        delivery_id: delivery_id(&d.tenant, d.id, d.created_at),
        tenant: d.tenant.clone(),
        id: d.id,
        record: d.record,
        created_at: d.created_at,
        template: d.template.clone(),
        recipients: d.recipients.clone(),
        subject: d.subject.clone(),
        body: d.body.clone(),
        payload: d.payload.clone(),
    }
}

/// POST one event, signed at the moment it is sent (the wall clock, not
/// the dispatcher's pass time: a slow batch must not age the signatures).
async fn post_event(
    config: &WebhookConfig,
    client: &reqwest::Client,
    d: &Delivery,
) -> Result<(), String> {
    use crate::webhook::{
        legacy_signature, sign, DELIVERY_HEADER, EVENT_HEADER, LEGACY_SIGNATURE_HEADER,
        SIGNATURE_HEADER,
    };
    let event = webhook_event(d);
    let body = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
    let mut req = client
        .post(&config.url)
        .header("content-type", "application/json")
        .header(EVENT_HEADER, event.event_type.as_str())
        .header(DELIVERY_HEADER, &event.delivery_id)
        .header(
            SIGNATURE_HEADER,
            sign(&config.secrets, Utc::now().timestamp(), &body),
        );
    if config.legacy_signature {
        if let Some(first) = config.secrets.first() {
            req = req.header(LEGACY_SIGNATURE_HEADER, legacy_signature(first, &body));
        }
    }
    let resp = req.body(body).send().await.map_err(|e| {
        // Without the URL: it may hold credentials or tokens, and the
        // message goes to the log and the outbox row.
        let e = e.without_url();
        let mut msg = format!("webhook: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(&format!(": {s}"));
            source = s.source();
        }
        msg
    })?;
    match resp.status() {
        s if s.is_success() => Ok(()),
        s => Err(format!("webhook answered {s}")),
    }
}

/// Where a message goes by mail: its recipient's resolved address (the
/// actor's `email`, the customer's field, a list's entry); else, for an
/// actor, the SMTP sink's `addresses`; a recipient written as an address
/// is used as written. Rows queued before recipients were resolved may name
/// several recipients, `customer` standing for the `email` field.
fn addresses(config: &SmtpConfig, d: &Delivery) -> Vec<String> {
    let resolved = d
        .payload
        .get("recipient")
        .and_then(|r| r.get("address"))
        .and_then(|a| a.as_str());
    if let Some(a) = resolved {
        return vec![a.to_string()];
    }
    let kind = d
        .payload
        .get("recipient")
        .and_then(|r| r.get("kind"))
        .and_then(|k| k.as_str());
    d.recipients
        .iter()
        .filter_map(|r| {
            if r.contains('@') {
                Some(r.clone())
            } else if r == "customer" {
                // Resolved rows know the customer's address; older ones
                // only carry the `email` field.
                (kind.is_none())
                    .then(|| {
                        d.payload
                            .get("fields")?
                            .get("email")?
                            .as_str()
                            .map(str::to_string)
                    })
                    .flatten()
            } else {
                config.addresses.get(r).cloned()
            }
        })
        .collect()
}

async fn send_mail(
    config: &SmtpConfig,
    transport: &lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    d: &Delivery,
) -> Result<(), String> {
    use lettre::message::Mailbox;
    use lettre::AsyncTransport;
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| format!("smtp from `{}`: {e}", config.from))?;
    let mut to = Vec::new();
    for a in addresses(config, d) {
        to.push(
            a.parse::<Mailbox>()
                .map_err(|e| format!("E_SINK_ADDRESS: address `{a}`: {e}"))?,
        );
    }
    if to.is_empty() {
        return Err(format!(
            "E_SINK_ADDRESS: no e-mail address for {}",
            d.recipients.join(", ")
        ));
    }
    let mut b = lettre::Message::builder()
        .from(from)
        .subject(d.subject.clone());
    if let Some(r) = &config.reply_to {
        b = b.reply_to(
            r.parse::<Mailbox>()
                .map_err(|e| format!("smtp reply_to `{r}`: {e}"))?,
        );
    }
    for m in to {
        b = b.to(m);
    }
    let msg = match &d.html {
        Some(html) => b.multipart(lettre::message::MultiPart::alternative_plain_html(
            d.body.clone(),
            html.clone(),
        )),
        None => b.body(d.body.clone()),
    }
    .map_err(|e| format!("message: {e}"))?;
    transport
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| format!("smtp: {e}"))
}

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub batch: i64,
    /// How long a claimed message is hidden from other dispatchers.
    pub lease: chrono::Duration,
    /// Delay after the first failure; doubles per attempt up to `max_backoff`.
    pub backoff: chrono::Duration,
    pub max_backoff: chrono::Duration,
    pub max_attempts: i32,
    /// Sleep when nothing is pending.
    pub idle: chrono::Duration,
    /// Deliveries in flight at once (within the sink's `max_per_second`).
    pub concurrency: usize,
    /// What happens when the dispatcher panics.
    pub restart: Restart,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            batch: 50,
            lease: chrono::Duration::seconds(60),
            backoff: chrono::Duration::seconds(5),
            max_backoff: chrono::Duration::hours(1),
            max_attempts: 12,
            idle: chrono::Duration::seconds(2),
            concurrency: 32,
            restart: Restart::default(),
        }
    }
}

impl DispatchConfig {
    /// When to try again after `attempts` failures (1 = the first).
    pub fn next_attempt(&self, now: DateTime<Utc>, attempts: i32) -> DateTime<Utc> {
        let factor = 1i32
            .checked_shl(attempts.clamp(1, 30) as u32 - 1)
            .unwrap_or(i32::MAX);
        let delay = self
            .backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        now + delay
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchStats {
    pub delivered: u64,
    pub failed: u64,
    /// Of `failed`, the messages given up (dead letters).
    pub dead: u64,
    /// Panics of the dispatcher (it was restarted after each).
    pub panics: u64,
}

/// One pass: claim due messages, render them, deliver up to
/// `cfg.concurrency` at once, then record each result. A crash between a
/// delivery and its record delivers that message again when its lease
/// ends (at least once; webhook receivers dedupe by `Leadflow-Delivery`).
pub async fn dispatch_once<Q: OutboxQueue>(
    q: &Q,
    sink: &Sink,
    templates: &Templates,
    cfg: &DispatchConfig,
    now: DateTime<Utc>,
) -> Result<DispatchStats, Error> {
    use futures_util::stream::{self, StreamExt};
    let mut stats = DispatchStats::default();
    publish_templates(q, templates).await?;
    let mut ready = Vec::new();
    let mut outcomes = Vec::new();
    for p in q
        .claim_outbox(now, now + cfg.lease, cfg.max_attempts, cfg.batch)
        .await?
    {
        if let Some(note) = version_for(q, templates, &p.payload).await? {
            tracing::warn!(id = p.id, template = %p.template, "{note}");
            q.noted(p.id, &note).await?;
        }
        match render(templates, q.tenant(), &p) {
            Ok((d, note)) => {
                if let Some(note) = &note {
                    tracing::info!(id = p.id, template = %p.template, "{note}");
                    q.noted(p.id, note).await?;
                }
                ready.push((p, d));
            }
            Err(e) => outcomes.push((p, Err((e.to_string(), e.permanent())))),
        }
    }
    // Each delivery waits on its receiver (an SMTP session is several
    // round trips): those of different records overlap, within the sink's
    // own rate limit; one record's messages go one after the other, in the
    // order they were queued.
    let mut by_record: Vec<Vec<(Pending, Delivery)>> = Vec::new();
    let mut group_of = std::collections::HashMap::new();
    for (p, d) in ready {
        let g = *group_of.entry(p.record).or_insert_with(|| {
            by_record.push(Vec::new());
            by_record.len() - 1
        });
        by_record[g].push((p, d));
    }
    let delivered: Vec<Vec<_>> = stream::iter(by_record)
        .map(|group| async move {
            let mut out = Vec::with_capacity(group.len());
            for (p, d) in group {
                let r = sink.deliver(&d).await.map_err(|e| {
                    let permanent = e.starts_with("E_SINK_ADDRESS");
                    (e, permanent)
                });
                out.push((p, r));
            }
            out
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .collect()
        .await;
    outcomes.extend(delivered.into_iter().flatten());
    for (p, result) in outcomes {
        match result {
            Ok(()) => {
                q.delivered(p.id, now).await?;
                stats.delivered += 1;
            }
            Err((e, permanent)) if permanent || p.attempts + 1 >= cfg.max_attempts => {
                tracing::warn!(
                    id = p.id,
                    attempt = p.attempts + 1,
                    "outbox message given up (dead letter): {e}"
                );
                q.mark(p.id, Mark::Dead { at: now }, &e).await?;
                metrics::counter!("leadflow_outbox_dead_total", "tenant" => q.tenant().to_string())
                    .increment(1);
                stats.failed += 1;
                stats.dead += 1;
            }
            Err((e, _)) => {
                tracing::warn!(
                    id = p.id,
                    attempt = p.attempts + 1,
                    "outbox delivery failed: {e}"
                );
                let next_attempt = cfg.next_attempt(now, p.attempts + 1);
                q.mark(p.id, Mark::Retry { next_attempt }, &e).await?;
                stats.failed += 1;
            }
        }
    }
    Ok(stats)
}

pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    join: JoinHandle<()>,
    total: Arc<std::sync::Mutex<DispatchStats>>,
    health: Arc<Health>,
}

impl DispatcherHandle {
    /// Stop, and return the counts since start, panics included (a
    /// dispatcher that panicked was restarted; one whose task died is
    /// reported with one more panic).
    pub async fn shutdown(self) -> DispatchStats {
        self.stop.send_replace(true);
        let mut died = 0;
        if let Err(e) = self.join.await {
            tracing::error!("outbox dispatcher task died: {e}");
            died = 1;
        }
        let mut total = *self.total.lock().unwrap_or_else(|e| e.into_inner());
        total.panics = self.health.panics() + died;
        total
    }

    /// The dispatcher's liveness (for `/readyz`).
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }
}

/// Run [`dispatch_once`] in a loop until shut down, supervised: a panic is
/// caught, counted and logged, and the loop starts again after a backoff
/// (its claimed messages come back when their lease ends).
pub fn spawn<Q: OutboxQueue, C: Clock>(
    q: Q,
    sink: Sink,
    templates: impl Into<Arc<Templates>>,
    cfg: DispatchConfig,
    clock: Arc<C>,
) -> DispatcherHandle {
    let (stop, rx) = watch::channel(false);
    let health = Health::new("outbox_dispatcher", q.tenant(), &cfg.restart);
    let total = Arc::new(std::sync::Mutex::new(DispatchStats::default()));
    let (sink, templates, sum) = (Arc::new(sink), templates.into(), total.clone());
    let stop_rx = rx.clone();
    let policy = cfg.restart.clone();
    let join = tokio::spawn(supervise(health.clone(), policy, rx, move |_| {
        let (q, sink, templates, cfg, clock, total, mut rx) = (
            q.clone(),
            sink.clone(),
            templates.clone(),
            cfg.clone(),
            clock.clone(),
            sum.clone(),
            stop_rx.clone(),
        );
        async move {
            while !*rx.borrow() {
                let now = clock.now();
                let idle = match dispatch_once(&q, &sink, &templates, &cfg, now).await {
                    Ok(s) => {
                        let mut t = total.lock().unwrap_or_else(|e| e.into_inner());
                        t.delivered += s.delivered;
                        t.failed += s.failed;
                        t.dead += s.dead;
                        s.delivered + s.failed < cfg.batch as u64
                    }
                    Err(e) => {
                        tracing::error!(tenant = q.tenant(), "outbox dispatcher: {e}");
                        true
                    }
                };
                if idle {
                    tokio::select! {
                        _ = clock.sleep_until(now + cfg.idle) => {}
                        _ = rx.wait_for(|s| *s) => {}
                    }
                }
            }
        }
    }));
    DispatcherHandle {
        stop,
        join,
        total,
        health,
    }
}

/// Read an outbox row's delivery state (for tests and tools).
pub async fn sqlite_row_state(
    b: &SqliteBackend,
    id: i64,
) -> Result<(i32, Option<DateTime<Utc>>, Option<String>), Error> {
    let (attempts, delivered, err): (i32, Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT attempts, delivered_at, last_error FROM outbox WHERE tenant_id = ? AND id = ?",
    )
    .bind(b.tenant())
    .bind(id)
    .fetch_one(b.pool())
    .await
    .map_err(db)?;
    Ok((attempts, delivered.map(instant), err))
}
