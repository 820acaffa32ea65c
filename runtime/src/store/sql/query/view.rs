//! A view's Rhai `filter` as a store query: the comparisons views are
//! written with (`lead.zone == "nord"`, `lead.attempts >= 1`,
//! `lead.close_reason != ()`, `lead.next_action_at < now + days(7)`,
//! `lead.assignee == actor.id`), joined by `&&` and `||`, with parentheses.
//! Anything else is refused with the reason: the view is then not served
//! (`leadflow check` says so, W081) rather than evaluated record by record.
//!
//! Semantics follow the engine's: a missing value is `()`, so
//! `lead.x == "a"` is false and `lead.x != "a"` true for a record without
//! `x`; `!= ()` reads as "not empty" (a missing value, `""` or `[]`).

use super::{Column, Cond, Filter, Key, Kind, Lit, Op};
use chrono::{DateTime, Duration, Utc};
use leadflow_engine::Workflow;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Unit,
    Op(&'static str),
    LParen,
    RParen,
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '(' && cs.get(i + 1) == Some(&')') {
            out.push(Tok::Unit);
            i += 2;
            continue;
        }
        if c == '(' || c == ')' {
            out.push(if c == '(' { Tok::LParen } else { Tok::RParen });
            i += 1;
            continue;
        }
        if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match cs.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('"') => break,
                    Some('\\') => {
                        match cs.get(i + 1) {
                            Some(e @ ('"' | '\\')) => s.push(*e),
                            _ => return Err("string escapes other than \\\" and \\\\".into()),
                        }
                        i += 1;
                    }
                    Some(ch) => s.push(*ch),
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.' || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Num(
                cs[start..i].iter().filter(|c| **c != '_').collect(),
            ));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_' || cs[i] == '.') {
                i += 1;
            }
            out.push(Tok::Ident(cs[start..i].iter().collect()));
            continue;
        }
        let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
        let op = ["==", "!=", "<=", ">=", "&&", "||"]
            .into_iter()
            .find(|o| *o == two)
            .or_else(|| ["<", ">", "+", "-"].into_iter().find(|o| o.starts_with(c)));
        match op {
            Some(o) => {
                i += o.len();
                out.push(Tok::Op(o));
            }
            None => return Err(format!("`{c}`")),
        }
    }
    Ok(out)
}

/// A value side of a comparison, before typing.
enum Operand {
    Key(Key),
    Unit,
    Str(String),
    Num(String),
    Bool(bool),
    Instant(DateTime<Utc>),
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    wf: &'a Workflow,
    now: DateTime<Utc>,
    viewer: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Op("||")) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::Any(parts)
        })
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.atom()?];
        while self.peek() == Some(&Tok::Op("&&")) {
            self.pos += 1;
            parts.push(self.atom()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::All(parts)
        })
    }

    fn atom(&mut self) -> Result<Filter, String> {
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let f = self.or()?;
            return match self.next() {
                Some(Tok::RParen) => Ok(f),
                _ => Err("an unclosed parenthesis".into()),
            };
        }
        let left = self.operand()?;
        let op = match self.next() {
            Some(Tok::Op(o @ ("==" | "!=" | "<" | "<=" | ">" | ">="))) => o,
            _ => {
                return Err(
                    "a comparison (==, !=, <, <=, >, >=) between a field and a value".into(),
                )
            }
        };
        let right = self.operand()?;
        let (key, lit, op) = match (left, right) {
            (Operand::Key(k), v) => (k, v, op),
            (v, Operand::Key(k)) => (
                k,
                v,
                match op {
                    "<" => ">",
                    "<=" => ">=",
                    ">" => "<",
                    ">=" => "<=",
                    o => o,
                },
            ),
            _ => return Err("a comparison without a field".into()),
        };
        self.cond(key, op, lit).map(Filter::Cond)
    }

    fn cond(&self, key: Key, op: &str, v: Operand) -> Result<Cond, String> {
        let kind = key.kind();
        let lit = match v {
            Operand::Unit => {
                return match op {
                    "==" => Ok(Cond { key, op: Op::Empty }),
                    "!=" => Ok(Cond {
                        key,
                        op: Op::NotEmpty,
                    }),
                    _ => Err("an ordering against ()".into()),
                }
            }
            Operand::Key(_) => return Err("a comparison of two fields".into()),
            Operand::Str(s) => Lit::parse(kind, &s)?,
            Operand::Num(n) => Lit::parse(kind, &n)?,
            Operand::Bool(b) => Lit::parse(kind, &b.to_string())?,
            Operand::Instant(t) => match kind {
                Kind::DateTime => Lit::Instant(t),
                Kind::Date => Lit::Date(t.date_naive()),
                _ => return Err("`now` compared with a field that is not a date".into()),
            },
        };
        let op = match op {
            "==" => Op::In(vec![lit]),
            "!=" => Op::Ne(lit),
            "<" => Op::Lt(lit),
            "<=" => Op::Lte(lit),
            ">" => Op::Gt(lit),
            _ => Op::Gte(lit),
        };
        if !matches!(op, Op::In(_) | Op::Ne(_)) && !kind.ops().contains(&"lt") {
            return Err(format!("an ordering of a {} value", kind.name()));
        }
        Ok(Cond { key, op })
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.next() {
            Some(Tok::Unit) => Ok(Operand::Unit),
            Some(Tok::Str(s)) => Ok(Operand::Str(s)),
            Some(Tok::Num(n)) => Ok(Operand::Num(n)),
            Some(Tok::Op("-")) => match self.next() {
                Some(Tok::Num(n)) => Ok(Operand::Num(format!("-{n}"))),
                _ => Err("`-` before something other than a number".into()),
            },
            Some(Tok::Ident(id)) => match id.as_str() {
                "true" => Ok(Operand::Bool(true)),
                "false" => Ok(Operand::Bool(false)),
                "actor.id" => Ok(Operand::Str(self.viewer.to_string())),
                "now" => self.now_offset(),
                _ => match id.strip_prefix("lead.") {
                    Some(name) => self.key(name).map(Operand::Key),
                    None => Err(format!("`{id}`")),
                },
            },
            Some(t) => Err(format!("{t:?}")),
            None => Err("an incomplete comparison".into()),
        }
    }

    fn now_offset(&mut self) -> Result<Operand, String> {
        let sign = match self.peek() {
            Some(Tok::Op("+")) => 1,
            Some(Tok::Op("-")) => -1,
            _ => return Ok(Operand::Instant(self.now)),
        };
        self.pos += 1;
        let unit = match self.next() {
            Some(Tok::Ident(u)) => u,
            _ => return Err("`now +` without days(n), hours(n) or minutes(n)".into()),
        };
        let n: i64 = match (self.next(), self.next(), self.next()) {
            (Some(Tok::LParen), Some(Tok::Num(n)), Some(Tok::RParen)) => n
                .parse()
                .map_err(|_| format!("`{n}` is not a whole number"))?,
            _ => return Err(format!("`{unit}` without (n)")),
        };
        let d = match unit.as_str() {
            "days" => Duration::try_days(n),
            "hours" => Duration::try_hours(n),
            "minutes" => Duration::try_minutes(n),
            other => return Err(format!("`{other}(..)` (days, hours, minutes)")),
        }
        .ok_or("an offset out of range")?;
        Ok(Operand::Instant(self.now + d * sign))
    }

    fn key(&self, name: &str) -> Result<Key, String> {
        if let Some(f) = self.wf.field(name) {
            return Ok(Key::Field {
                name: name.to_string(),
                kind: Kind::of(self.wf.fields[f].ty),
            });
        }
        match name {
            "assignee" => Ok(Key::Column(Column::Assignee)),
            "state" => Ok(Key::Column(Column::State)),
            _ => Err(format!("`lead.{name}` (not a field)")),
        }
    }
}

/// The field names a filter reads, in order, each once.
pub fn fields_of(f: &Filter) -> Vec<String> {
    fn walk(f: &Filter, out: &mut Vec<String>) {
        match f {
            Filter::Cond(c) => {
                if let Key::Field { name, .. } = &c.key {
                    if !out.contains(name) {
                        out.push(name.clone());
                    }
                }
            }
            Filter::All(fs) | Filter::Any(fs) => fs.iter().for_each(|f| walk(f, out)),
        }
    }
    let mut out = Vec::new();
    walk(f, &mut out);
    out
}

/// The filter of a view's Rhai source, for a viewer at `now`; `Err` names
/// what cannot be run by the store.
pub fn translate(
    wf: &Workflow,
    source: &str,
    now: DateTime<Utc>,
    viewer: &str,
) -> Result<Filter, String> {
    let toks = lex(source).map_err(|e| format!("the filter uses {e}"))?;
    let mut p = Parser {
        toks,
        pos: 0,
        wf,
        now,
        viewer,
    };
    let f = p.or().map_err(|e| format!("the filter uses {e}"))?;
    if p.pos < p.toks.len() {
        return Err("the filter has more after its end".into());
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_engine::load::{load, Project};
    use leadflow_engine::SourceFile;

    fn shipped() -> Vec<std::sync::Arc<Workflow>> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |dir: &str| -> Vec<SourceFile> {
            let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            files
                .into_iter()
                .map(|p| {
                    let name = format!("{dir}/{}", p.file_name().unwrap().to_string_lossy());
                    SourceFile::new(&name, std::fs::read_to_string(&p).unwrap())
                })
                .collect()
        };
        let loaded = load(&Project {
            workflows: read("workflows"),
            rules: read("rules"),
            calendars: read("calendars"),
        });
        loaded.set.workflows.into_values().collect()
    }

    #[test]
    fn the_shipped_view_filters_translate() {
        let now: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        let mut n = 0;
        for wf in shipped() {
            for v in &wf.views {
                if let Some(src) = &v.filter_source {
                    translate(&wf, src, now, "op-1")
                        .unwrap_or_else(|e| panic!("{}.{}: {e}", wf.id, v.name));
                    n += 1;
                }
            }
        }
        assert!(n >= 10, "{n} view filters");
    }

    #[test]
    fn filters_type_their_values_and_refuse_what_the_store_cannot_run() {
        let wfs = shipped();
        let wf = wfs.iter().find(|w| w.id == "oplead_project").unwrap();
        let now: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        let f = translate(
            wf,
            "lead.next_action_at != () && lead.next_action_at < now + days(7)",
            now,
            "x",
        )
        .unwrap();
        let Filter::All(parts) = f else {
            panic!("{f:?}")
        };
        assert_eq!(
            parts[1],
            Filter::Cond(Cond {
                key: Key::Field {
                    name: "next_action_at".into(),
                    kind: Kind::DateTime
                },
                op: Op::Lt(Lit::Instant("2026-06-08T00:00:00Z".parse().unwrap())),
            })
        );
        let f = translate(wf, "(lead.assignee == actor.id)", now, "exp-1").unwrap();
        assert_eq!(
            f,
            Filter::Cond(Cond {
                key: Key::Column(Column::Assignee),
                op: Op::In(vec![Lit::Text("exp-1".into())]),
            })
        );
        for bad in [
            "rules::covers(actor, lead)",
            "lead.town.len() > 3",
            "lead.nope == 1",
            "!lead.survey_sent",
            "lead.town == ",
            "lead.town < \"a\"",
        ] {
            assert!(translate(wf, bad, now, "x").is_err(), "{bad}");
        }
    }
}
