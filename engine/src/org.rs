//! The organisation: who answers to whom and who is responsible for an
//! area, read from the actor directory, and the relations a workflow's
//! `by`, `visible_to`, `reveal_to` and `notify` may name.
//!
//! - An actor's managers are the actor its `reports_to` names and the
//!   actors that list its `team` in their `manages`. Management is
//!   transitive: the manager of a team lead's manager manages the team lead's
//!   operators too. A cycle stops the walk (the daemon refuses one at start).
//! - An actor is responsible for the areas in its `zones`; a workflow that
//!   declares `[workflow] area = "<field>"` says which field holds a
//!   record's area.
//!
//! Relations, as written in a workflow:
//! - `"<role>"`: every actor of the role;
//! - `"assignee.manager"`: a manager (direct or above) of the record's assignee;
//! - `"area.<role>"`: an actor of the role responsible for the record's area.

use crate::eval::Actor;
use std::collections::BTreeSet;

/// Who a rule names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Every actor of the role.
    Role(String),
    /// A manager of the record's assignee (direct or above).
    AssigneeManager,
    /// An actor of the role whose zones hold the record's area.
    Area(String),
}

impl Relation {
    /// Read a relation as written; `Err` says why a dotted name is none.
    pub fn parse(s: &str) -> Result<Relation, String> {
        match s.split_once('.') {
            None => Ok(Relation::Role(s.to_string())),
            Some(("assignee", "manager")) => Ok(Relation::AssigneeManager),
            Some(("area", role)) if !role.is_empty() && !role.contains('.') => {
                Ok(Relation::Area(role.to_string()))
            }
            Some(("area", _)) => Err(format!("`{s}`: write `area.<role>`")),
            Some(_) => Err(format!(
                "`{s}` is no relation: write a role, `assignee.manager` or `area.<role>`"
            )),
        }
    }

    /// Whether `s` is written as a relation (not a plain role).
    pub fn is_relation(s: &str) -> bool {
        s.contains('.')
    }

    /// The role the relation names, if any.
    pub fn role(&self) -> Option<&str> {
        match self {
            Relation::Role(r) | Relation::Area(r) => Some(r),
            Relation::AssigneeManager => None,
        }
    }

    /// Whether `actor` stands in this relation to a record assigned to
    /// `assignee` whose area is `area`.
    pub fn holds(
        &self,
        directory: &[Actor],
        actor: &Actor,
        assignee: Option<&str>,
        area: Option<&str>,
    ) -> bool {
        match self {
            Relation::Role(r) => actor.role == *r,
            Relation::AssigneeManager => {
                assignee.is_some_and(|a| a != actor.id && manages(directory, &actor.id, a))
            }
            Relation::Area(r) => {
                actor.role == *r && area.is_some_and(|z| actor.zones.iter().any(|c| c == z))
            }
        }
    }
}

/// The direct managers of `id`: the actor its `reports_to` names and the
/// actors that manage its team.
pub fn managers_of<'a>(directory: &'a [Actor], id: &str) -> Vec<&'a Actor> {
    let Some(me) = directory.iter().find(|a| a.id == id) else {
        return Vec::new();
    };
    directory
        .iter()
        .filter(|m| {
            m.id != me.id
                && (me.reports_to.as_deref() == Some(m.id.as_str())
                    || me.team.as_ref().is_some_and(|t| m.manages.contains(t)))
        })
        .collect()
}

/// Whether `manager` manages `subordinate`, directly or above.
pub fn manages(directory: &[Actor], manager: &str, subordinate: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![subordinate];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for m in managers_of(directory, id) {
            if m.id == manager {
                return true;
            }
            todo.push(&m.id);
        }
    }
    false
}

/// Everyone who manages `id`, directly or above, in directory order.
pub fn managers_above<'a>(directory: &'a [Actor], id: &str) -> Vec<&'a Actor> {
    directory
        .iter()
        .filter(|m| m.id != id && manages(directory, &m.id, id))
        .collect()
}

/// Everyone `manager` manages, directly or below, sorted.
pub fn reports_of(directory: &[Actor], manager: &str) -> Vec<String> {
    directory
        .iter()
        .filter(|a| a.id != manager && manages(directory, manager, &a.id))
        .map(|a| a.id.clone())
        .collect()
}

/// A chain of managers that comes back to where it started, if any (the
/// daemon refuses such a directory: `E_ORG_CYCLE`).
pub fn cycle(directory: &[Actor]) -> Option<Vec<String>> {
    for a in directory {
        if manages(directory, &a.id, &a.id) {
            let mut chain = vec![a.id.clone()];
            let mut at = a.id.as_str();
            // Follow one manager that leads back, for the message.
            for _ in 0..directory.len() {
                let next = managers_of(directory, at)
                    .into_iter()
                    .find(|m| m.id == a.id || manages(directory, &a.id, &m.id));
                match next {
                    Some(m) if m.id == a.id => {
                        chain.push(a.id.clone());
                        break;
                    }
                    Some(m) => {
                        chain.push(m.id.clone());
                        at = &m.id;
                    }
                    None => break,
                }
            }
            return Some(chain);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(id: &str, role: &str) -> Actor {
        Actor {
            id: id.into(),
            role: role.into(),
            ..Actor::default()
        }
    }

    fn org() -> Vec<Actor> {
        let mut op1 = actor("op1", "operator");
        op1.team = Some("nord".into());
        let mut op2 = actor("op2", "operator");
        op2.team = Some("sud".into());
        let mut sv_nord = actor("sv-nord", "supervisor");
        sv_nord.manages = vec!["nord".into()];
        sv_nord.reports_to = Some("boss".into());
        let mut sv_sud = actor("sv-sud", "supervisor");
        sv_sud.manages = vec!["sud".into()];
        let mut rep = actor("rep", "sales_rep");
        rep.zones = vec!["IT-LAZIO".into()];
        vec![op1, op2, sv_nord, sv_sud, actor("boss", "director"), rep]
    }

    #[test]
    fn managers_by_team_and_reports_to_transitively() {
        let d = org();
        assert!(manages(&d, "sv-nord", "op1"));
        assert!(manages(&d, "boss", "op1"), "the manager's manager");
        assert!(!manages(&d, "sv-nord", "op2"));
        assert!(!manages(&d, "op1", "sv-nord"));
        assert!(!manages(&d, "nobody", "op1"));
        assert_eq!(reports_of(&d, "boss"), ["op1", "sv-nord"]);
        assert_eq!(reports_of(&d, "sv-sud"), ["op2"]);
        let above: Vec<&str> = managers_above(&d, "op1")
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(above, ["sv-nord", "boss"]);
        assert!(cycle(&d).is_none());
    }

    #[test]
    fn relations_hold_for_the_right_people_only() {
        let d = org();
        let find = |id: &str| d.iter().find(|a| a.id == id).unwrap();
        let m = Relation::parse("assignee.manager").unwrap();
        assert!(m.holds(&d, find("sv-nord"), Some("op1"), None));
        assert!(!m.holds(&d, find("sv-sud"), Some("op1"), None));
        assert!(!m.holds(&d, find("sv-nord"), None, None), "unassigned");
        assert!(!m.holds(&d, find("op1"), Some("op1"), None), "oneself");
        let a = Relation::parse("area.sales_rep").unwrap();
        assert!(a.holds(&d, find("rep"), None, Some("IT-LAZIO")));
        assert!(!a.holds(&d, find("rep"), None, Some("IT-LOMBARDIA")));
        assert!(!a.holds(&d, find("rep"), None, None));
        assert_eq!(
            Relation::parse("supervisor"),
            Ok(Relation::Role("supervisor".into()))
        );
        assert!(Relation::parse("assignee.boss").is_err());
        assert!(Relation::parse("area.").is_err());
    }

    #[test]
    fn a_cycle_is_found_and_stops_the_walk() {
        let mut d = org();
        d[4].reports_to = Some("op1".into()); // boss reports to op1: op1 -> sv-nord -> boss -> op1
        let c = cycle(&d).unwrap();
        assert_eq!(c.first(), c.last());
        assert!(c.len() >= 3, "{c:?}");
        assert!(manages(&d, "op1", "boss"));
    }
}
