//! The search backfill's bookkeeping, written once for both dialects
//! (`search_backfill`: per tenant and workflow, the next id to do and the
//! last). What differs is how a batch's words are computed: PostgreSQL
//! rewrites `records.search_doc`, SQLite replaces rows of `search_docs`.

use super::Backfill;
use crate::backend::Error;
use crate::sql::conn::{Cells, Conn, P};

/// Mark the records of `workflows` as pending: their words are computed
/// again from id 1 to the tenant's highest id now (records written later
/// get theirs from the triggers).
pub(crate) async fn mark(
    c: &mut impl Conn,
    tenant: &str,
    workflows: &[String],
) -> Result<(), Error> {
    for wf in workflows {
        c.exec(
            "INSERT INTO search_backfill (tenant_id, workflow, next_id, upto)
             SELECT $1, $2, 0, max(id) FROM records WHERE tenant_id = $1 HAVING max(id) IS NOT NULL
             ON CONFLICT (tenant_id, workflow) DO UPDATE SET next_id = 0, upto = excluded.upto",
            &[P::Text(tenant), P::Text(wf)],
        )
        .await?;
    }
    Ok(())
}

/// One batch, inside the caller's transaction: take the oldest pending
/// backfill (`lock`: the dialect's clause, `FOR UPDATE SKIP LOCKED` on
/// PostgreSQL so that two daemons share the work), run the dialect's
/// `words` statements on its next ids (args: tenant, workflow, after id,
/// up to id), and record the progress. `None`: nothing pending.
pub(crate) async fn batch(
    c: &mut impl Conn,
    tenant: &str,
    size: i64,
    lock: &str,
    words: &[&str],
) -> Result<Option<Backfill>, Error> {
    let take = format!(
        "SELECT workflow, next_id, upto FROM search_backfill WHERE tenant_id = $1 \
         ORDER BY workflow LIMIT 1{lock}"
    );
    let Some(row) = c.row(&take, &[P::Text(tenant)]).await? else {
        return Ok(None);
    };
    let (workflow, next_id, upto) = (row.text(0)?, row.int(1)?, row.int(2)?);
    let to = next_id.saturating_add(size.max(1)).min(upto);
    let args = [
        P::Text(tenant),
        P::Text(&workflow),
        P::Int(next_id),
        P::Int(to),
    ];
    for w in words {
        c.exec(w, &args).await?;
    }
    if to >= upto {
        c.exec(
            "DELETE FROM search_backfill WHERE tenant_id = $1 AND workflow = $2",
            &args[..2],
        )
        .await?;
    } else {
        c.exec(
            "UPDATE search_backfill SET next_id = $3 WHERE tenant_id = $1 AND workflow = $2",
            &[P::Text(tenant), P::Text(&workflow), P::Int(to)],
        )
        .await?;
    }
    Ok(Some(Backfill {
        workflow,
        done: to,
        upto,
    }))
}
