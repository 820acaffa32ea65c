//! Results of running scenarios, and how they are shown.

use super::parse::ScenarioError;
use serde::Serialize;
use std::fmt;

/// Why a step failed: one line per mismatch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// 1-based step number.
    pub step: usize,
    /// Line of the step's `[[step]]` header.
    pub line: usize,
    pub message: String,
    /// The refusal code, when a step was unexpectedly refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step {} (line {}): {}",
            self.step, self.line, self.message
        )
    }
}

/// The result of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub path: String,
    pub name: String,
    pub passed: bool,
    /// Steps in the file.
    pub steps: usize,
    /// Steps run (a scenario stops at its first failing step).
    pub steps_run: usize,
    /// Timers and scheduled spawns fired.
    pub fired: usize,
    pub millis: f64,
    /// The scenario could not run (parse or project error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ScenarioError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
}

impl ScenarioResult {
    pub fn broken(path: &str, error: ScenarioError) -> ScenarioResult {
        ScenarioResult {
            path: path.to_string(),
            name: path.to_string(),
            passed: false,
            steps: 0,
            steps_run: 0,
            fired: 0,
            millis: 0.0,
            error: Some(error),
            failures: Vec::new(),
        }
    }

    /// `ok   path  (12 steps, 0.4 ms)` then, on failure, indented details.
    pub fn human(&self) -> String {
        let mut s = format!(
            "{} {}  ({} steps, {:.1} ms)",
            if self.passed { "ok  " } else { "FAIL" },
            self.path,
            self.steps,
            self.millis
        );
        if let Some(e) = &self.error {
            s.push_str(&format!("\n    {e}"));
        }
        for f in &self.failures {
            s.push_str(&format!("\n    {}: {f}", self.path));
        }
        s
    }
}

/// Totals over a run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

impl Summary {
    pub fn of(results: &[ScenarioResult]) -> Summary {
        let passed = results.iter().filter(|r| r.passed).count();
        Summary {
            passed,
            failed: results.len() - passed,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}
