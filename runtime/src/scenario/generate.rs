//! A large generated ASLM scenario, for the replay benchmark
//! (`docs/benchmarks.md`, "Scenario replay").
//!
//! Every lead follows the same story, started at staggered instants over the
//! first 275 days of a simulated year: created, a contact attempt after 1 h,
//! an appointment in 3 days with e-mails on (after 2 h), then rescheduled 8
//! times, each time 12 h before the appointment, to 3 days later. Each
//! appointment's 24 h reminder fires (9 firings), and the last appointment's
//! 60-day lost-sale timer fires (1 more): 10 timer firings per lead, 11 steps.

use super::model::*;
use chrono::{DateTime, Duration, Utc};
use leadflow_engine::{Actor, SourceFile};
use std::fmt::Write;

/// Reschedules per lead (each adds a reminder firing).
const RESCHEDULES: i64 = 8;
const DEALERS: usize = 5;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub leads: usize,
    pub start: DateTime<Utc>,
}

/// One action of one lead at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    Create,
    Attempt,
    /// Make (0) or reschedule (k) the appointment, due `at`.
    Appointment(i64),
}

impl Plan {
    pub fn new(leads: usize) -> Plan {
        Plan {
            leads,
            start: DateTime::parse_from_rfc3339("2023-01-02T09:00:00+01:00")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        }
    }

    /// Timer firings the replay must report.
    pub fn expected_firings(&self) -> usize {
        self.leads * (RESCHEDULES as usize + 2)
    }

    fn created(&self, i: usize) -> DateTime<Utc> {
        let spread = Duration::days(275).num_seconds() as f64;
        self.start + Duration::seconds((spread * i as f64 / self.leads.max(1) as f64) as i64)
    }

    fn appointment(&self, i: usize, k: i64) -> DateTime<Utc> {
        self.created(i) + Duration::days(3 * (k + 1))
    }

    /// Every action, in time order.
    fn events(&self) -> Vec<(DateTime<Utc>, usize, Act)> {
        let mut ev = Vec::with_capacity(self.leads * (RESCHEDULES as usize + 3));
        for i in 0..self.leads {
            let t0 = self.created(i);
            ev.push((t0, i, Act::Create));
            ev.push((t0 + Duration::hours(1), i, Act::Attempt));
            ev.push((t0 + Duration::hours(2), i, Act::Appointment(0)));
            for k in 1..=RESCHEDULES {
                ev.push((
                    self.appointment(i, k - 1) - Duration::hours(12),
                    i,
                    Act::Appointment(k),
                ));
            }
        }
        ev.sort();
        ev
    }

    fn actors() -> Vec<Actor> {
        (0..DEALERS)
            .map(|d| Actor {
                id: format!("dealer-{d}"),
                role: "dealer".into(),
                zones: vec![format!("P{d}")],
                ..Actor::default()
            })
            .collect()
    }

    /// The scenario, built directly (no TOML to parse). `project` is the
    /// project root holding `workflows/aslm.toml`.
    pub fn scenario(&self, project: &str) -> Scenario {
        let wf = Located::new("aslm".to_string(), 0..0);
        let mut steps = Vec::new();
        let mut now = self.start;
        for (t, i, act) in self.events() {
            let mut step = Step {
                line: steps.len() + 1,
                ..Step::default()
            };
            if t > now {
                step.advance = Some(Advance::To(t));
                now = t;
            }
            let name = format!("L{i}");
            let dealer = format!("dealer-{}", i % DEALERS);
            match act {
                Act::Create => {
                    step.create = Some(Create {
                        name: Some(name),
                        workflow: wf.clone(),
                        fields: vec![
                            (
                                "first_name".into(),
                                toml::Value::String(format!("Cliente {i}")),
                            ),
                            (
                                "province".into(),
                                toml::Value::String(format!("P{}", i % DEALERS)),
                            ),
                        ],
                        by: Some(dealer),
                    })
                }
                Act::Attempt => {
                    step.fire = Some(Fire {
                        record: RecordRef::parse(&name),
                        transition: "log_contact_attempt".into(),
                        by: Some(dealer),
                        input: Vec::new(),
                    })
                }
                Act::Appointment(k) => {
                    let mut input = vec![(
                        "appointment_at".to_string(),
                        toml::Value::String(self.appointment(i, k).to_rfc3339()),
                    )];
                    if k == 0 {
                        input.push(("send_email".into(), toml::Value::Boolean(true)));
                    }
                    step.fire = Some(Fire {
                        record: RecordRef::parse(&name),
                        transition: "make_appointment".into(),
                        by: Some(dealer),
                        input,
                    })
                }
            }
            steps.push(step);
        }
        // The end of the year: everything has fired; spot-check two leads.
        let end = self.start + Duration::days(365);
        let check = |i: usize| Expect {
            record: Some(RecordRef::parse(&format!("L{i}"))),
            state: Some("lost_sale".into()),
            outbox_count: [("appointment_reminder".to_string(), RESCHEDULES as usize + 1)].into(),
            ..Expect::default()
        };
        steps.push(Step {
            line: steps.len() + 1,
            advance: Some(Advance::To(end.max(now))),
            expect: match self.leads {
                0 => Vec::new(),
                n => vec![check(0), check(n - 1)],
            },
            ..Step::default()
        });
        Scenario {
            path: format!("generated-aslm-{}", self.leads),
            name: format!("generated: {} ASLM leads over a year", self.leads),
            workflow: Some(wf),
            start: self.start,
            project: Some(project.to_string()),
            actors: Self::actors(),
            steps,
            templates: None,
            source: SourceFile::new("generated", ""),
        }
    }
}

/// The same scenario as a scenario file.
pub fn toml(plan: &Plan, project: &str) -> String {
    let sc = plan.scenario(project);
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by `leadflow test --generate {}`: see docs/benchmarks.md",
        plan.leads
    );
    let _ = writeln!(out, "name = {}", q(&sc.name));
    let _ = writeln!(
        out,
        "workflow = \"aslm\"\nstart = {}",
        q(&sc.start.to_rfc3339())
    );
    let _ = writeln!(out, "project = {}", q(project));
    for a in &sc.actors {
        let _ = writeln!(
            out,
            "[actors.{}]\nrole = \"dealer\"\nzones = [{}]",
            a.id,
            q(&a.zones[0])
        );
    }
    for s in &sc.steps {
        out.push_str("[[step]]\n");
        if let Some(Advance::To(t)) = s.advance {
            let _ = writeln!(out, "advance_to = {}", q(&t.to_rfc3339()));
        }
        let kv = |list: &[(String, toml::Value)]| {
            list.iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(c) = &s.create {
            let _ = writeln!(
                out,
                "create = {{ as = {}, by = {}, fields = {{ {} }} }}",
                q(c.name.as_deref().unwrap_or("")),
                q(c.by.as_deref().unwrap_or("")),
                kv(&c.fields)
            );
        }
        if let Some(f) = &s.fire {
            let _ = writeln!(
                out,
                "fire = {{ record = {}, transition = {}, by = {}, input = {{ {} }} }}",
                q(&f.record.name),
                q(&f.transition),
                q(f.by.as_deref().unwrap_or("")),
                kv(&f.input)
            );
        }
        for e in &s.expect {
            let r = e
                .record
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "[[step.expect]]\nrecord = {}\nstate = \"lost_sale\"\noutbox_count = {{ appointment_reminder = {} }}",
                q(&r),
                RESCHEDULES + 1
            );
        }
    }
    out
}
