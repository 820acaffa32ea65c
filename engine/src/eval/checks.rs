//! The refusals that need no evaluation: an unknown transition or timer,
//! a final state, a step not enabled here, an actor that may not fire it.

use super::{Actor, Code, Record, Refusal};
use crate::model::*;

pub(super) fn transition_id(wf: &Workflow, transition: &str) -> Result<TransitionId, Refusal> {
    wf.transition(transition).ok_or_else(|| {
        Refusal::new(
            Code::UnknownTransition,
            format!("workflow `{}` has no transition `{transition}`", wf.id),
        )
    })
}

/// The timer by name, if it is armed in `state`.
pub(super) fn timer_id(wf: &Workflow, state: StateId, timer: &str) -> Result<TimerId, Refusal> {
    let id = wf.timer(timer).ok_or_else(|| {
        Refusal::new(
            Code::UnknownTimer,
            format!("workflow `{}` has no timer `{timer}`", wf.id),
        )
    })?;
    if !wf.timers[id].armed_in(state) || wf.states[state].is_final {
        return Err(Refusal::new(
            Code::NotEnabled,
            format!(
                "timer `{timer}` is not armed in state `{}`",
                wf.state_name(state)
            ),
        ));
    }
    Ok(id)
}

/// The refusals that need no evaluation: a final state, a transition not
/// enabled in this state, a role (or relation) that may not fire it.
pub(super) fn may_fire(
    wf: &Workflow,
    rec: &Record,
    ti: TransitionId,
    actor: &Actor,
    directory: &[Actor],
) -> Result<(), Refusal> {
    let from = rec.state;
    let t = &wf.transitions[ti];
    if wf.states[from].is_final {
        return Err(Refusal::new(
            Code::Final,
            format!(
                "the record is in final state `{}` and accepts no change",
                wf.state_name(from)
            ),
        ));
    }
    if !t.enabled_from(from) {
        let enabled: Vec<&str> = wf.enabled_in(from).map(|t| t.name.as_str()).collect();
        return Err(Refusal::new(
            Code::NotEnabled,
            format!(
                "`{}` cannot be fired in state `{}`; enabled here: {}",
                t.name,
                wf.state_name(from),
                enabled.join(", ")
            ),
        ));
    }
    if !t.allows(wf, rec, actor, directory) {
        return Err(Refusal::new(
            Code::Forbidden,
            format!(
                "role `{}` may not fire `{}` (allowed: {})",
                actor.role,
                t.name,
                t.by.join(", ")
            ),
        ));
    }
    Ok(())
}
