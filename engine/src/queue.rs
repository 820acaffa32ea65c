//! Work queues (`[queues.<name>]`): which records of a workflow operators
//! pull one at a time, in which order, when, and for how long a pulled
//! record stays theirs. The runtime's store claims the record; this module
//! only says what the declaration means (pure: `now` is an argument).
//!
//! `order` is a list of keys, the first deciding: `"due:<field>"` puts the
//! records whose `<field>` (an instant) has passed first, earliest first
//! ("due callbacks first"); `"<name>"` ascends and `"-<name>"` descends by a
//! field or by `created_at`, `updated_at`, `entered_at`, `id`. Missing
//! values come last in either direction. The record id breaks ties.

use crate::calendar::Calendar;
use crate::model::StateId;
use crate::script::ScriptId;
use chrono::{DateTime, Duration, NaiveTime, Utc};

/// Columns an `order` may name besides fields.
pub const ORDER_COLUMNS: &[&str] = &["id", "created_at", "updated_at", "entered_at"];

/// One key of a queue's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderKey {
    /// Records whose instant field has passed first, earliest first.
    Due(String),
    /// A field or column, ascending (`desc: false`) or descending.
    By { name: String, desc: bool },
}

impl OrderKey {
    /// `"due:callback_at"`, `"-priority"`, `"created_at"`; `None` for a
    /// key that names nothing (an empty name).
    pub fn parse(s: &str) -> Option<OrderKey> {
        let s = s.trim();
        let key = match (s.strip_prefix("due:"), s.strip_prefix('-')) {
            (Some(f), _) => OrderKey::Due(f.trim().to_string()),
            (None, Some(n)) => OrderKey::By {
                name: n.trim().to_string(),
                desc: true,
            },
            (None, None) => OrderKey::By {
                name: s.to_string(),
                desc: false,
            },
        };
        (!key.name().is_empty()).then_some(key)
    }

    pub fn name(&self) -> &str {
        match self {
            OrderKey::Due(n) | OrderKey::By { name: n, .. } => n,
        }
    }
}

/// The calling-hours window: local times of the calendar's working days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveTime,
    /// Exclusive; `24:00` is written for the end of the day.
    pub end: Option<NaiveTime>,
}

impl Window {
    /// `"09:00-20:00"` (`24:00` ends at midnight); the error says why not.
    pub fn parse(s: &str) -> Result<Window, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("`{s}` is not a window: write \"09:00-20:00\""))?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M");
        let start = time(a).map_err(|_| format!("`{}` is not a time (HH:MM)", a.trim()))?;
        let end = match b.trim() {
            "24:00" => None,
            t => Some(time(t).map_err(|_| format!("`{t}` is not a time (HH:MM, or 24:00)"))?),
        };
        if end.is_some_and(|e| e <= start) {
            return Err(format!(
                "`{s}` ends before it starts (a window cannot cross midnight)"
            ));
        }
        Ok(Window { start, end })
    }

    fn contains(&self, t: NaiveTime) -> bool {
        t >= self.start && self.end.is_none_or(|e| t < e)
    }
}

/// `max_attempts`: records whose `field` (an int) reached `max` are not
/// served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxAttempts {
    pub field: String,
    pub max: i64,
}

/// A resolved `[queues.<name>]`.
#[derive(Debug)]
pub struct Queue {
    pub name: String,
    pub title: String,
    /// States served (empty: every non-final state).
    pub states: Vec<StateId>,
    pub filter: Option<ScriptId>,
    /// The filter's Rhai source, for stores that run it as a query.
    pub filter_source: Option<String>,
    pub order: Vec<OrderKey>,
    /// Roles that may pull (empty: any actor of the tenant).
    pub by: Vec<String>,
    pub calling_hours: Option<Window>,
    pub max_attempts: Option<MaxAttempts>,
    /// How long a pulled record stays the puller's.
    pub lease: Duration,
}

/// The default lease when `lease` is not given.
pub const DEFAULT_LEASE_MINUTES: i64 = 5;

/// Why a queue serves nothing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// Not a working day of the calendar.
    DayOff,
    /// A working day, outside the window.
    OutsideHours,
}

impl Queue {
    /// Whether the queue serves at `now`: any time without `calling_hours`,
    /// else inside the window on a working day of `cal` (its time zone).
    pub fn open_at(&self, cal: &Calendar, now: DateTime<Utc>) -> Result<(), Closed> {
        let Some(w) = &self.calling_hours else {
            return Ok(());
        };
        let local = now.with_timezone(&cal.timezone()).naive_local();
        if !cal.is_working_day(local.date()) {
            return Err(Closed::DayOff);
        }
        match w.contains(local.time()) {
            true => Ok(()),
            false => Err(Closed::OutsideHours),
        }
    }

    /// Whether `role` may pull from the queue.
    pub fn allows(&self, role: &str) -> bool {
        self.by.is_empty() || self.by.iter().any(|r| r == role || r == "*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_read_due_descending_and_ascending() {
        assert_eq!(
            OrderKey::parse("due:callback_at"),
            Some(OrderKey::Due("callback_at".into()))
        );
        assert_eq!(
            OrderKey::parse("-priority"),
            Some(OrderKey::By {
                name: "priority".into(),
                desc: true
            })
        );
        assert_eq!(OrderKey::parse("-"), None);
        assert_eq!(OrderKey::parse("due:"), None);
    }

    #[test]
    fn windows_parse_and_refuse_backwards_ones() {
        let w = Window::parse("09:00-20:00").unwrap();
        assert!(w.contains(NaiveTime::from_hms_opt(9, 0, 0).unwrap()));
        assert!(!w.contains(NaiveTime::from_hms_opt(20, 0, 0).unwrap()));
        assert!(Window::parse("08:00-24:00").unwrap().end.is_none());
        assert!(Window::parse("20:00-09:00").is_err());
        assert!(Window::parse("9-20").is_err());
        assert!(Window::parse("09:00").is_err());
    }
}
