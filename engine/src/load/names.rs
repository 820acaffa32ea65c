//! State and field names: looked up with "did you mean" hints (E003, E004),
//! `from`/`in` state sets (`"*"` or a list; E011 for leaving a final state).

use super::{Names, Resolver};
use crate::diag::{refine, Diagnostic};
use crate::model::{FieldId, StateId};
use toml::Spanned;

impl Resolver<'_> {
    pub(super) fn state(&mut self, s: &Spanned<String>, names: &Names) -> Option<StateId> {
        match names.states.get(s.get_ref()) {
            Some(&i) => Some(i),
            None => {
                let hint = Self::did_you_mean(s.get_ref(), names.states.keys());
                self.diags.push(
                    Diagnostic::new(
                        "E003",
                        self.file,
                        s.span(),
                        format!("unknown state `{}`", s.get_ref()),
                    )
                    .hint(hint),
                );
                None
            }
        }
    }

    pub(super) fn states(
        &mut self,
        list: &[Spanned<String>],
        names: &Names,
        _views: bool,
    ) -> Vec<StateId> {
        list.iter().filter_map(|s| self.state(s, names)).collect()
    }

    /// `from`/`in`: "*" (every non-final state) or a list of state names.
    pub(super) fn states_spec(
        &mut self,
        v: &Spanned<toml::Value>,
        names: &Names,
        transition: Option<&str>,
    ) -> Vec<bool> {
        let n = names.finals.len();
        let mut bits = vec![false; n];
        match v.get_ref() {
            toml::Value::String(s) if s == "*" => {
                for (i, f) in names.finals.iter().enumerate() {
                    bits[i] = !f;
                }
            }
            toml::Value::String(s) => self.mark_state(s, v, names, transition, &mut bits),
            toml::Value::Array(items) => {
                for it in items {
                    match it.as_str() {
                        Some(s) => self.mark_state(s, v, names, transition, &mut bits),
                        None => self.err("E001", v.span(), "expected a list of state names"),
                    }
                }
            }
            _ => self.err("E001", v.span(), "expected \"*\" or a list of state names"),
        }
        bits
    }

    fn mark_state(
        &mut self,
        s: &str,
        v: &Spanned<toml::Value>,
        names: &Names,
        transition: Option<&str>,
        bits: &mut [bool],
    ) {
        let span = refine(&self.file.text, &v.span(), s);
        match names.states.get(s) {
            Some(&i) => {
                if let (Some(t), true) = (transition, names.finals[i]) {
                    self.diags.push(
                        Diagnostic::new(
                            "E011",
                            self.file,
                            span,
                            format!("transition `{t}` leaves final state `{s}`"),
                        )
                        .hint(format!(
                            "remove \"{s}\" from `from`, or drop `final = true` from state `{s}`"
                        )),
                    );
                }
                bits[i] = true;
            }
            None => {
                let hint = Self::did_you_mean(s, names.states.keys());
                self.diags.push(
                    Diagnostic::new("E003", self.file, span, format!("unknown state `{s}`"))
                        .hint(hint),
                );
            }
        }
    }

    pub(super) fn field(&mut self, s: &Spanned<String>, names: &Names) -> Option<FieldId> {
        match names.fields.get(s.get_ref()) {
            Some(&i) => Some(i),
            None => {
                let hint = Self::did_you_mean(s.get_ref(), names.fields.keys());
                self.diags.push(
                    Diagnostic::new(
                        "E004",
                        self.file,
                        s.span(),
                        format!("unknown field `{}`", s.get_ref()),
                    )
                    .hint(hint),
                );
                None
            }
        }
    }

    pub(super) fn fields(&mut self, list: &[Spanned<String>], names: &Names) -> Vec<FieldId> {
        list.iter().filter_map(|s| self.field(s, names)).collect()
    }
}
