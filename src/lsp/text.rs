//! Text helpers of the language server: LSP positions (UTF-16 columns) to
//! byte offsets and back, the word under the cursor, and what the cursor
//! sits in (a table, a key, a string) for completion.

use lsp_types::{Position, Range};

/// The LSP position (0-based line, UTF-16 column) of a byte offset.
pub fn position(text: &str, offset: usize) -> Position {
    let offset = floor_char(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let character = before[start..].encode_utf16().count();
    Position::new(line as u32, character as u32)
}

/// The byte offset of an LSP position, clamped to the text.
pub fn offset(text: &str, pos: Position) -> usize {
    let mut start = 0;
    for _ in 0..pos.line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut units = 0u32;
    for (i, c) in text[start..line_end].char_indices() {
        if units >= pos.character {
            return start + i;
        }
        units += c.len_utf16() as u32;
    }
    line_end
}

pub fn range(text: &str, span: &std::ops::Range<usize>) -> Range {
    Range::new(position(text, span.start), position(text, span.end))
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The identifier around `offset` (letters, digits, `_`, `-`) and its span.
pub fn word_at(text: &str, offset: usize) -> Option<(String, std::ops::Range<usize>)> {
    let offset = floor_char(text, offset.min(text.len()));
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map_or(text.len(), |(i, _)| offset + i);
    (start < end).then(|| (text[start..end].to_string(), start..end))
}

/// What precedes the word at `start` on its line, e.g. `lead.` or
/// `rules::`.
pub fn prefix_before(text: &str, start: usize) -> &str {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    &text[line_start..start]
}

/// Where the cursor is, as far as completion cares.
#[derive(Debug, PartialEq)]
pub struct Context {
    /// The last table header above the cursor, without brackets:
    /// `states.new`, `transitions.claim`, `[step]` for `[[step]]`.
    pub table: String,
    /// Inside a string: the key the string is a value of (`to` in
    /// `to = "`, also inside arrays and inline tables).
    pub string_key: Option<String>,
    /// Inside a string: its text up to the cursor.
    pub string_prefix: Option<String>,
    /// At the start of a line (only a partial key typed so far).
    pub key_position: bool,
    /// The line starts with `[` (a table header being typed).
    pub header: bool,
}

pub fn context(text: &str, offset: usize) -> Context {
    let offset = floor_char(text, offset.min(text.len()));
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..offset];
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim_start)
        .find(|l| l.starts_with('['))
        .map(|l| {
            let l = l.split('#').next().unwrap_or(l).trim();
            if let Some(inner) = l.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
                format!("[{}]", inner.trim())
            } else {
                l.trim_start_matches('[')
                    .trim_end_matches(']')
                    .trim()
                    .to_string()
            }
        })
        .unwrap_or_default();
    // Open string: an odd number of unescaped quotes before the cursor.
    let mut open: Option<usize> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            '\\' if open.is_some() => escaped = !escaped,
            '"' if !escaped => open = if open.is_some() { None } else { Some(i) },
            '#' if open.is_none() => break,
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    let (string_key, string_prefix) = match open {
        Some(q) => (key_before(&line[..q]), Some(line[q + 1..].to_string())),
        None => (None, None),
    };
    let trimmed = line.trim_start();
    Context {
        table,
        key_position: open.is_none() && trimmed.chars().all(|c| is_word(c) || c == '.'),
        header: open.is_none() && trimmed.starts_with('['),
        string_key,
        string_prefix,
    }
}

/// The key of the last `key =` before a string's opening quote, skipping
/// earlier array items: `from = ["a", ` gives `from`.
fn key_before(s: &str) -> Option<String> {
    let eq = s.rfind('=')?;
    // `==` inside an expression is not an assignment.
    if s[..eq].ends_with('=') || s[..eq].ends_with('!') || s[..eq].ends_with('<') {
        return None;
    }
    let key: String = s[..eq]
        .trim_end()
        .chars()
        .rev()
        .take_while(|c| is_word(*c))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units() {
        let t = "a = \"città\"\nb = 1\n";
        let p = position(t, t.find('b').unwrap());
        assert_eq!((p.line, p.character), (1, 0));
        let end_of_citta = t.find("\"\n").unwrap();
        let p = position(t, end_of_citta);
        assert_eq!((p.line, p.character), (0, 10));
        assert_eq!(offset(t, p), end_of_citta);
        assert_eq!(offset(t, Position::new(9, 0)), t.len());
    }

    #[test]
    fn context_of_a_string_value() {
        let t = "[transitions.claim]\nfrom = [\"new\", \"av";
        let c = context(t, t.len());
        assert_eq!(c.table, "transitions.claim");
        assert_eq!(c.string_key.as_deref(), Some("from"));
        assert_eq!(c.string_prefix.as_deref(), Some("av"));
        let t = "[[step]]\nexpect = { state = \"";
        let c = context(t, t.len());
        assert_eq!(c.table, "[step]");
        assert_eq!(c.string_key.as_deref(), Some("state"));
        let t = "[transitions.x]\nguard = \"lead.state == \\\"a\\\" && lead.";
        let c = context(t, t.len());
        assert_eq!(
            c.string_prefix.as_deref(),
            Some("lead.state == \\\"a\\\" && lead.")
        );
    }

    #[test]
    fn context_of_a_key() {
        let t = "[states.new]\nti";
        let c = context(t, t.len());
        assert!(c.key_position);
        assert!(c.string_key.is_none());
        let t = "[states.new]\ntitle = 1";
        assert!(!context(t, t.len()).key_position);
    }

    #[test]
    fn words() {
        let t = "to = \"in_progress\"";
        let (w, span) = word_at(t, 9).unwrap();
        assert_eq!(w, "in_progress");
        assert_eq!(&t[span], "in_progress");
    }
}
