//! Label and field selectors, parsed from the `labelSelector` / `fieldSelector` query
//! parameters with the grammar the Kubernetes API server accepts.
//!
//! Label selectors: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined by
//! commas. Field selectors: `f=v`, `f==v`, `f!=v` joined by commas, `f` restricted to the
//! fields the resource supports (others are rejected, like the real server does).

use thiserror::Error;

/// A selector parse failure (becomes a 400 BadRequest).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SelectorError {
    /// The label selector is not well-formed.
    #[error("unable to parse requirement: {0}")]
    Label(String),
    /// The field selector is not well-formed.
    #[error("invalid selector: '{0}'; can't understand '{1}'")]
    Field(String, String),
    /// The field is not supported for the resource.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelOp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

/// A parsed label selector (the empty selector matches everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<(String, LabelOp)>,
}

fn valid_label_key(k: &str) -> bool {
    if k.is_empty() || k.len() > 253 + 1 + 63 {
        return false;
    }
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && (p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'))
    {
        return false;
    }
    valid_label_value(name) && !name.is_empty()
}

/// Whether `v` is a valid label value (empty, or ≤63 alphanumerics/`-_.` starting and ending
/// alphanumeric).
pub fn valid_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(s.to_string());
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(s.to_string());
    }
    out.push(&s[start..]);
    Ok(out)
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError::Label(whole.to_string()))?;
    let mut vals = Vec::new();
    for v in inner.split(',') {
        let v = v.trim();
        if !valid_label_value(v) {
            return Err(SelectorError::Label(whole.to_string()));
        }
        vals.push(v.to_string());
    }
    Ok(vals)
}

impl LabelSelector {
    /// Parses a label selector string.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { reqs });
        }
        let parts = split_top(s).map_err(SelectorError::Label)?;
        for part in parts {
            let p = part.trim();
            if p.is_empty() {
                return Err(SelectorError::Label(s.to_string()));
            }
            let req = if let Some(k) = p.strip_prefix('!') {
                (k.trim().to_string(), LabelOp::NotExists)
            } else if let Some((k, v)) = p.split_once("!=") {
                (k.trim().to_string(), LabelOp::NotEq(v.trim().to_string()))
            } else if let Some((k, v)) = p.split_once("==") {
                (k.trim().to_string(), LabelOp::Eq(v.trim().to_string()))
            } else if let Some((k, v)) = p.split_once('=') {
                (k.trim().to_string(), LabelOp::Eq(v.trim().to_string()))
            } else if let Some(idx) = p.find(" notin ") {
                let (k, rest) = p.split_at(idx);
                (
                    k.trim().to_string(),
                    LabelOp::NotIn(parse_set(&rest[7..], s)?),
                )
            } else if let Some(idx) = p.find(" in ") {
                let (k, rest) = p.split_at(idx);
                (k.trim().to_string(), LabelOp::In(parse_set(&rest[4..], s)?))
            } else {
                (p.to_string(), LabelOp::Exists)
            };
            if !valid_label_key(&req.0) {
                return Err(SelectorError::Label(s.to_string()));
            }
            match &req.1 {
                LabelOp::Eq(v) | LabelOp::NotEq(v) if !valid_label_value(v) => {
                    return Err(SelectorError::Label(s.to_string()));
                }
                _ => {}
            }
            reqs.push(req);
        }
        Ok(Self { reqs })
    }

    /// Whether the selector is empty.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether labels (looked up by `get`) satisfy the selector.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.reqs.iter().all(|(k, op)| {
            let v = get(k);
            match op {
                LabelOp::Eq(x) => v == Some(x.as_str()),
                LabelOp::NotEq(x) => v != Some(x.as_str()),
                LabelOp::In(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
                LabelOp::NotIn(xs) => v.is_none_or(|v| !xs.iter().any(|x| x == v)),
                LabelOp::Exists => v.is_some(),
                LabelOp::NotExists => v.is_none(),
            }
        })
    }
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

impl FieldSelector {
    /// Parses a field selector, accepting only `metadata.name`, `metadata.namespace` and the
    /// given resource-specific fields.
    pub fn parse(s: &str, supported: &[&str]) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { reqs });
        }
        for part in split_unescaped(s, ',') {
            let (k, neg, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, false, v)
            } else {
                return Err(SelectorError::Field(s.to_string(), part.to_string()));
            };
            let k = k.trim();
            if k != "metadata.name" && k != "metadata.namespace" && !supported.contains(&k) {
                return Err(SelectorError::UnsupportedField(k.to_string()));
            }
            reqs.push((k.to_string(), neg, unescape(v)));
        }
        Ok(Self { reqs })
    }

    /// Whether the selector is empty.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The value of an `f=v` requirement on `field`, if the selector has exactly that one
    /// requirement on it (used to index per-node pod watches).
    pub fn equality_on(&self, field: &str) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(k, neg, _)| k == field && !neg)
            .map(|(_, _, v)| v.as_str())
    }

    /// Whether the field values (looked up by `get`, missing = "") satisfy the selector.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.reqs.iter().all(|(k, neg, v)| {
            let actual = get(k).unwrap_or("");
            (actual == v) != *neg
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |k| pairs.iter().find(|(a, _)| *a == k).map(|(_, v)| *v)
    }

    #[test]
    fn label_selector_ops() {
        let l = [("app", "web"), ("tier", "fe")];
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web,db)", true),
            ("app notin (web,db)", false),
            ("tier,app=web", true),
            ("!tier", false),
            ("!missing", true),
            ("missing", false),
            ("app in (db), tier", false),
            ("", true),
        ] {
            let s = LabelSelector::parse(sel).unwrap();
            assert_eq!(s.matches(labels(&l)), want, "{sel}");
        }
        for bad in ["app in (web", "a=b=c", "=x", "app in web", ",", "a b"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_selector_ops() {
        let f = [("spec.nodeName", "n1"), ("status.phase", "Running")];
        let s = FieldSelector::parse(
            "spec.nodeName=n1,status.phase!=Pending",
            &["spec.nodeName", "status.phase"],
        )
        .unwrap();
        assert!(s.matches(labels(&f)));
        assert_eq!(s.equality_on("spec.nodeName"), Some("n1"));
        let empty = FieldSelector::parse("spec.nodeName=", &["spec.nodeName"]).unwrap();
        assert!(empty.matches(labels(&[])));
        assert!(matches!(
            FieldSelector::parse("spec.foo=x", &[]),
            Err(SelectorError::UnsupportedField(_))
        ));
        assert!(FieldSelector::parse("garbage", &[]).is_err());
    }
}
