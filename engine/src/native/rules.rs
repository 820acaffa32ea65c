//! The functions of the workflow's rules modules, placed statement by
//! statement so the fast path can inline them.

use rhai::{FnAccess, Shared, Stmt, AST};

/// The functions of the workflow's rules modules, which the fast path
/// inlines when they stay in the subset.
#[derive(Debug, Default, Clone)]
pub struct RuleFns {
    /// (index of the rules module, definition, body statements).
    list: Vec<(usize, Shared<rhai::ScriptFuncDef>, Vec<Stmt>)>,
}

fn at(p: rhai::Position) -> Option<(usize, usize)> {
    Some((p.line()?, p.position()?))
}

impl RuleFns {
    /// Add the functions of one rules module. Function bodies are only
    /// reachable through `AST::walk` (the body type is not exported): each
    /// top-level body statement is given to the function whose body spans
    /// its position. If any statement cannot be placed exactly, the module's
    /// functions are left to Rhai.
    pub fn add(&mut self, module: usize, ast: &AST) {
        let defs: Vec<Shared<rhai::ScriptFuncDef>> = ast.iter_fn_def().cloned().collect();
        let spans: Option<Vec<_>> = defs
            .iter()
            .map(|d| Some((at(d.body.start_position())?, at(d.body.end_position())?)))
            .collect();
        let Some(spans) = spans else { return };
        let mut bodies: Vec<Vec<Stmt>> = vec![Vec::new(); defs.len()];
        let top = ast.statements().len();
        let (mut seen, mut last, mut ok) = (0, 0, true);
        ast.walk(&mut |path: &[rhai::ASTNode]| {
            if let [rhai::ASTNode::Stmt(s)] = path {
                seen += 1;
                if seen > top {
                    let place = at(s.position())
                        .and_then(|p| spans.iter().position(|(a, b)| *a <= p && p <= *b));
                    match place {
                        Some(i) if i >= last => {
                            last = i;
                            bodies[i].push((*s).clone());
                        }
                        _ => ok = false,
                    }
                }
            }
            ok
        });
        if ok {
            self.list
                .extend(defs.into_iter().zip(bodies).map(|(d, b)| (module, d, b)));
        }
    }

    /// The one function `name` of `arity` params: called as `rules::name`
    /// (`module` None: public ones of every module, which must not clash) or
    /// without namespace from inside `module`.
    pub(super) fn find(
        &self,
        module: Option<usize>,
        name: &str,
        arity: usize,
    ) -> Option<(usize, &rhai::ScriptFuncDef, &[Stmt])> {
        let mut found = self.list.iter().filter(|(m, f, _)| {
            f.name.as_str() == name
                && f.params.len() == arity
                && match module {
                    None => f.access == FnAccess::Public,
                    Some(x) => *m == x,
                }
        });
        let (m, f, body) = found.next()?;
        if found.next().is_some() || f.this_type.is_some() {
            return None;
        }
        Some((*m, f.as_ref(), body))
    }

    /// Whether any rules function has this name (it would shadow a builtin).
    pub(super) fn has(&self, name: &str) -> bool {
        self.list.iter().any(|(_, f, _)| f.name.as_str() == name)
    }
}
