//! When to write ANSI colours: `--color auto|always|never`. `auto` colours a
//! stream only when it is a terminal, never when `NO_COLOR` is set (to
//! anything but the empty string), and always when `CLICOLOR_FORCE` is set
//! (to anything but empty or `0`); `NO_COLOR` wins over `CLICOLOR_FORCE`.
//! `always` and `never` override both variables.

use clap::ValueEnum;
use std::io::IsTerminal;

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorMode {
    /// Colour a stream that is a terminal (see NO_COLOR, CLICOLOR_FORCE).
    #[default]
    Auto,
    /// Colour even into a pipe or a file.
    Always,
    /// Never colour.
    Never,
}

impl ColorMode {
    /// Colour standard output?
    pub fn stdout(self) -> bool {
        self.decide(std::io::stdout().is_terminal())
    }

    /// Colour standard error (diagnostics on failure, the daemon's logs)?
    pub fn stderr(self) -> bool {
        self.decide(std::io::stderr().is_terminal())
    }

    fn decide(self, terminal: bool) -> bool {
        decide(
            self,
            std::env::var("NO_COLOR").ok().as_deref(),
            std::env::var("CLICOLOR_FORCE").ok().as_deref(),
            terminal,
        )
    }

    /// The same choice for clap's own help and error messages.
    pub fn clap(self) -> clap::ColorChoice {
        match self {
            ColorMode::Auto => clap::ColorChoice::Auto,
            ColorMode::Always => clap::ColorChoice::Always,
            ColorMode::Never => clap::ColorChoice::Never,
        }
    }
}

fn decide(mode: ColorMode, no_color: Option<&str>, force: Option<&str>, terminal: bool) -> bool {
    match mode {
        ColorMode::Always => true,
        ColorMode::Never => false,
        ColorMode::Auto if no_color.is_some_and(|v| !v.is_empty()) => false,
        ColorMode::Auto if force.is_some_and(|v| !v.is_empty() && v != "0") => true,
        ColorMode::Auto => terminal,
    }
}

/// The `--color` value on a raw command line, read before clap parses it
/// so that clap's own help and errors follow it too.
pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> ColorMode {
    let mut mode = ColorMode::Auto;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let value = match a.strip_prefix("--color") {
            Some("") => args.next(),
            Some(v) => v.strip_prefix('=').map(str::to_string),
            None => None,
        };
        if let Some(m) = value.and_then(|v| ColorMode::from_str(&v, true).ok()) {
            mode = m;
        }
        if a == "--" {
            break;
        }
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_terminal_and_the_environment() {
        use ColorMode::*;
        assert!(decide(Auto, None, None, true));
        assert!(!decide(Auto, None, None, false));
        assert!(!decide(Auto, Some("1"), None, true));
        assert!(
            decide(Auto, Some(""), None, true),
            "an empty NO_COLOR is unset"
        );
        assert!(decide(Auto, None, Some("1"), false));
        assert!(!decide(Auto, None, Some("0"), false));
        assert!(!decide(Auto, Some("1"), Some("1"), true), "NO_COLOR wins");
        assert!(decide(Always, Some("1"), None, false));
        assert!(!decide(Never, None, Some("1"), true));
    }

    #[test]
    fn the_flag_is_read_before_clap() {
        let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            from_args(args("leadflow --color never check")),
            ColorMode::Never
        );
        assert_eq!(
            from_args(args("leadflow check --color=always")),
            ColorMode::Always
        );
        assert_eq!(from_args(args("leadflow check")), ColorMode::Auto);
        assert_eq!(
            from_args(args("leadflow -- --color never")),
            ColorMode::Auto
        );
    }
}
