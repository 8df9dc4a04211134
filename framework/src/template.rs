//! Tera templating for test configs, modules and object templates, with CL2's function set.
//!
//! CL2 templates are Go templates; cl2 uses tera, so the CL2 helper functions are provided as
//! tera functions with named arguments (`{{ AddInt(a=Nodes, b=1) }}`) and, for the unary ones,
//! as filters (`{{ Name | Lowercase }}`). `docs/template-functions.md` documents each with an
//! example. Undefined variables are an error in tera, so `DefaultParam` takes the parameter
//! *name* as a string and looks it up itself: `{{ DefaultParam(param="CL2_PODS", default=30) }}`.
//!
//! File access (`IncludeFile`, `IncludeEmbedFile`) is confined to a root directory, see
//! [`resolve_confined`].

use rand::Rng;
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::config::Params;

/// A template that failed to parse or render.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// Parser/renderer message (the whole tera error chain).
    pub message: String,
    /// 1-based line and column inside the template, when tera reports them.
    pub position: Option<(usize, usize)>,
}

impl TemplateError {
    fn from_tera(err: &tera::Error) -> Self {
        let mut parts = vec![err.to_string()];
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            parts.push(s.to_string());
            source = s.source();
        }
        let message = parts.join(": ");
        let position = find_position(&message);
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        Self { message, position }
    }
}

fn find_position(message: &str) -> Option<(usize, usize)> {
    let idx = message.find("--> ")?;
    let rest = &message[idx + 4..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(rest.len());
    let (line, col) = rest[..end].split_once(':')?;
    Some((line.parse().ok()?, col.parse().ok()?))
}

/// A hint for errors in templates written in Go-template syntax (ClusterLoader2's), empty
/// otherwise.
pub fn go_template_hint(text: &str) -> &'static str {
    let compact: String = text.split_whitespace().collect();
    if compact.contains("{{$") || compact.contains("{{.") || compact.contains("{{end}}") {
        " (this looks like a Go template, ClusterLoader2's syntax; cl2 templates use tera: \
         see docs/template-functions.md for the translation)"
    } else {
        ""
    }
}

/// Resolves `rel` against `root` and refuses anything that escapes `root`.
///
/// The rule (documented in `docs/config-reference.md`): paths are relative to the directory of
/// the top-level test config; a leading `/` also means "relative to that directory" (as CL2's
/// module paths do); `..` is allowed as long as the normalized path stays inside the root; after
/// resolving symlinks the file must still lie inside the root.
pub fn resolve_confined(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let trimmed = rel.trim();
    if trimmed.is_empty() {
        return Err("empty path".into());
    }
    let rel_path = Path::new(trimmed.trim_start_matches('/'));
    let mut normalized = PathBuf::new();
    for comp in rel_path.components() {
        match comp {
            Component::Normal(c) => normalized.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                if !normalized.pop() {
                    return Err(format!(
                        "path {rel:?} escapes the config directory {}",
                        root.display()
                    ));
                }
            }
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let joined = root.join(&normalized);
    if let (Ok(canon_root), Ok(canon)) = (root.canonicalize(), joined.canonicalize())
        && !canon.starts_with(&canon_root)
    {
        return Err(format!(
            "path {rel:?} resolves outside the config directory {} (via a symlink)",
            root.display()
        ));
    }
    Ok(joined)
}

/// Renders templates with CL2's functions; file access confined to `root`.
#[derive(Debug, Clone)]
pub struct TemplateEngine {
    root: Arc<PathBuf>,
}

/// A parsed template ready to be rendered many times (object templates).
pub struct CompiledTemplate {
    tera: tera::Tera,
    name: String,
}

impl std::fmt::Debug for CompiledTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledTemplate")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CompiledTemplate {
    /// Renders with `vars` as the context.
    pub fn render(&self, vars: &Params) -> Result<String, TemplateError> {
        self.render_vars(&TemplateVars::new(vars))
    }

    /// Renders with prepared variables (see [`TemplateVars`]).
    pub fn render_vars(&self, vars: &TemplateVars) -> Result<String, TemplateError> {
        self.tera
            .render(&self.name, &vars.0)
            .map_err(|e| TemplateError::from_tera(&e))
    }
}

/// Template variables in the form the renderer takes. For a template rendered many times,
/// build the shared part once, then clone it per render and [`set`](Self::set) what varies.
#[derive(Debug, Clone, Default)]
pub struct TemplateVars(tera::Context);

impl TemplateVars {
    /// Variables holding `vars`.
    pub fn new(vars: &Params) -> Self {
        let mut ctx = tera::Context::new();
        for (k, v) in vars {
            ctx.insert(k.as_str(), v);
        }
        Self(ctx)
    }

    /// Sets (or overrides) one variable.
    pub fn set(&mut self, key: &str, value: &Value) {
        self.0.insert(key, value);
    }
}

impl TemplateEngine {
    /// An engine whose `IncludeFile` / `IncludeEmbedFile` read below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: Arc::new(root.into()),
        }
    }

    /// The confinement root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Parses `text` (named `name` in errors). `DefaultParam` sees `static_vars`.
    pub fn compile(
        &self,
        name: &str,
        text: &str,
        static_vars: &Params,
    ) -> Result<CompiledTemplate, TemplateError> {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![]);
        register_functions(&mut tera, Arc::new(static_vars.clone()), self.root.clone());
        tera.add_raw_template(name, text)
            .map_err(|e| TemplateError::from_tera(&e))?;
        Ok(CompiledTemplate {
            tera,
            name: name.to_string(),
        })
    }

    /// Parses and renders `text` once with `vars`.
    pub fn render(&self, name: &str, text: &str, vars: &Params) -> Result<String, TemplateError> {
        self.compile(name, text, vars)?.render(vars)
    }
}

type Args = HashMap<String, Value>;

fn err(msg: impl Into<String>) -> tera::Error {
    tera::Error::msg(msg.into())
}

fn to_f64(fname: &str, v: &Value) -> tera::Result<f64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| err(format!("{fname}: bad number {n}"))),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| err(format!("{fname}: {s:?} is not a number"))),
        other => Err(err(format!("{fname}: expected a number, got {other}"))),
    }
}

fn arg<'a>(fname: &str, args: &'a Args, names: &[&str]) -> tera::Result<&'a Value> {
    names
        .iter()
        .find_map(|n| args.get(*n))
        .ok_or_else(|| err(format!("{fname}: missing argument `{}`", names[0])))
}

fn num_arg(fname: &str, args: &Args, names: &[&str]) -> tera::Result<f64> {
    to_f64(fname, arg(fname, args, names)?)
}

/// Variadic numeric arguments: `values=[...]`, or every named argument in name order.
fn variadic(fname: &str, args: &Args) -> tera::Result<Vec<f64>> {
    if let Some(v) = args.get("values") {
        let Value::Array(items) = v else {
            return Err(err(format!("{fname}: `values` must be a list")));
        };
        return items.iter().map(|i| to_f64(fname, i)).collect();
    }
    let mut keys: Vec<&String> = args.keys().collect();
    keys.sort();
    keys.into_iter().map(|k| to_f64(fname, &args[k])).collect()
}

fn int_value(v: f64) -> Value {
    Value::Number(Number::from(v.trunc() as i64))
}

fn float_value(v: f64) -> tera::Result<Value> {
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| err(format!("result {v} is not finite")))
}

fn usize_arg(fname: &str, args: &Args, names: &[&str]) -> tera::Result<usize> {
    let v = num_arg(fname, args, names)?;
    if v < 0.0 || !v.is_finite() {
        return Err(err(format!("{fname}: `{}` must be ≥ 0, got {v}", names[0])));
    }
    Ok(v as usize)
}

fn string_arg(fname: &str, args: &Args, names: &[&str]) -> tera::Result<String> {
    match arg(fname, args, names)? {
        Value::String(s) => Ok(s.clone()),
        other => Ok(other.to_string()),
    }
}

const ALPHANUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// splitmix64: a tiny, stable PRNG so `RandDataWithSeed` output never changes across releases.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `RandDataWithSeed`: deterministic alphanumeric data of length `n` for `seed`.
pub fn rand_data_with_seed(n: usize, seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let mut rng = SplitMix(u64::from_be_bytes(first));
    (0..n)
        .map(|_| ALPHANUM[(rng.next() % ALPHANUM.len() as u64) as usize] as char)
        .collect()
}

/// `YamlQuote`: YAML-quotes `s`, indenting continuation lines by `2*tabs` spaces.
pub fn yaml_quote(s: &str, tabs: usize) -> tera::Result<String> {
    let quoted = serde_yaml::to_string(s).map_err(|e| err(format!("YamlQuote: {e}")))?;
    let quoted = quoted.trim_end_matches('\n');
    let indent = " ".repeat(2 * tabs);
    Ok(quoted.replace('\n', &format!("\n{indent}")))
}

fn register_functions(tera: &mut tera::Tera, vars: Arc<Params>, root: Arc<PathBuf>) {
    tera.register_function("DefaultParam", move |args: &Args| {
        let name = string_arg("DefaultParam", args, &["param", "name"])?;
        match vars.get(&name) {
            Some(v) if !v.is_null() => Ok(v.clone()),
            _ => Ok(args.get("default").cloned().unwrap_or(Value::Null)),
        }
    });
    macro_rules! variadic_fn {
        ($name:literal, $fold:expr, $wrap:expr) => {
            tera.register_function($name, |args: &Args| {
                let values = variadic($name, args)?;
                if values.is_empty() {
                    return Err(err(concat!($name, ": needs at least one argument")));
                }
                let folded = values[1..].iter().fold(values[0], $fold);
                $wrap(folded)
            });
        };
    }
    variadic_fn!("AddInt", |a: f64, b: &f64| a + b, |v| Ok(int_value(v)));
    variadic_fn!("AddFloat", |a: f64, b: &f64| a + b, float_value);
    variadic_fn!("MultiplyInt", |a: f64, b: &f64| a * b, |v| Ok(int_value(v)));
    variadic_fn!("MultiplyFloat", |a: f64, b: &f64| a * b, float_value);
    variadic_fn!("MaxInt", |a: f64, b: &f64| a.max(*b), |v| Ok(int_value(v)));
    variadic_fn!("MaxFloat", |a: f64, b: &f64| a.max(*b), float_value);
    variadic_fn!("MinInt", |a: f64, b: &f64| a.min(*b), |v| Ok(int_value(v)));
    variadic_fn!("MinFloat", |a: f64, b: &f64| a.min(*b), float_value);
    tera.register_function("SubtractInt", |args: &Args| {
        Ok(int_value(
            num_arg("SubtractInt", args, &["a"])? - num_arg("SubtractInt", args, &["b"])?,
        ))
    });
    tera.register_function("SubtractFloat", |args: &Args| {
        float_value(
            num_arg("SubtractFloat", args, &["a"])? - num_arg("SubtractFloat", args, &["b"])?,
        )
    });
    tera.register_function("DivideInt", |args: &Args| {
        let b = num_arg("DivideInt", args, &["b"])?;
        if b == 0.0 {
            return Err(err("DivideInt: division by zero"));
        }
        Ok(int_value(num_arg("DivideInt", args, &["a"])? / b))
    });
    tera.register_function("DivideFloat", |args: &Args| {
        let b = num_arg("DivideFloat", args, &["b"])?;
        if b == 0.0 {
            return Err(err("DivideFloat: division by zero"));
        }
        float_value(num_arg("DivideFloat", args, &["a"])? / b)
    });
    tera.register_function("Mod", |args: &Args| {
        let a = num_arg("Mod", args, &["a"])?.trunc() as i64;
        let b = num_arg("Mod", args, &["b"])?.trunc() as i64;
        if b == 0 {
            return Err(err("Mod: division by zero"));
        }
        Ok(Value::Number(Number::from(a.wrapping_rem(b))))
    });
    tera.register_function("Ceil", |args: &Args| {
        float_value(num_arg("Ceil", args, &["x", "value"])?.ceil())
    });
    tera.register_filter("Ceil", |v: &Value, _: &Args| {
        float_value(to_f64("Ceil", v)?.ceil())
    });
    tera.register_function("RandInt", |args: &Args| {
        let n = num_arg("RandInt", args, &["n"])?.trunc() as i64;
        if n <= 0 {
            return Ok(Value::Number(Number::from(0)));
        }
        Ok(Value::Number(Number::from(rand::rng().random_range(0..=n))))
    });
    tera.register_function("RandIntRange", |args: &Args| {
        let a = num_arg("RandIntRange", args, &["a", "min"])?.trunc() as i64;
        let b = num_arg("RandIntRange", args, &["b", "max"])?.trunc() as i64;
        if a >= b {
            return Ok(Value::Number(Number::from(a)));
        }
        Ok(Value::Number(Number::from(rand::rng().random_range(a..=b))))
    });
    tera.register_function("RandData", |args: &Args| {
        let n = usize_arg("RandData", args, &["n"])?;
        let mut rng = rand::rng();
        let s: String = (0..n)
            .map(|_| ALPHANUM[rng.random_range(0..ALPHANUM.len())] as char)
            .collect();
        Ok(Value::String(s))
    });
    tera.register_function("RandDataWithSeed", |args: &Args| {
        let n = usize_arg("RandDataWithSeed", args, &["n"])?;
        let seed = string_arg("RandDataWithSeed", args, &["seed"])?;
        Ok(Value::String(rand_data_with_seed(n, &seed)))
    });
    tera.register_function("IfThenElse", |args: &Args| {
        match arg("IfThenElse", args, &["cond"])? {
            Value::Bool(true) => Ok(arg("IfThenElse", args, &["a", "then"])?.clone()),
            Value::Bool(false) => Ok(arg("IfThenElse", args, &["b", "else"])?.clone()),
            other => Err(err(format!(
                "IfThenElse: `cond` must be a boolean, got {other}"
            ))),
        }
    });
    for fname in ["IncludeFile", "IncludeEmbedFile"] {
        let root = root.clone();
        tera.register_function(fname, move |args: &Args| {
            let rel = string_arg(fname, args, &["path"])?;
            let path = resolve_confined(&root, &rel).map_err(|e| err(format!("{fname}: {e}")))?;
            std::fs::read_to_string(&path)
                .map(Value::String)
                .map_err(|e| err(format!("{fname}: cannot read {}: {e}", path.display())))
        });
    }
    tera.register_function("Loop", |args: &Args| {
        let n = usize_arg("Loop", args, &["n"])?;
        Ok(Value::Array(
            (0..n).map(|i| Value::Number(Number::from(i))).collect(),
        ))
    });
    for fname in ["SliceOfZeros", "Seq"] {
        tera.register_function(fname, move |args: &Args| {
            let n = usize_arg(fname, args, &["n"])?;
            Ok(Value::Array(vec![Value::Number(Number::from(0)); n]))
        });
    }
    tera.register_function("Lowercase", |args: &Args| {
        Ok(Value::String(
            string_arg("Lowercase", args, &["s"])?.to_lowercase(),
        ))
    });
    tera.register_filter("Lowercase", |v: &Value, _: &Args| match v {
        Value::String(s) => Ok(Value::String(s.to_lowercase())),
        other => Ok(Value::String(other.to_string().to_lowercase())),
    });
    fn split(s: &str, sep: &str) -> Value {
        Value::Array(s.split(sep).map(|p| Value::String(p.to_string())).collect())
    }
    tera.register_function("StringSplit", |args: &Args| {
        let s = string_arg("StringSplit", args, &["s"])?;
        let sep = args.get("sep").and_then(Value::as_str).unwrap_or(",");
        Ok(split(&s, sep))
    });
    tera.register_filter("StringSplit", |v: &Value, args: &Args| {
        let sep = args.get("sep").and_then(Value::as_str).unwrap_or(",");
        match v {
            Value::String(s) => Ok(split(s, sep)),
            other => Err(err(format!("StringSplit: expected a string, got {other}"))),
        }
    });
    tera.register_function("Concat", |args: &Args| {
        let items: Vec<Value> = if let Some(Value::Array(values)) = args.get("values") {
            values.clone()
        } else {
            let mut keys: Vec<&String> = args.keys().collect();
            keys.sort();
            keys.into_iter().map(|k| args[k].clone()).collect()
        };
        let out: String = items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        Ok(Value::String(out))
    });
    tera.register_function("YamlQuote", |args: &Args| {
        let s = string_arg("YamlQuote", args, &["s"])?;
        let tabs = match args.get("tabs") {
            Some(v) => to_f64("YamlQuote", v)? as usize,
            None => 0,
        };
        Ok(Value::String(yaml_quote(&s, tabs)?))
    });
    tera.register_filter("YamlQuote", |v: &Value, args: &Args| {
        let s = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let tabs = match args.get("tabs") {
            Some(t) => to_f64("YamlQuote", t)? as usize,
            None => 0,
        };
        Ok(Value::String(yaml_quote(&s, tabs)?))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(text: &str, vars: Value) -> Result<String, TemplateError> {
        let dir = std::env::temp_dir();
        let Value::Object(map) = vars else { panic!() };
        TemplateEngine::new(dir).render("t", text, &map)
    }

    fn r(text: &str) -> String {
        render(text, json!({"Nodes": 10, "S": "Ab,Cd", "F": 2.5})).unwrap()
    }

    #[test]
    fn default_param() {
        assert_eq!(r(r#"{{ DefaultParam(param="Nodes", default=3) }}"#), "10");
        assert_eq!(r(r#"{{ DefaultParam(param="Missing", default=3) }}"#), "3");
        assert_eq!(
            r(r#"{{ DefaultParam(param="Missing", default="x") }}"#),
            "x"
        );
        let kept = render(
            r#"{{ DefaultParam(param="Z", default=5) }}"#,
            json!({"Z": 0}),
        )
        .unwrap();
        assert_eq!(kept, "0");
        assert_eq!(r(r#"{{ Missing | default(value=7) }}"#), "7");
    }

    #[test]
    fn arithmetic() {
        assert_eq!(r("{{ AddInt(a=Nodes, b=2.7) }}"), "12");
        assert_eq!(r("{{ AddInt(values=[1, 2, 3]) }}"), "6");
        assert_eq!(r("{{ AddFloat(a=F, b=1) }}"), "3.5");
        assert_eq!(r("{{ SubtractInt(a=Nodes, b=3) }}"), "7");
        assert_eq!(r("{{ SubtractFloat(a=F, b=1) }}"), "1.5");
        assert_eq!(r("{{ MultiplyInt(a=250, b=0.5) }}"), "125");
        assert_eq!(r("{{ MultiplyFloat(a=F, b=2, c=2) }}"), "10");
        assert_eq!(r("{{ DivideInt(a=Nodes, b=3) }}"), "3");
        assert_eq!(r("{{ DivideFloat(a=Nodes, b=4) }}"), "2.5");
        assert_eq!(r("{{ Mod(a=Nodes, b=3) }}"), "1");
        assert_eq!(r("{{ Mod(a=-7, b=3) }}"), "-1");
        assert_eq!(r("{{ MaxInt(a=1, b=Nodes, c=3.9) }}"), "10");
        assert_eq!(r("{{ MaxFloat(values=[1, F]) }}"), "2.5");
        assert_eq!(r("{{ MinInt(a=Nodes, b=3.9) }}"), "3");
        assert_eq!(r("{{ MinFloat(a=F, b=3) }}"), "2.5");
        assert_eq!(r("{{ Ceil(x=F) }}"), "3");
        assert_eq!(r("{{ F | Ceil }}"), "3");
        assert_eq!(r(r#"{{ AddInt(a="4", b=1) }}"#), "5");
        assert!(render("{{ DivideInt(a=1, b=0) }}", json!({})).is_err());
        assert!(render("{{ Mod(a=1, b=0) }}", json!({})).is_err());
        assert!(
            render(r#"{{ AddInt(a="x", b=1) }}"#, json!({}))
                .unwrap_err()
                .message
                .contains("not a number")
        );
    }

    #[test]
    fn random() {
        for _ in 0..50 {
            let v: i64 = r("{{ RandInt(n=3) }}").parse().unwrap();
            assert!((0..=3).contains(&v));
            let v: i64 = r("{{ RandIntRange(a=5, b=7) }}").parse().unwrap();
            assert!((5..=7).contains(&v));
        }
        assert_eq!(r("{{ RandIntRange(a=9, b=7) }}"), "9");
        let d = r("{{ RandData(n=16) }}");
        assert_eq!(d.len(), 16);
        assert!(d.bytes().all(|b| b.is_ascii_alphanumeric()));
        let a = r(r#"{{ RandDataWithSeed(n=12, seed="abc") }}"#);
        assert_eq!(a, r(r#"{{ RandDataWithSeed(n=12, seed="abc") }}"#));
        assert_ne!(a, r(r#"{{ RandDataWithSeed(n=12, seed="abd") }}"#));
        assert_eq!(a.len(), 12);
        assert_eq!(r(r#"{{ RandDataWithSeed(n=0, seed="abc") }}"#), "");
    }

    #[test]
    fn control_and_strings() {
        assert_eq!(
            r(r#"{{ IfThenElse(cond=Nodes > 5, a="big", b="small") }}"#),
            "big"
        );
        assert_eq!(
            r(r#"{{ IfThenElse(cond=false, a="big", b="small") }}"#),
            "small"
        );
        assert!(render(r#"{{ IfThenElse(cond=1, a=1, b=2) }}"#, json!({})).is_err());
        assert_eq!(r("{% for i in Loop(n=3) %}{{ i }}{% endfor %}"), "012");
        assert_eq!(r("{{ SliceOfZeros(n=3) | length }}"), "3");
        assert_eq!(r("{% for z in Seq(n=2) %}{{ z }}{% endfor %}"), "00");
        assert_eq!(r("{{ Lowercase(s=S) }}"), "ab,cd");
        assert_eq!(r("{{ S | Lowercase }}"), "ab,cd");
        assert_eq!(r("{{ StringSplit(s=S) | join(sep=\"|\") }}"), "Ab|Cd");
        assert_eq!(r("{{ S | StringSplit | last }}"), "Cd");
        assert_eq!(r(r#"{{ Concat(a="x-", b=Nodes, c="-y") }}"#), "x-10-y");
        assert_eq!(r(r#"{{ Concat(values=["b", "a"]) }}"#), "ba");
        assert_eq!(r(r#"{{ YamlQuote(s="a: b") }}"#), "'a: b'");
        let multi = render(
            "k: {{ YamlQuote(s=T, tabs=1) }}",
            json!({"T": "x: 1\ny: 2\n"}),
        )
        .unwrap();
        assert_eq!(multi, "k: |\n    x: 1\n    y: 2");
        assert_eq!(r(r#"{{ "a: b" | YamlQuote }}"#), "'a: b'");
    }

    #[test]
    fn include_file_is_confined() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x.txt"), "hello").unwrap();
        let e = TemplateEngine::new(dir.path());
        let p = Params::new();
        assert_eq!(
            e.render("t", r#"{{ IncludeFile(path="sub/x.txt") }}"#, &p)
                .unwrap(),
            "hello"
        );
        assert_eq!(
            e.render("t", r#"{{ IncludeFile(path="/sub/../sub/x.txt") }}"#, &p)
                .unwrap(),
            "hello"
        );
        assert_eq!(
            e.render("t", r#"{{ IncludeEmbedFile(path="sub/x.txt") }}"#, &p)
                .unwrap(),
            "hello"
        );
        let bad = e
            .render("t", r#"{{ IncludeFile(path="../etc/passwd") }}"#, &p)
            .unwrap_err();
        assert!(bad.message.contains("escapes"), "{}", bad.message);
        assert!(
            e.render("t", r#"{{ IncludeFile(path="nope.txt") }}"#, &p)
                .is_err()
        );
    }

    #[test]
    fn go_templates_get_a_hint() {
        assert!(go_template_hint("{{$x := DefaultParam .X 1}}").contains("tera"));
        assert!(go_template_hint("a: {{ .Nodes }}").contains("Go template"));
        assert_eq!(go_template_hint("a: {{ Nodes }}"), "");
    }

    #[test]
    fn errors_carry_positions() {
        let e = render("a\nb {{ oops( }}\n", json!({})).unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(2), "{e:?}");
        let e = render("{{ undefined_var }}", json!({})).unwrap_err();
        assert!(e.message.contains("undefined_var"), "{}", e.message);
    }
}
