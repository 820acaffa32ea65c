//! Fields: one `[fields.<name>]` resolved, and `[workflow] area`.

use super::{Names, Resolver};
use crate::model::{Field, FieldId};
use crate::raw::RawField;
use crate::value::{FieldType, Value};
use std::ops::Range;
use toml::Spanned;

impl Resolver<'_> {
    /// One `[fields.<name>]`: pattern (E014), enum values (E015), default
    /// (E019), pii never revealed (W003), search (E080).
    pub(super) fn field_decl(
        &mut self,
        name: String,
        span: Range<usize>,
        f: RawField,
        names: &Names,
    ) -> Field {
        let ty = *f.ty.get_ref();
        let pattern = f.pattern.as_ref().and_then(|p| {
            match regex::Regex::new(&format!("^(?:{})$", p.get_ref())) {
                Ok(r) => Some(r),
                Err(e) => {
                    let msg = e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    self.err(
                        "E014",
                        p.span(),
                        format!("pattern of `{name}` is not a valid regular expression: {msg}"),
                    );
                    None
                }
            }
        });
        if ty == FieldType::Enum && f.values.is_empty() {
            self.err(
                "E015",
                f.ty.span(),
                format!("enum field `{name}` has no `values`"),
            );
        }
        if ty != FieldType::Enum && !f.values.is_empty() {
            self.err(
                "E015",
                f.values[0].span(),
                format!("`values` given to `{name}`, which is a {} field", ty.name()),
            );
        }
        let values: Vec<String> = f.values.iter().map(|v| v.get_ref().clone()).collect();
        let default = f.default.as_ref().and_then(|d| {
            match ty
                .coerce(Value::from_toml(d))
                .and_then(|v| crate::value::check_range(&v).map(|()| v))
            {
                Ok(v) => Some(v),
                Err(e) => {
                    self.err("E019", span.clone(), format!("default of `{name}`: {e}"));
                    None
                }
            }
        });
        let reveal_in = self.states(&f.reveal_in, names, false);
        if f.pii && f.reveal_in.is_empty() {
            self.err(
                "W003",
                span.clone(),
                format!("pii field `{name}` is never revealed to an assigned actor"),
            );
        }
        let searchable = matches!(ty, FieldType::String | FieldType::Text | FieldType::Enum);
        if f.search == Some(true) && !searchable {
            self.err(
                "E080",
                span.clone(),
                format!(
                    "`search = true` on `{name}`, which is a {} field: only string, text and enum fields are searched",
                    ty.name()
                ),
            );
        }
        let search = f
            .search
            .unwrap_or(matches!(ty, FieldType::String | FieldType::Text))
            && searchable;
        Field {
            title: f.title.unwrap_or_else(|| name.clone()),
            name,
            ty,
            pattern,
            values,
            required: f.required,
            default,
            pii: f.pii,
            reveal_in,
            track: f.track,
            indexed: f.indexed,
            search,
        }
    }

    /// `[workflow] area`: a string or enum field (E037).
    pub(super) fn area_field(
        &mut self,
        a: Option<&Spanned<String>>,
        names: &Names,
    ) -> Option<FieldId> {
        let a = a?;
        let f = self.field(a, names)?;
        if !matches!(
            names.field_types[f],
            FieldType::String | FieldType::Enum | FieldType::Text
        ) {
            self.err(
                "E037",
                a.span(),
                format!(
                    "`[workflow] area` must name a string or enum field; `{}` is {}",
                    a.get_ref(),
                    names.field_types[f].name()
                ),
            );
            return None;
        }
        Some(f)
    }
}
