//! Who a workflow names: the `[customer]` mapping, the recipients of a
//! `notify`, relations (`assignee.manager`, `area.<role>`) and the checks
//! of roles (E026, W005).

use super::{strsim, Names, Resolver};
use crate::diag::{refine, Diagnostic};
use crate::model::{Customer, Recipient};
use crate::raw::{RawCustomer, RawRecipient};
use crate::script::Scripts;
use crate::value::FieldType;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

impl Resolver<'_> {
    /// The `[customer]` mapping: fields that exist, of a fitting type.
    pub(super) fn customer(&mut self, raw: Option<&RawCustomer>, names: &Names) -> Customer {
        let Some(raw) = raw else {
            // Without the table: the field `email`, if any (older projects).
            let email =
                names.fields.get("email").copied().filter(|&f| {
                    matches!(names.field_types[f], FieldType::String | FieldType::Text)
                });
            return Customer {
                email,
                ..Customer::default()
            };
        };
        let one = |this: &mut Self, s: &Spanned<String>, what: &str| {
            let f = this.field(s, names)?;
            let ty = names.field_types[f];
            if !matches!(ty, FieldType::String | FieldType::Text | FieldType::Enum) {
                this.err(
                    "E019",
                    s.span(),
                    format!(
                        "`[customer] {what}` needs a string field; `{}` is {}",
                        s.get_ref(),
                        ty.name()
                    ),
                );
                return None;
            }
            Some(f)
        };
        Customer {
            email: raw.email.as_ref().and_then(|s| one(self, s, "email")),
            name: raw
                .name
                .iter()
                .filter_map(|s| one(self, s, "name"))
                .collect(),
            language: raw.language.as_ref().and_then(|s| one(self, s, "language")),
            reveal: raw
                .reveal
                .iter()
                .filter_map(|s| self.field(s, names))
                .collect(),
        }
    }

    /// One recipient of a `notify` (see [`RawEffect::to`]); E024 for a form
    /// or a role this workflow cannot have.
    ///
    /// [`RawEffect::to`]: crate::raw::RawEffect::to
    pub(super) fn recipient(
        &mut self,
        r: &RawRecipient,
        span: &Range<usize>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<Recipient> {
        let name = match r {
            RawRecipient::Role(x) => {
                let filter = x.filter.as_ref().and_then(|w| {
                    let at = refine(&self.file.text, span, w);
                    self.script_at(w, at.start.saturating_sub(1)..at.end + 1, names, scripts)
                });
                if x.role.is_empty() {
                    self.err("E024", span.clone(), "`role` of a recipient is empty");
                    return None;
                }
                self.role_uses
                    .push((x.role.clone(), refine(&self.file.text, span, &x.role)));
                return Some(Recipient::Role {
                    role: x.role.clone(),
                    filter,
                });
            }
            RawRecipient::Name(n) => n.as_str(),
        };
        let at = refine(&self.file.text, span, name);
        match name {
            "assignee" => return Some(Recipient::Assignee),
            "previous_assignee" => return Some(Recipient::PreviousAssignee),
            "assignee.manager" => return Some(Recipient::AssigneeManager),
            "customer" => {
                if !self.customer_email {
                    self.diags.push(
                        Diagnostic::new(
                            "W004",
                            self.file,
                            at,
                            "`customer` has no e-mail address in this workflow: no message will reach it",
                        )
                        .hint("map the field holding it: [customer] email = \"email\""),
                    );
                }
                return Some(Recipient::Customer);
            }
            _ => {}
        }
        if name.contains('@') {
            let ok = name.split_once('@').is_some_and(|(u, d)| {
                !u.is_empty() && d.contains('.') && !name.chars().any(char::is_whitespace)
            });
            if !ok {
                return self.bad_recipient(
                    &at,
                    format!("`{name}` is not an e-mail address"),
                    "write an address such as ops@example.com".into(),
                );
            }
            return Some(Recipient::Address(name.to_string()));
        }
        if crate::org::Relation::is_relation(name) {
            return self.recipient_relation(name, &at);
        }
        if let Some((kind, rest)) = name.split_once(':') {
            return self.recipient_form(name, kind, rest, &at, names);
        }
        if self.roles.iter().any(|r| r == name) {
            return Some(Recipient::Role {
                role: name.to_string(),
                filter: None,
            });
        }
        self.unknown_recipient(name, &at)
    }

    /// E024 at `at`, for a recipient this workflow cannot have.
    fn bad_recipient(&mut self, at: &Range<usize>, msg: String, hint: String) -> Option<Recipient> {
        self.diags
            .push(Diagnostic::new("E024", self.file, at.clone(), msg).hint(hint));
        None
    }

    /// A relation as a recipient: `area.<role>` needs `[workflow] area`
    /// (E037); a name that is no relation is E036.
    fn recipient_relation(&mut self, name: &str, at: &Range<usize>) -> Option<Recipient> {
        use crate::org::Relation;
        match Relation::parse(name) {
            Ok(Relation::Area(role)) if self.area.is_some() => {
                self.role_uses.push((role.clone(), at.clone()));
                Some(Recipient::Area(role))
            }
            Ok(Relation::Area(_)) => {
                self.diags.push(
                    Diagnostic::new(
                        "E037",
                        self.file,
                        at.clone(),
                        format!("`{name}` needs the record's area, and the workflow declares no `[workflow] area`"),
                    )
                    .hint("name the field holding the area: [workflow] area = \"zone\""),
                );
                None
            }
            Ok(_) => None,
            Err(msg) => {
                self.diags.push(Diagnostic::new("E036", self.file, at.clone(), msg).hint(
                    "relations: `assignee.manager` (the assignee's managers), `area.<role>` (the actors of the role responsible for the record's area)",
                ));
                None
            }
        }
    }

    /// A recipient written `<kind>:<rest>`: `role:`, `actor:`, `list:` or
    /// `field:` (a string field holding an address, or an actor field).
    fn recipient_form(
        &mut self,
        name: &str,
        kind: &str,
        rest: &str,
        at: &Range<usize>,
        names: &Names,
    ) -> Option<Recipient> {
        if rest.is_empty() {
            return self.bad_recipient(
                at,
                format!("recipient `{name}` names nothing after `{kind}:`"),
                format!("write `{kind}:<name>`"),
            );
        }
        if kind == "role" {
            self.role_uses.push((rest.to_string(), at.clone()));
        }
        match kind {
            "role" => Some(Recipient::Role {
                role: rest.to_string(),
                filter: None,
            }),
            "actor" => Some(Recipient::Actor(rest.to_string())),
            "list" => Some(Recipient::List(rest.to_string())),
            "field" => match names.fields.get(rest) {
                None => {
                    let hint = Self::did_you_mean(rest, names.fields.keys());
                    self.bad_recipient(at, format!("recipient `{name}`: the workflow has no field `{rest}`"), hint)
                }
                Some(&f) => match names.field_types[f] {
                    FieldType::String | FieldType::Text | FieldType::Actor => {
                        Some(Recipient::Field(f))
                    }
                    ty => self.bad_recipient(
                        at,
                        format!(
                            "recipient `{name}`: `{rest}` is {}, not an address or an actor",
                            ty.name()
                        ),
                        "name a string field holding an e-mail address, or an actor field".into(),
                    ),
                },
            },
            _ => self.bad_recipient(
                at,
                format!("unknown recipient form `{kind}:`"),
                "recipient forms: assignee, previous_assignee, customer, a role, role:<role>, actor:<id>, field:<field>, list:<name>, an e-mail address".into(),
            ),
        }
    }

    /// A bare name that is no role of this workflow: E024, with the closest
    /// name or the roles the workflow has.
    fn unknown_recipient(&mut self, name: &str, at: &Range<usize>) -> Option<Recipient> {
        let known: Vec<String> = ["assignee", "previous_assignee", "customer"]
            .iter()
            .map(|s| s.to_string())
            .chain(self.roles.iter().cloned())
            .collect();
        let close = Self::did_you_mean(name, known.iter());
        let hint = if close.starts_with("did you mean") {
            close
        } else {
            format!(
                "roles of this workflow: {}; a role that only receives messages is written `role:{name}`, an actor `actor:{name}`",
                if self.roles.is_empty() { "none".to_string() } else { self.roles.join(", ") }
            )
        };
        let why = if self.declared_roles.is_some() {
            "`[workflow] roles` does not declare this role"
        } else {
            "no transition's `by` nor any `assign` names this role"
        };
        self.bad_recipient(at, format!("unknown recipient `{name}`: {why}"), hint)
    }

    /// Relations as written in `by`, `visible_to`, `reveal_to` (roles,
    /// `assignee.manager`, `area.<role>`): E036 for a dotted name that is
    /// none, E037 for `area.<role>` without `[workflow] area`; roles are
    /// checked with the others (E026).
    pub(super) fn relations(
        &mut self,
        list: &[Spanned<String>],
        has_area: bool,
    ) -> Vec<crate::org::Relation> {
        use crate::org::Relation;
        let mut out = Vec::new();
        for item in list {
            let at = refine(&self.file.text, &item.span(), item.get_ref());
            match Relation::parse(item.get_ref()) {
                Err(msg) => self.diags.push(
                    Diagnostic::new("E036", self.file, at, msg).hint(
                        "relations: a role, `assignee.manager` (the assignee's managers), `area.<role>` (the actors of the role responsible for the record's area)",
                    ),
                ),
                Ok(rel) => {
                    if let Relation::Area(_) = rel {
                        if !has_area {
                            self.diags.push(
                                Diagnostic::new(
                                    "E037",
                                    self.file,
                                    at.clone(),
                                    format!("`{}` needs the record's area, and the workflow declares no `[workflow] area`", item.get_ref()),
                                )
                                .hint("name the field holding the area: [workflow] area = \"zone\""),
                            );
                        }
                    }
                    if let Some(role) = rel.role() {
                        if role != "system" && role != "*" {
                            self.role_uses.push((role.to_string(), at));
                        }
                    }
                    out.push(rel);
                }
            }
        }
        out
    }

    /// Roles named where the workflow declares none of them (E026), or,
    /// without `[workflow] roles`, a role named less often than a role of
    /// nearly the same spelling (W005: a typo such as `salse` leaves records
    /// unassigned and transitions unfireable at run time).
    pub(super) fn check_roles(&mut self) {
        let uses = std::mem::take(&mut self.role_uses);
        if let Some(declared) = self.declared_roles.clone() {
            for (role, span) in uses {
                if !declared.contains(&role) {
                    let hint = Self::did_you_mean(&role, declared.iter());
                    self.diags.push(
                        Diagnostic::new(
                            "E026",
                            self.file,
                            span,
                            format!(
                                "unknown role `{role}`: `[workflow] roles` does not declare it"
                            ),
                        )
                        .hint(format!("{hint} (or add \"{role}\" to `[workflow] roles`)")),
                    );
                }
            }
            return;
        }
        let mut count: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (i, (role, _)) in uses.iter().enumerate() {
            count.entry(role.as_str()).or_insert((0, i)).0 += 1;
        }
        for (&a, &(na, first_a)) in &count {
            let near = count.iter().find(|(&b, &(nb, first_b))| {
                b != a
                    && a.chars().count().min(b.chars().count()) >= 4
                    && strsim(a, b) <= 2
                    && (na < nb || (na == nb && first_a > first_b))
            });
            if let Some((b, (nb, _))) = near {
                let (role, span) = &uses[first_a];
                self.diags.push(
                    Diagnostic::new(
                        "W005",
                        self.file,
                        span.clone(),
                        format!(
                            "role `{role}` is named {} and looks like `{b}` (named {}): a typo?",
                            times(na),
                            times(*nb)
                        ),
                    )
                    .hint(
                        "fix the spelling; declare the roles with `[workflow] roles = [...]` to have every role checked",
                    ),
                );
            }
        }
    }
}

fn times(n: usize) -> String {
    match n {
        1 => "once".to_string(),
        2 => "twice".to_string(),
        n => format!("{n} times"),
    }
}
