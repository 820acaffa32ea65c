//! `outbox`, `no_outbox`, `outbox_count`, `outbox_to`, `outbox_not_to`
//! and `outbox` tables checking a message's rendering.

use crate::backend::OutboxMessage;
use crate::scenario::model::*;

/// The outbox expectations against a record's outbox.
pub(super) fn check_outbox(
    outbox: &[OutboxMessage],
    e: &Expect,
    templates: Option<&crate::templates::TemplateSet>,
    out: &mut Vec<String>,
) {
    let sent: Vec<&str> = outbox.iter().map(|m| m.template.as_str()).collect();
    let list = || {
        if sent.is_empty() {
            "nothing".to_string()
        } else {
            sent.join(", ")
        }
    };
    for t in &e.outbox {
        if !sent.contains(&t.as_str()) {
            out.push(format!(
                "outbox: expected \"{t}\" to be sent, sent: {}",
                list()
            ));
        }
    }
    for t in &e.no_outbox {
        if sent.contains(&t.as_str()) {
            out.push(format!("no_outbox: \"{t}\" was sent"));
        }
    }
    for (t, n) in &e.outbox_count {
        let got = notifications(outbox, t).len();
        if got != *n {
            out.push(format!("outbox_count.{t}: expected {n}, got {got}"));
        }
    }
    for (t, to) in &e.outbox_to {
        match notifications(outbox, t).last() {
            None => out.push(format!("outbox_to.{t}: \"{t}\" was not sent")),
            Some(group) => {
                let got: Vec<&str> = group
                    .iter()
                    .flat_map(|m| m.recipients.iter())
                    .map(String::as_str)
                    .collect();
                let missing = to.iter().any(|r| !got.contains(&r.as_str()));
                if missing {
                    out.push(format!(
                        "outbox_to.{t}: expected recipients {to:?}, got {got:?}"
                    ));
                }
            }
        }
    }
    for m in &e.messages {
        out.extend(check_messages(outbox, m, templates));
    }
    for (t, not) in &e.outbox_not_to {
        for group in notifications(outbox, t) {
            let got: Vec<&str> = group
                .iter()
                .flat_map(|m| m.recipients.iter())
                .map(String::as_str)
                .collect();
            let wrong: Vec<&str> = not
                .iter()
                .map(String::as_str)
                .filter(|r| got.contains(r))
                .collect();
            if !wrong.is_empty() {
                out.push(format!("outbox_not_to.{t}: sent to {wrong:?}"));
            }
        }
    }
}

/// An `outbox` table: the last notification of its template, each message
/// (or the one to `to`) rendered and compared.
fn check_messages(
    outbox: &[OutboxMessage],
    m: &MessageExpect,
    templates: Option<&crate::templates::TemplateSet>,
) -> Vec<String> {
    let t = &m.template;
    let mut out = Vec::new();
    let Some(group) = notifications(outbox, t).pop() else {
        // `outbox` lists the template too: its absence is reported there.
        return out;
    };
    let got: Vec<&str> = group
        .iter()
        .flat_map(|g| g.recipients.iter())
        .map(String::as_str)
        .collect();
    for r in &m.recipients {
        if !got.contains(&r.as_str()) {
            out.push(format!(
                "outbox.{t}: expected a message to \"{r}\", sent to {got:?}"
            ));
        }
    }
    let chosen: Vec<&&OutboxMessage> = match &m.to {
        Some(to) => group.iter().filter(|g| g.recipients.contains(to)).collect(),
        None => group.iter().collect(),
    };
    if let Some(to) = &m.to {
        if chosen.is_empty() {
            out.push(format!(
                "outbox.{t}: expected a message to \"{to}\", sent to {got:?}"
            ));
            return out;
        }
    }
    let checks_text = !(m.subject_contains.is_empty()
        && m.body_contains.is_empty()
        && m.body_not_contains.is_empty()
        && m.language.is_none());
    if !checks_text {
        return out;
    }
    let Some(templates) = templates else {
        out.push(format!(
            "outbox.{t}: no templates loaded to render the message (the project's templates/)"
        ));
        return out;
    };
    for msg in chosen {
        let who = msg.recipients.join(", ");
        let Some(payload) = &msg.payload else {
            out.push(format!("outbox.{t}: the store kept no payload to render"));
            continue;
        };
        let r = match templates.render(t, payload, None) {
            Ok(r) => r,
            Err(e) => {
                out.push(format!("outbox.{t} to {who}: {e}"));
                continue;
            }
        };
        for want in &m.subject_contains {
            if !r.subject.contains(want.as_str()) {
                out.push(format!(
                    "outbox.{t} to {who}: subject {:?} does not contain {want:?}",
                    r.subject
                ));
            }
        }
        let body = match &r.html {
            Some(h) => format!("{}\n{h}", r.text),
            None => r.text.clone(),
        };
        for want in &m.body_contains {
            if !body.contains(want.as_str()) {
                out.push(format!(
                    "outbox.{t} to {who}: body does not contain {want:?}:\n{}",
                    r.text
                ));
            }
        }
        for bad in &m.body_not_contains {
            if body.contains(bad.as_str()) {
                out.push(format!("outbox.{t} to {who}: body contains {bad:?}"));
            }
        }
        if let Some(l) = &m.language {
            if &r.language != l {
                out.push(format!(
                    "outbox.{t} to {who}: rendered in {:?}, expected {l:?}",
                    r.language
                ));
            }
        }
    }
    out
}

/// The notifications of template `t` in a record's outbox, oldest first,
/// each as its messages: a `notify` writes one row per recipient, all in
/// one step, so a notification is a run of consecutive rows of `t` queued
/// by the same step (same revision and instant).
fn notifications<'a>(outbox: &'a [OutboxMessage], t: &str) -> Vec<Vec<&'a OutboxMessage>> {
    let mut groups: Vec<Vec<&OutboxMessage>> = Vec::new();
    let mut prev: Option<&OutboxMessage> = None;
    for m in outbox {
        if m.template == t {
            let same = prev.is_some_and(|p| {
                p.template == t && p.revision == m.revision && p.created_at == m.created_at
            });
            match groups.last_mut() {
                Some(g) if same => g.push(m),
                _ => groups.push(vec![m]),
            }
        }
        prev = Some(m);
    }
    groups
}
