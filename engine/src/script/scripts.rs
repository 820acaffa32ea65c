//! The compiled scripts of one workflow: rules modules, compiling and
//! linting an expression, evaluating it.

use super::engine::{register_types, sandbox, standard_package};
use super::lint::{arities, first_property, lint_calls, ScriptProblem};
use super::{Eval, Instant, ScriptError, ScriptId, Uses, Vars, LEAD_BUILTINS};
use crate::calendar::Calendar;
use rhai::module_resolvers::StaticModuleResolver;
use rhai::{Dynamic, Engine, EvalAltResult, Module, Scope, AST};
use std::collections::HashMap;
use std::sync::Arc;

/// The compiled scripts of one workflow, with the engine that runs them.
pub struct Scripts {
    engine: Engine,
    asts: Vec<AST>,
    uses: Vec<Uses>,
    natives: Vec<Option<crate::native::Node>>,
    /// `rules::f` -> the numbers of arguments its definitions take.
    rule_arity: HashMap<String, Vec<usize>>,
    /// Findings inside the rules modules themselves: (module path, problem).
    module_problems: Vec<(String, ScriptProblem)>,
    /// Rules functions, for the native fast path to inline.
    rule_fns: crate::native::RuleFns,
}

impl std::fmt::Debug for Scripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scripts({} compiled)", self.asts.len())
    }
}

impl Scripts {
    /// Build the engine and compile the rules modules (path, source). A
    /// module that fails to compile is reported with its path and position.
    pub fn new(
        calendar: Arc<Calendar>,
        rules: &[(&str, &str)],
    ) -> Result<Scripts, (String, ScriptError)> {
        let mut engine = Engine::new_raw();
        engine.register_global_module(standard_package());
        sandbox(&mut engine);
        register_types(&mut engine, calendar);
        let mut resolver = StaticModuleResolver::new();
        let mut merged = Module::new();
        let mut rule_arity: HashMap<String, Vec<usize>> = HashMap::new();
        let mut modules: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
        let mut module_problems = Vec::new();
        let mut rule_fns = crate::native::RuleFns::default();
        let mut asts = Vec::new();
        for (i, (path, src)) in rules.iter().enumerate() {
            let ast = engine
                .compile(src)
                .map_err(|e| (path.to_string(), parse_error(&e)))?;
            let module = Module::eval_ast_as_new(Scope::new(), &ast, &engine).map_err(|e| {
                (
                    path.to_string(),
                    ScriptError {
                        message: e.to_string(),
                        line: 1,
                        column: 1,
                    },
                )
            })?;
            rule_fns.add(i, &ast);
            let name = path.trim_end_matches(".rhai").to_string();
            let own = arities(&ast);
            for (f, n) in &own {
                let e = rule_arity.entry(format!("rules::{f}")).or_default();
                e.extend(n.iter().copied());
                e.sort_unstable();
                e.dedup();
            }
            modules.insert(name.clone(), own);
            asts.push((path.to_string(), ast));
            merged.combine(module.clone());
            resolver.insert(name, module);
            // Later modules may `import` earlier ones (and only those).
            engine.set_module_resolver(resolver.clone());
        }
        engine.set_module_resolver(resolver);
        engine.register_static_module("rules", merged.into());
        // The call graph across modules: every call inside a module must
        // name a function of the module, of a module it imports, of
        // `rules::` or of the standard library, with a number of arguments
        // one of its definitions takes.
        for (path, ast) in &asts {
            let mut imports: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
            ast.walk(&mut |p: &[rhai::ASTNode]| {
                if let Some(rhai::ASTNode::Stmt(rhai::Stmt::Import(x, _))) = p.last() {
                    if let rhai::Expr::StringConstant(target, _) = &x.0 {
                        let target = target.trim_end_matches(".rhai");
                        if let Some(fns) = modules.get(target) {
                            imports.insert(x.1.name.to_string(), fns.clone());
                        }
                    }
                }
                true
            });
            let local = arities(ast);
            let known = |name: &str, ns: &str| -> Option<Vec<usize>> {
                match ns {
                    "" => local.get(name).cloned(),
                    "rules" => rule_arity.get(&format!("rules::{name}")).cloned(),
                    alias => imports.get(alias).and_then(|m| m.get(name).cloned()),
                }
            };
            for p in lint_calls(ast, &known, false) {
                module_problems.push((path.clone(), p));
            }
        }
        Ok(Scripts {
            engine,
            asts: Vec::new(),
            uses: Vec::new(),
            natives: Vec::new(),
            rule_arity,
            module_problems,
            rule_fns,
        })
    }

    /// Compile an expression or script once; returns its id. The static
    /// checks (unknown functions, unknown `lead.` fields) go to `problems`.
    pub fn compile(
        &mut self,
        src: &str,
        fields: &HashMap<String, usize>,
    ) -> Result<(ScriptId, Vec<ScriptProblem>), ScriptError> {
        self.compile_typed(src, fields, &[])
    }

    /// [`Scripts::compile`] knowing the fields' types (by field id): also
    /// reports comparisons and arithmetic over `lead.*`, `input.*`,
    /// `actor.*`, `now` and literals whose types cannot go together.
    pub fn compile_typed(
        &mut self,
        src: &str,
        fields: &HashMap<String, usize>,
        types: &[crate::value::FieldType],
    ) -> Result<(ScriptId, Vec<ScriptProblem>), ScriptError> {
        let ast = self.engine.compile(src).map_err(|e| parse_error(&e))?;
        let mut problems = self.lint(&ast, fields);
        if !types.is_empty() {
            problems.extend(crate::types::check(&ast, fields, types));
            problems.sort_by_key(|p| p.position());
        }
        self.uses.push(Uses::of(&ast));
        self.natives
            .push(crate::native::compile(&ast, fields, &self.rule_fns));
        self.asts.push(ast);
        Ok((self.asts.len() - 1, problems))
    }

    fn lint(&self, ast: &AST, fields: &HashMap<String, usize>) -> Vec<ScriptProblem> {
        use rhai::{ASTNode, Expr};
        let local = arities(ast);
        let known = |name: &str, ns: &str| -> Option<Vec<usize>> {
            match ns {
                "" => local.get(name).cloned(),
                "rules" => self.rule_arity.get(&format!("rules::{name}")).cloned(),
                _ => None,
            }
        };
        let mut out = lint_calls(ast, &known, true);
        ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Expr(Expr::Dot(bin, _, _))) = path.last() {
                if let (Expr::Variable(v, _, _), Some((prop, pos))) =
                    (&bin.lhs, first_property(&bin.rhs))
                {
                    if v.1.as_str() == "lead"
                        && !fields.contains_key(prop)
                        && !LEAD_BUILTINS.contains(&prop)
                    {
                        out.push(ScriptProblem::UnknownField {
                            name: prop.to_string(),
                            line: pos.line().unwrap_or(1),
                            column: pos.position().unwrap_or(1),
                        });
                    }
                }
            }
            true
        });
        out.sort_by_key(|p| p.position());
        out
    }

    /// Findings inside the rules modules (calls to unknown functions, wrong
    /// numbers of arguments, in-place methods used as values), each with
    /// the module's path.
    pub fn module_problems(&self) -> &[(String, ScriptProblem)] {
        &self.module_problems
    }

    /// Compile and evaluate a source text once (a clause of a guard, for
    /// "why not?"); a compile error is a failure.
    pub fn eval_source(&self, src: &str, vars: Vars) -> Eval {
        match self.engine.compile(src) {
            Ok(ast) => self.eval_ast(&ast, vars),
            Err(e) => Eval::Failed(format!("does not compile: {}", parse_error(&e).message)),
        }
    }

    /// The `lead.` properties a source text reads, in order of appearance,
    /// each once (none if it does not compile).
    pub fn lead_reads(&self, src: &str) -> Vec<String> {
        use rhai::{ASTNode, Expr};
        let Ok(ast) = self.engine.compile(src) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Expr(Expr::Dot(bin, _, _))) = path.last() {
                if let (Expr::Variable(v, _, _), Some((prop, _))) =
                    (&bin.lhs, first_property(&bin.rhs))
                {
                    if v.1.as_str() == "lead" && !out.iter().any(|p| p == prop) {
                        out.push(prop.to_string());
                    }
                }
            }
            true
        });
        out
    }

    /// The native fast path of script `id`, if it has one.
    pub fn native(&self, id: ScriptId) -> Option<&crate::native::Node> {
        self.natives[id].as_ref()
    }

    /// Which optional variables script `id` reads.
    pub fn uses(&self, id: ScriptId) -> Uses {
        self.uses[id]
    }

    /// Evaluate a compiled script with the standard variables.
    pub fn eval(&self, id: ScriptId, vars: Vars) -> Eval {
        self.eval_ast(&self.asts[id], vars)
    }

    fn eval_ast(&self, ast: &AST, vars: Vars) -> Eval {
        let mut scope = Scope::new();
        scope.push_constant("lead", vars.lead);
        scope.push_constant("now", Instant(vars.now));
        if let Some(input) = vars.input {
            scope.push_constant("input", input);
        }
        if let Some(actor) = vars.actor {
            scope.push_constant("actor", actor);
        }
        match self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast) {
            Ok(v) => Eval::Value(v),
            Err(e) => match *e {
                EvalAltResult::ErrorRuntime(v, _) => Eval::Thrown(v.to_string()),
                EvalAltResult::ErrorTooManyOperations(_) => Eval::Failed(
                    "the script exceeded its operation limit (an endless loop?)".into(),
                ),
                EvalAltResult::ErrorInFunctionCall(..) => unwrap_call_error(*e),
                other => Eval::Failed(other.to_string()),
            },
        }
    }
}

/// A `throw` inside rule functions calling each other arrives wrapped once
/// per call level: unwrap to the thrown message, or name the innermost failure.
fn unwrap_call_error(mut e: EvalAltResult) -> Eval {
    let mut names = Vec::new();
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(name, _, inner, _) => {
                names.push(name);
                e = *inner;
            }
            EvalAltResult::ErrorRuntime(v, _) => return Eval::Thrown(v.to_string()),
            EvalAltResult::ErrorTooManyOperations(_) => {
                return Eval::Failed(
                    "the script exceeded its operation limit (an endless loop?)".into(),
                )
            }
            other => return Eval::Failed(format!("in {}: {other}", names.join(" > "))),
        }
    }
}

fn parse_error(e: &rhai::ParseError) -> ScriptError {
    ScriptError {
        message: e.0.to_string(),
        line: e.1.line().unwrap_or(1),
        column: e.1.position().unwrap_or(1),
    }
}
