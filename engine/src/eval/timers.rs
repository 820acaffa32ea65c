//! When a timer is due: `after` a span (business time too) or `at` a
//! script's instant, within the supported range of dates.

use super::work::Work;
use super::{Code, Refusal, TimerArm};
use crate::model::*;
use crate::value::Value;
use chrono::{DateTime, Utc};

impl Work<'_> {
    pub(super) fn due(&mut self, tm: &Timer) -> Result<Option<DateTime<Utc>>, Refusal> {
        match &tm.due {
            Due::After {
                amount,
                unit,
                since,
            } => {
                let anchor = match since.map(|f| &self.rec.fields[f]) {
                    Some(Value::DateTime(t)) => *t,
                    Some(Value::Date(d)) => date_start(self.wf, *d),
                    _ => self.ctx.now,
                };
                let span = crate::duration::Span {
                    amount: *amount,
                    unit: *unit,
                };
                let due = span.checked_add_to(anchor, &self.wf.calendar);
                match due.map(Value::DateTime) {
                    Some(v) if crate::value::check_range(&v).is_ok() => Ok(v.as_datetime()),
                    _ => {
                        let what = format!(
                            "timer `{}`: {}{} after {} is {OUT_OF_YEARS}",
                            tm.name,
                            amount,
                            span.unit_suffix(),
                            shown(&Value::DateTime(anchor))
                        );
                        Err(match since {
                            Some(f) => {
                                let name = &self.wf.fields[*f].name;
                                Refusal::on(Code::Type, name, format!("{name}: {what}"))
                            }
                            None => Refusal::new(Code::Script, what),
                        })
                    }
                }
            }
            Due::At(id) => match self.eval_value(*id, false)? {
                v @ (Value::DateTime(_) | Value::Date(_)) => {
                    crate::value::check_range(&v).map_err(|_| {
                        Refusal::new(
                            Code::Script,
                            format!(
                                "timer `{}`: `at` gave {}, {OUT_OF_YEARS}",
                                tm.name,
                                shown(&v)
                            ),
                        )
                    })?;
                    Ok(match v {
                        Value::Date(d) => Some(date_start(self.wf, d)),
                        v => v.as_datetime(),
                    })
                }
                Value::Null => Ok(None),
                other => Err(Refusal::new(
                    Code::Script,
                    format!(
                        "timer `{}`: `at` gave {} instead of a datetime",
                        tm.name,
                        other.to_json()
                    ),
                )),
            },
        }
    }

    /// The timers to arm and to cancel as the record goes from `from` to
    /// `to` by `t` (`firing`: the timer that fired it, which is not
    /// cancelled).
    pub(super) fn timer_changes(
        &mut self,
        t: &Transition,
        from: StateId,
        to: StateId,
        firing: Option<TimerId>,
    ) -> Result<(Vec<TimerArm>, Vec<String>), Refusal> {
        let wf = self.wf;
        let mut arm = Vec::new();
        let mut cancel = Vec::new();
        for (i, tm) in wf.timers.iter().enumerate() {
            let was = tm.armed_in(from) && firing != Some(i) && !wf.states[from].is_final;
            let is = tm.armed_in(to) && !wf.states[to].is_final;
            let rearm = match &t.rearm {
                Rearm::None => false,
                Rearm::All => true,
                Rearm::Some(ids) => ids.contains(&i),
            };
            if was && !is {
                cancel.push(tm.name.clone());
            } else if is && (!was || rearm) {
                match self.due(tm)? {
                    Some(due) => arm.push(TimerArm {
                        timer: tm.name.clone(),
                        due,
                    }),
                    None if was => cancel.push(tm.name.clone()),
                    None => {}
                }
            }
        }
        Ok((arm, cancel))
    }
}

/// Why a due instant is refused (see [`crate::value::YEARS`]).
pub(super) const OUT_OF_YEARS: &str = "outside the supported range of dates (years 0000 to 9999)";

/// A date or instant as its JSON text, without quotes.
pub(super) fn shown(v: &Value) -> String {
    match v.to_json() {
        serde_json::Value::String(s) => s,
        j => j.to_string(),
    }
}

/// Midnight of a date in the workflow's calendar time zone.
pub(super) fn date_start(wf: &Workflow, d: chrono::NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    let tz = wf.calendar.timezone();
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}
