//! Diagnostics are data: a stable code, a severity, a message, a location and a
//! fix hint. Rendering (source line and caret) happens at the CLI edge.

use serde::Serialize;
use std::ops::Range;

/// A source text with the path it was read from (for locations).
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, col)
    }

    /// The byte offset of 1-based `line`, `col`.
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let mut start = 0;
        for _ in 1..line {
            match self.text.get(start..).and_then(|s| s.find('\n')) {
                Some(i) => start += i + 1,
                None => return self.text.len(),
            }
        }
        let rest = self.text.get(start..).unwrap_or("");
        start
            + rest
                .char_indices()
                .nth(col.saturating_sub(1))
                .map_or(rest.len(), |(i, _)| i)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding of `leadflow check`.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Byte range in `file`.
    #[serde(skip)]
    pub span: Range<usize>,
    pub hint: String,
}

impl Diagnostic {
    pub fn new(
        code: &'static str,
        file: &SourceFile,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = file.line_col(span.start);
        let severity = if code.starts_with('W') {
            Severity::Warning
        } else {
            Severity::Error
        };
        Diagnostic {
            code,
            severity,
            message: message.into(),
            file: file.path.clone(),
            line,
            column,
            span,
            hint: explain(code)
                .map(|e| e.hint.to_string())
                .unwrap_or_default(),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// What a code means, for `leadflow explain` and the default hint.
pub struct Explanation {
    pub code: &'static str,
    pub title: &'static str,
    pub hint: &'static str,
}

macro_rules! codes {
    ($($code:literal => $title:literal, $hint:literal;)*) => {
        /// Every diagnostic and refusal code, with its title and fix hint.
        pub const CODES: &[Explanation] = &[$(Explanation { code: $code, title: $title, hint: $hint }),*];
    };
}

codes! {
    "E001" => "the file is not valid TOML or has a key or value of the wrong shape", "fix the syntax at the caret; `leadflow schema` lists every key";
    "E002" => "two workflows share one id", "give each workflow a unique `[workflow] id`";
    "E003" => "unknown state", "declare it as `[states.<name>]` or fix the spelling";
    "E004" => "unknown field", "declare it as `[fields.<name>]` or fix the spelling";
    "E005" => "unknown transition", "declare it as `[transitions.<name>]` or fix the spelling";
    "E006" => "unknown workflow", "spawn a workflow id that exists in the same directory";
    "E007" => "a script calls a function that does not exist", "define it in a rules module listed in `[workflow] rules`, or fix the name";
    "E008" => "a Rhai script does not compile", "fix the script syntax at the caret";
    "E009" => "a rules module cannot be found", "list files that exist under rules/, e.g. rules = [\"rules/aslm.rhai\"]";
    "E010" => "unknown calendar", "add calendars/<name>.toml or name an existing calendar";
    "E011" => "a final state is the source of a transition", "remove the state from `from`, or make it non-final";
    "E012" => "a timer fires a transition that cannot run from the timer's states", "add the timer's states to the transition's `from` and \"system\" to its `by`";
    "E013" => "a spawn maps a value into a field of another type", "map a field of a compatible type, or convert it in a Rhai expression";
    "E014" => "a field pattern is not a valid regular expression", "fix the regex; it must match the whole value";
    "E015" => "enum values are missing or misplaced", "give `values = [...]` to enum fields only";
    "E016" => "a duration cannot be read", "write a number and a unit: 30m, 2h, 60d, 24wh (working hours), 2wd (working days)";
    "E017" => "a timer is incomplete or ambiguous", "give exactly one of `after`/`at`, and `fire` or `do`";
    "E018" => "an effect is malformed", "give exactly one action key (set, append, clear, notify, assign, release, spawn, fire_linked) with what it needs";
    "E019" => "a value does not fit the field's type", "use a value or field of the declared type";
    "E020" => "a non-final state has no path to a final state", "add a transition (or a timer) leading towards a final state";
    "E021" => "the workflow has no final state", "mark at least one state `final = true`";
    "E022" => "unknown timer", "name a timer declared as `[timers.<name>]`";
    "E023" => "a script reads a field the workflow does not declare", "declare `[fields.<name>]` or fix the spelling after `lead.`";
    "E024" => "unknown recipient of a notify", "write assignee, previous_assignee, customer, a role named in `by` or `assign`, role:<role>, actor:<id>, field:<field>, list:<name> or an e-mail address";
    "E025" => "a script function is called with a number of arguments none of its definitions takes", "call it with as many arguments as its `fn` declares, or fix the `fn`";
    "E026" => "a role is named that `[workflow] roles` does not declare", "fix the spelling, or add the role to `[workflow] roles`";
    "E027" => "the result of a method that changes its value in place and returns `()` is used", "call the method as a statement of its own on a copy, then use the copy: `let s = x; s.trim(); s == \"\"`";
    "E028" => "zero-delay timers fire each other forever at one instant", "give one timer of the cycle a delay (`after = \"1m\"`), a guard on the transition it fires, or drop its `rearm`";
    "E029" => "workflows spawn each other on every creation, without end", "make one spawn of the cycle conditional (`when = \"...\"`), move it to a transition, or schedule it with `at`";
    "E030" => "a script compares or computes values of types that cannot go together", "compare a value with one of its own type: a string field with \"50000\", a number with 50000 (or convert: `lead.postal_code.parse_int()`)";
    "E031" => "a KPI or report declaration is invalid: an unknown state, field or transition, a field of the wrong type, or forms mixed", "name states, fields and transitions the workflow declares; give one measure (hits, start/stop with within, funnel) or the Rhai of/hit; docs/kpis.md";
    "E032" => "a report's `every` is not a schedule", "write day, week, month, quarter, year, `daily 09:00`, `monday 09:00` or `day 1 of month` (1 to 28, optionally `at 09:00`); docs/kpis.md#schedules";
    "E036" => "a dotted name in `by`, `visible_to`, `reveal_to` or a notify's `to` is no relation", "write a role, `assignee.manager` (the assignee's managers) or `area.<role>` (the actors of the role responsible for the record's area)";
    "E037" => "an `area.<role>` relation without a usable `[workflow] area`", "declare the field holding a record's area, a string or enum field: [workflow] area = \"zone\"";
    "E038" => "a queue's `order` key names no field or column, or cannot order", "write `due:<datetime field>`, `<field>` or `-<field>` (also created_at, updated_at, entered_at, id)";
    "E039" => "a queue's `calling_hours` is not a window", "write \"HH:MM-HH:MM\" (24:00 for midnight), start before end: calling_hours = \"09:00-20:00\"";
    "E040" => "a queue's `max_attempts` names no int field or a max below 1", "max_attempts = { field = \"call_attempts\", max = 5 } with an int field";
    "E041" => "a queue's `lease` is not between 1 minute and 24 hours", "write minutes or hours: lease = \"5m\"";
    "E050" => "a calendar file is not valid", "fix the calendar file at the caret";
    "E051" => "unknown time zone", "use an IANA name such as Europe/Rome";
    "E052" => "bad working-hours range", "write ranges as \"09:00-13:00\", increasing, not overlapping";
    "E053" => "bad holiday entry", "give exactly one of date = \"MM-DD\", easter = N, on = \"YYYY-MM-DD\"";
    "E060" => "a project file is over a size limit of the tenant", "split the workflow or shorten the text; or raise the tenant's `limits` in leadflow.toml";
    "E070" => "a notify has no template", "add templates/<workflow>/<id>.<lang>.txt (or templates/<id>.<lang>.txt) with a first line `Subject: ...`, or fix the notify's name";
    "E071" => "a message template does not compile or does not render (syntax, unknown filter or function, a filter given a value of the wrong type)", "fix the template at the caret; filters: date, datetime, time, longdate, money, list, label and MiniJinja's own";
    "E072" => "a message template uses a variable a message does not have", "use lead.<field> (a field of the workflow), record, state, state_title, assignee, recipient.name, lang, ...";
    "E073" => "a message template shows a pii field to a recipient who may not see it in that state", "leave the field out, send it to the assignee from a state in its `reveal_in`, or guard it with `{% if lead.<field> is defined %}`";
    "E074" => "a message template's action_url names no transition of the workflow", "write action_url(\"<transition>\") with a transition of the workflow, quoted";
    "E075" => "a message template with action links is sent to a recipient who cannot act (a customer, an address, a list)", "send it to actors only (assignee, a role, actor:<id>), or move the links to a template for them";
    "E080" => "`search = true` on a field that is not a string", "search only string, text and enum fields; drop `search` from the others";
    "W001" => "a state cannot be reached from the initial state", "add a transition into it, or remove it";
    "W002" => "nobody can fire a transition", "list the roles that may fire it in `by`";
    "W003" => "a pii field is never revealed", "list the states where the assignee may see it in `reveal_in`";
    "W004" => "`customer` has no e-mail address", "map the field holding it: `[customer] email = \"email\"`";
    "W005" => "a role looks like a misspelling of another role", "fix the spelling; declare the roles with `[workflow] roles` to have every role checked";
    "W006" => "a scheduled report's `notify` reaches nobody: it is not grouped by assignee", "add \"assignee\" to the report's `group_by` (each assignee gets their own line), or drop `notify`";
    "W080" => "a view filters or sorts on a field that is not indexed", "declare `indexed = true` on the field, so the store keeps an index for the view (docs/api.md, Lists and views)";
    "W081" => "a view's filter cannot run as a store query", "write it as comparisons of `lead.<field>` with a value, `()`, `now` (+ days(n)) or `actor.id`, joined by && and ||; `GET /v1/views` cannot serve it otherwise";
    "W082" => "a queue's filter cannot run as a store query", "write it as a view's filter may be written: comparisons of `lead.<field>` with a value, `()`, `now` (+ days(n)) or `actor.id`, joined by && and ||; POST /v1/queues/{workflow}/{queue}/next answers E_QUEUE_FILTER otherwise";
    "W090" => "a KPI or report is anchored on a datetime field that is not indexed", "declare `indexed = true` on the anchor field, so a KPI over a period reads only that period's records (docs/kpis.md)";
    "W070" => "a message template is not used by any notify", "remove it, or fix its name: templates/<workflow>/<id>.<lang>.txt where a notify says `notify = \"<id>\"`";
    "W071" => "a message template's action link is for a transition not enabled where the message is sent", "link a transition enabled from the state the notify sends the message from, or drop the link";
    "E_UNKNOWN_TRANSITION" => "the workflow has no transition of that name", "call one of the transitions the record offers";
    "E_UNKNOWN_TIMER" => "the workflow has no timer of that name", "name a timer of the record's workflow";
    "E_NOT_ENABLED" => "the transition cannot be fired from the record's current state", "fire one of the transitions enabled in this state";
    "E_FINAL" => "the record is in a final state and accepts no change", "create a new record instead";
    "E_FORBIDDEN" => "the caller's role may not fire this transition", "fire it as one of the roles in its `by` list";
    "E_INPUT" => "the input sets a field this transition does not accept", "send only the fields listed in the transition's `input`";
    "E_TYPE" => "a value does not fit its field (type, pattern, enum, date, decimal)", "send a value of the field's declared type";
    "E_REQUIRED" => "a required field is empty", "give every field in the transition's `require` list";
    "E_GUARD" => "the transition's guard refused", "meet the condition the guard's message states";
    "E_SCRIPT" => "a script failed or exceeded its limits", "fix the rule script; it must not loop or fail";
    "E_NO_CANDIDATE" => "no actor could be assigned", "add available actors of the role to the directory";
}

pub fn explain(code: &str) -> Option<&'static Explanation> {
    CODES.iter().find(|e| e.code.eq_ignore_ascii_case(code))
}

/// Narrow `span` to where `needle` (usually a quoted name) appears inside it,
/// so a diagnostic about one element of an array points at that element.
pub fn refine(text: &str, span: &Range<usize>, needle: &str) -> Range<usize> {
    let quoted = format!("\"{needle}\"");
    text.get(span.clone())
        .and_then(|s| s.find(&quoted).map(|i| i + 1).or_else(|| s.find(needle)))
        .map(|i| span.start + i..span.start + i + needle.len())
        .unwrap_or_else(|| span.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new("x.toml", "a = 1\nbè = \"c\"\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(6), (2, 1));
        assert_eq!(f.line_col(12), (2, 6));
        assert_eq!(f.offset_of(2, 6), 12);
    }

    #[test]
    fn every_code_is_explained_once() {
        let mut seen = std::collections::HashSet::new();
        for e in CODES {
            assert!(seen.insert(e.code), "duplicate {}", e.code);
            assert!(!e.hint.is_empty());
        }
    }
}
