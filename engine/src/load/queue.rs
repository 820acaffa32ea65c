//! `[queues.<name>]`: order keys (E038), calling hours (E039),
//! `max_attempts` (E040) and `lease` (E041).

use super::{in_file_order, Names, Resolver};
use crate::queue::{MaxAttempts, OrderKey, Queue, Window, ORDER_COLUMNS};
use crate::raw::{RawMaxAttempts, RawQueue};
use crate::script::Scripts;
use crate::value::FieldType;
use std::collections::BTreeMap;
use toml::Spanned;

impl Resolver<'_> {
    /// The `[queues.<name>]`, in file order.
    pub(super) fn queues(
        &mut self,
        raw: BTreeMap<Spanned<String>, RawQueue>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Vec<Queue> {
        let mut queues = Vec::new();
        for (name, _, q) in in_file_order(raw) {
            queues.push(self.queue(name, q, names, scripts));
        }
        queues
    }

    /// A `[queues.<name>]`: order keys (E038), calling hours (E039),
    /// `max_attempts` (E040) and `lease` (E041) checked; roles as `by`'s.
    fn queue(&mut self, name: String, q: RawQueue, names: &Names, scripts: &mut Scripts) -> Queue {
        let states = self.states(&q.states, names, true);
        let filter = q
            .filter
            .as_ref()
            .and_then(|f| self.script(f, names, scripts));
        let order = self.queue_order(&name, &q.order, names);
        let calling_hours = q.calling_hours.as_ref().and_then(|c| {
            Window::parse(c.get_ref())
                .map_err(|m| {
                    self.err(
                        "E039",
                        c.span(),
                        format!("queue `{name}`: calling_hours {m}"),
                    )
                })
                .ok()
        });
        let max_attempts = q
            .max_attempts
            .as_ref()
            .and_then(|m| self.queue_max_attempts(&name, m, names));
        let lease = self.queue_lease(&name, q.lease.as_ref());
        for r in &q.by {
            self.role_uses.push((r.get_ref().clone(), r.span()));
        }
        Queue {
            title: q.title.unwrap_or_else(|| name.clone()),
            name,
            states,
            filter,
            filter_source: q.filter.map(|f| f.into_inner()),
            order,
            by: q.by.into_iter().map(|r| r.into_inner()).collect(),
            calling_hours,
            max_attempts,
            lease,
        }
    }

    /// The `order` of a queue: keys naming a field or a column, of a type
    /// that has an order (E038 for the others, which are left out).
    fn queue_order(
        &mut self,
        name: &str,
        keys: &[Spanned<String>],
        names: &Names,
    ) -> Vec<OrderKey> {
        let mut order = Vec::new();
        for o in keys {
            let Some(key) = OrderKey::parse(o.get_ref()) else {
                self.err(
                    "E038",
                    o.span(),
                    format!("queue `{name}` has an empty order key `{}`", o.get_ref()),
                );
                continue;
            };
            let field = names.fields.get(key.name()).map(|f| names.field_types[*f]);
            let problem = match (&key, field) {
                (OrderKey::Due(_), Some(FieldType::Datetime | FieldType::Date)) => None,
                (OrderKey::Due(n), Some(t)) => Some(format!(
                    "needs a datetime or date field; `{n}` is {}",
                    t.name()
                )),
                (OrderKey::By { .. }, Some(FieldType::List)) => {
                    Some("names a list field, which has no order".to_string())
                }
                (OrderKey::By { name: n, .. }, None) if ORDER_COLUMNS.contains(&n.as_str()) => None,
                (_, Some(_)) => None,
                (_, None) => Some(format!(
                    "names no field or column ({})",
                    Self::did_you_mean(key.name(), names.fields.keys())
                )),
            };
            match problem {
                Some(p) => self.err(
                    "E038",
                    o.span(),
                    format!("queue `{name}`: order key `{}` {p}", o.get_ref()),
                ),
                None => order.push(key),
            }
        }
        order
    }

    /// `max_attempts` of a queue: an int field and a maximum of at least 1.
    fn queue_max_attempts(
        &mut self,
        name: &str,
        m: &Spanned<RawMaxAttempts>,
        names: &Names,
    ) -> Option<MaxAttempts> {
        let raw = m.get_ref();
        let ty = names.fields.get(&raw.field).map(|f| names.field_types[*f]);
        let problem = match ty {
            _ if raw.max < 1 => Some(format!("`max = {}` must be at least 1", raw.max)),
            Some(FieldType::Int) => None,
            Some(t) => Some(format!("`{}` is {}, not an int field", raw.field, t.name())),
            None => Some(format!("unknown field `{}`", raw.field)),
        };
        match problem {
            Some(p) => {
                self.err(
                    "E040",
                    m.span(),
                    format!("queue `{name}`: max_attempts {p}"),
                );
                None
            }
            None => Some(MaxAttempts {
                field: raw.field.clone(),
                max: raw.max,
            }),
        }
    }

    /// The `lease` of a queue: minutes or hours, between 1m and 24h; the
    /// default when absent or wrong.
    fn queue_lease(&mut self, name: &str, lease: Option<&Spanned<String>>) -> chrono::Duration {
        let default = chrono::Duration::minutes(crate::queue::DEFAULT_LEASE_MINUTES);
        match lease {
            None => default,
            Some(l) => {
                let fixed = crate::duration::Span::parse(l.get_ref())
                    .map_err(|m| m.to_string())
                    .and_then(|s| {
                        s.fixed()
                            .filter(|d| {
                                matches!(
                                    s.unit,
                                    crate::duration::Unit::Minutes | crate::duration::Unit::Hours
                                ) && *d > chrono::Duration::zero()
                                    && *d <= chrono::Duration::hours(24)
                            })
                            .ok_or_else(|| {
                                format!(
                                    "`{}` is not between 1m and 24h (minutes or hours)",
                                    l.get_ref()
                                )
                            })
                    });
                match fixed {
                    Ok(d) => d,
                    Err(m) => {
                        self.err("E041", l.span(), format!("queue `{name}`: lease {m}"));
                        default
                    }
                }
            }
        }
    }
}
