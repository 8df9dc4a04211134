//! Typed measurement params: decoding a free-form [`Params`] map into a measurement's own
//! `serde` struct, with the leniencies CL2 configs need.
//!
//! - Integral floats (`5.0`, what YAML templating often produces) are accepted for integer
//!   fields: [`decode`] rewrites them to integers before deserializing.
//! - Durations are Go strings (`"5s"`, `"1m30s"`) via [`GoDuration`]; a bare number means
//!   seconds.
//! - Unknown keys are rejected with the key named (structs use `deny_unknown_fields`); the
//!   `action` key is removed before decoding and returned separately.

use crate::config::Params;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

use super::MeasurementError;

fn normalize(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                // Exact: |f| < 2^53.
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *v = serde_json::Value::from(i);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(normalize),
        serde_json::Value::Object(m) => m.values_mut().for_each(normalize),
        _ => {}
    }
}

/// Splits the `action` key off `params` and decodes the rest into `T`.
///
/// Errors name the method, the identifier and the offending key.
pub fn decode<T: DeserializeOwned>(
    method: &str,
    identifier: &str,
    params: &Params,
) -> Result<(String, T), MeasurementError> {
    let mut map = params.clone();
    let action = match map.remove("action") {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => {
            return Err(MeasurementError::invalid(
                method,
                identifier,
                format!("`action` must be a string, got {other}"),
            ));
        }
        None => String::new(),
    };
    map.remove(super::LOAD_LEVEL_PARAM);
    let mut v = serde_json::Value::Object(map);
    normalize(&mut v);
    let t = serde_json::from_value::<T>(v)
        .map_err(|e| MeasurementError::invalid(method, identifier, e.to_string()))?;
    Ok((action, t))
}

/// A duration written as a Go duration string (`"1m30s"`) or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// Seconds as a float.
    pub fn secs(&self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        GoDuration(d)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(f64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => parse_duration(&s)
                .map(GoDuration)
                .map_err(serde::de::Error::custom),
            Raw::N(n) if n >= 0.0 && n.is_finite() => Ok(GoDuration(Duration::from_secs_f64(n))),
            Raw::N(n) => Err(serde::de::Error::custom(format!("invalid duration {n}"))),
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// Parses a Go duration string (`300ms`, `1h2m3.5s`, `0`); see [`crate::duration`].
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    crate::duration::parse_go_duration(input).map_err(|e| e.to_string())
}

/// Formats a duration in Go syntax (`1m30s`, `500ms`, `0s`); see [`crate::duration`].
pub fn format_duration(d: Duration) -> String {
    crate::duration::format_go_duration(d)
}

/// CL2's object selector params (`namespace`, `labelSelector`, `fieldSelector`), flattened into
/// measurement params structs with `#[serde(flatten)]`-free copies; use [`Selector::list_params`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Namespace; empty = all namespaces.
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
}

impl Selector {
    /// Builds a selector.
    pub fn new(namespace: Option<&str>, label: Option<&str>, field: Option<&str>) -> Self {
        Self {
            namespace: namespace.unwrap_or_default().to_string(),
            label_selector: label.unwrap_or_default().to_string(),
            field_selector: field.unwrap_or_default().to_string(),
        }
    }

    /// `ListParams` with the label and field selectors set.
    pub fn list_params(&self) -> kube::api::ListParams {
        let mut lp = kube::api::ListParams::default();
        if !self.label_selector.is_empty() {
            lp = lp.labels(&self.label_selector);
        }
        if !self.field_selector.is_empty() {
            lp = lp.fields(&self.field_selector);
        }
        lp
    }

    /// Watcher config with the label and field selectors set.
    pub fn watcher_config(&self) -> kube::runtime::watcher::Config {
        let mut wc = kube::runtime::watcher::Config::default();
        if !self.label_selector.is_empty() {
            wc = wc.labels(&self.label_selector);
        }
        if !self.field_selector.is_empty() {
            wc = wc.fields(&self.field_selector);
        }
        wc
    }

    /// `Api` for a namespaced resource, all namespaces when `namespace` is empty.
    pub fn api<K>(&self, client: &kube::Client) -> kube::Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        if self.namespace.is_empty() {
            kube::Api::all(client.clone())
        } else {
            kube::Api::namespaced(client.clone(), &self.namespace)
        }
    }

    /// Human description for messages: `namespace=a labelSelector=x`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.namespace.is_empty() {
            parts.push(format!("namespace={}", self.namespace));
        }
        if !self.label_selector.is_empty() {
            parts.push(format!("labelSelector={}", self.label_selector));
        }
        if !self.field_selector.is_empty() {
            parts.push(format!("fieldSelector={}", self.field_selector));
        }
        if parts.is_empty() {
            "all pods".into()
        } else {
            parts.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct P {
        #[serde(default)]
        count: u32,
        #[serde(default)]
        timeout: Option<GoDuration>,
    }

    fn params(v: serde_json::Value) -> Params {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn decode_accepts_integral_floats_and_go_durations() {
        let (action, p): (String, P) = decode(
            "M",
            "id",
            &params(
                serde_json::json!({"action": "start", "count": 5.0, "timeout": "1m30s",
                "loadLevel": "10%"}),
            ),
        )
        .unwrap();
        assert_eq!(action, "start");
        assert_eq!(p.count, 5);
        assert_eq!(p.timeout, Some(GoDuration(Duration::from_secs(90))));
    }

    #[test]
    fn decode_names_unknown_key() {
        let err = decode::<P>("M", "id", &params(serde_json::json!({"cuont": 1}))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cuont"), "{msg}");
        assert!(msg.contains("M/id"), "{msg}");
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1h2m3s").unwrap(), Duration::from_secs(3723));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1x").is_err());
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
    }
}
