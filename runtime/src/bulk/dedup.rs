//! Duplicate detection for imports: normalised keys and their index.
//!
//! `--dedup phone,email` makes each listed field a key: a line is a
//! duplicate when any of its non-empty keys equals, once normalised, that
//! of a record already stored or of an earlier line of the file. Phones
//! keep their digits with the country prefix (`+39 347 123 4567`,
//! `0039 3471234567` and `347 1234567` are one number); e-mail addresses
//! and every other key are compared trimmed and lower-case.
//!
//! The index keeps a 64-bit hash of each key, not its text, so 3 million
//! records with two keys fit in about 100 MB; two different keys sharing a
//! hash (odds about 1 in 10^6 for 6 million keys) would read as a
//! duplicate.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// How a key field is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    Phone,
    Text,
}

impl Norm {
    /// Phones for fields named like one (`phone`, `telefono`, `mobile`,
    /// `cellulare`, ...), text otherwise.
    pub fn for_field(name: &str) -> Norm {
        let n = name.to_lowercase();
        if ["phone", "tel", "mobile", "cell"]
            .iter()
            .any(|p| n.contains(p))
        {
            Norm::Phone
        } else {
            Norm::Text
        }
    }
}

/// `raw` normalised; `None` when nothing is left (no key).
pub fn normalise(norm: Norm, raw: &str, country: &str) -> Option<String> {
    let s = raw.trim();
    let out = match norm {
        Norm::Text => s.to_lowercase(),
        Norm::Phone => {
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            if s.starts_with('+') {
                digits
            } else if let Some(rest) = digits.strip_prefix("00") {
                rest.to_string()
            } else if digits.is_empty() {
                digits
            } else {
                format!("{country}{digits}")
            }
        }
    };
    (!out.is_empty()).then_some(out)
}

/// Where a key was first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A stored record (or one this import created).
    Record(i64),
    /// A line of this import not yet committed.
    Line(i64),
}

/// The keys seen so far: existing records, then the file's lines.
#[derive(Debug, Default)]
pub struct Index {
    map: HashMap<u64, Seen>,
}

fn hash(key: usize, value: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

impl Index {
    pub fn with_capacity(n: usize) -> Index {
        Index {
            map: HashMap::with_capacity(n),
        }
    }

    /// The first place any of `keys` (key number, normalised value) was seen.
    pub fn find(&self, keys: &[(usize, String)]) -> Option<Seen> {
        keys.iter()
            .find_map(|(k, v)| self.map.get(&hash(*k, v)).copied())
    }

    /// Remember `keys` as seen at `at` (keys seen before keep their place).
    pub fn add(&mut self, keys: &[(usize, String)], at: Seen) {
        for (k, v) in keys {
            self.map.entry(hash(*k, v)).or_insert(at);
        }
    }

    /// A committed line's record takes its place.
    pub fn resolve(&mut self, keys: &[(usize, String)], line: i64, record: i64) {
        for (k, v) in keys {
            if let Some(s) = self.map.get_mut(&hash(*k, v)) {
                if *s == Seen::Line(line) {
                    *s = Seen::Record(record);
                }
            }
        }
    }

    /// A line that was refused: its keys no longer count.
    pub fn forget(&mut self, keys: &[(usize, String)], line: i64) {
        for (k, v) in keys {
            let h = hash(*k, v);
            if self.map.get(&h) == Some(&Seen::Line(line)) {
                self.map.remove(&h);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_keep_digits_with_the_country_prefix() {
        let n = |s| normalise(Norm::Phone, s, "39");
        assert_eq!(n("+39 347 123 4567").as_deref(), Some("393471234567"));
        assert_eq!(n("0039 347-1234567").as_deref(), Some("393471234567"));
        assert_eq!(n("347.123.4567").as_deref(), Some("393471234567"));
        assert_eq!(n("+41 79 123 45 67").as_deref(), Some("41791234567"));
        assert_eq!(n(" - "), None);
    }

    #[test]
    fn emails_are_lower_case() {
        assert_eq!(
            normalise(Norm::Text, "  Mario.Rossi@Example.IT ", "39").as_deref(),
            Some("mario.rossi@example.it")
        );
        assert_eq!(Norm::for_field("telefono"), Norm::Phone);
        assert_eq!(Norm::for_field("email"), Norm::Text);
    }

    #[test]
    fn the_index_finds_any_key_and_forgets_refused_lines() {
        let mut ix = Index::default();
        let a = vec![(0, "393471234567".to_string()), (1, "a@b.it".to_string())];
        ix.add(&a, Seen::Record(7));
        assert_eq!(ix.find(&[(1, "a@b.it".into())]), Some(Seen::Record(7)));
        assert_eq!(ix.find(&[(0, "a@b.it".into())]), None, "keys are per field");
        let b = vec![(1, "c@d.it".to_string())];
        ix.add(&b, Seen::Line(3));
        ix.forget(&b, 3);
        assert_eq!(ix.find(&b), None);
        ix.add(&b, Seen::Line(4));
        ix.resolve(&b, 4, 99);
        assert_eq!(ix.find(&b), Some(Seen::Record(99)));
    }
}
