//! InfluxQL answers as points (pure): the 1.x/2.x `/query` shape (`results` →
//! `series` with `columns` and `values`, time as epoch ns) and InfluxDB 3's
//! `/api/v3/query_influxql` shape (one flat object per row, `iox::measurement`,
//! tags as columns, time as RFC 3339 without a zone). Null cells are left out, so
//! a column that no line ever carried is simply absent.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// One row of an answer: the newest point of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub time_ns: i64,
    /// Non-null fields only.
    pub fields: BTreeMap<String, Value>,
}

impl Point {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.fields.get(key).and_then(Value::as_f64)
    }
    pub fn u64(&self, key: &str) -> Option<u64> {
        let v = self.fields.get(key)?;
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.fields.get(key).and_then(Value::as_bool)
    }
    /// The series this point belongs to: measurement and every tag.
    pub fn series_key(&self) -> String {
        let mut k = self.measurement.clone();
        for (t, v) in &self.tags {
            k.push('\u{1f}');
            k.push_str(t);
            k.push('=');
            k.push_str(v);
        }
        k
    }
}

/// What the server said instead of points.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnswerError {
    #[error("InfluxDB answered: {0}")]
    Server(String),
    #[error("InfluxDB's answer is not the JSON of an InfluxQL query: {0}")]
    Shape(String),
}

#[derive(Deserialize)]
struct V1Answer {
    #[serde(default)]
    results: Vec<V1Result>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct V1Result {
    #[serde(default)]
    series: Vec<V1Series>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct V1Series {
    name: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    columns: Vec<String>,
    #[serde(default)]
    values: Vec<Vec<Value>>,
}

/// Points of a 1.x/2.x `/query` answer (asked with `epoch=ns`).
pub fn parse_v1(body: &[u8]) -> Result<Vec<Point>, AnswerError> {
    let answer: V1Answer =
        serde_json::from_slice(body).map_err(|e| AnswerError::Shape(e.to_string()))?;
    if let Some(e) = answer.error {
        return Err(AnswerError::Server(e));
    }
    let mut out = Vec::new();
    for result in answer.results {
        if let Some(e) = result.error {
            return Err(AnswerError::Server(e));
        }
        for mut s in result.series {
            for row in std::mem::take(&mut s.values) {
                if let Some(p) = v1_row(&s, row) {
                    out.push(p);
                }
            }
        }
    }
    Ok(out)
}

fn v1_row(s: &V1Series, row: Vec<Value>) -> Option<Point> {
    let mut time_ns = None;
    let mut fields = BTreeMap::new();
    for (col, v) in s.columns.iter().zip(row) {
        match (col.as_str(), v) {
            (_, Value::Null) => {}
            ("time", v) => time_ns = time_of(&v),
            (_, v) => {
                fields.insert(col.clone(), v);
            }
        }
    }
    // Empty tag values are how 1.x says "this series has no such tag".
    let tags = s
        .tags
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(Point {
        measurement: s.name.clone(),
        tags,
        time_ns: time_ns?,
        fields,
    })
}

/// Points of an InfluxDB 3 `/api/v3/query_influxql?format=json` answer. Its rows do
/// not say which columns are tags: a column named in `fields` is a field, any other
/// text column a tag.
pub fn parse_v3(body: &[u8], fields: &dyn Fn(&str) -> bool) -> Result<Vec<Point>, AnswerError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| AnswerError::Shape(e.to_string()))?;
    let rows = match value {
        Value::Array(rows) => rows,
        Value::Object(o) => {
            let msg = o
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("an object");
            return Err(AnswerError::Server(msg.to_string()));
        }
        _ => return Err(AnswerError::Shape("not a list of rows".into())),
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Value::Object(cols) = row else {
            return Err(AnswerError::Shape("a row that is not an object".into()));
        };
        let mut p = Point {
            measurement: String::new(),
            tags: BTreeMap::new(),
            time_ns: 0,
            fields: BTreeMap::new(),
        };
        let mut time = None;
        for (col, v) in cols {
            match (col.as_str(), v) {
                (_, Value::Null) => {}
                ("iox::measurement", Value::String(m)) => p.measurement = m,
                ("time", v) => time = time_of(&v),
                (_, Value::String(s)) if !fields(&col) => {
                    if !s.is_empty() {
                        p.tags.insert(col, s);
                    }
                }
                (_, v) => {
                    p.fields.insert(col, v);
                }
            }
        }
        if let (Some(t), false) = (time, p.measurement.is_empty()) {
            p.time_ns = t;
            out.push(p);
        }
    }
    Ok(out)
}

/// Epoch ns, or RFC 3339 (with or without zone: InfluxDB 3 leaves out the `Z`).
fn time_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let zoned = if s.ends_with('Z') || s.contains('+') {
                s.clone()
            } else {
                format!("{s}Z")
            };
            let ts: jiff::Timestamp = zoned.parse().ok()?;
            i64::try_from(ts.as_nanosecond()).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer influxd 1.8 gave to the fleet's host query (recorded).
    const V1: &str = r#"{"results":[{"statement_id":0,"series":[{"name":"vm_metrics","tags":{"VMID":"2","host":"hv-b","name":"db","project":"","uuid":"u2"},"columns":["time","state","memory_used_kb","cpu_usage_percent","nosuch"],"values":[[1796425313598104247,"shutoff",null,null,null]]},{"name":"vm_features","tags":{"VMID":"1","host":"hv-a","name":"web","project":"shop","uuid":"u1"},"columns":["time","state","memory_used_kb","cpu_usage_percent","nosuch"],"values":[[1796425433598104247,null,null,12.5,null]]}]}]}"#;

    /// The answer InfluxDB 3 Core gave to the same query (recorded).
    const V3: &str = r#"[{"iox::measurement":"vm_features","time":"2026-12-04T23:03:53.598104247","VMID":"1","host":"hv-a","name":"web","project":"shop","uuid":"u1","cpu_usage_percent":12.5},{"iox::measurement":"vm_metrics","time":"2026-12-04T23:01:53.598104247","VMID":"2","host":"hv-b","name":"db","uuid":"u2","state":"shutoff"}]"#;

    fn known(c: &str) -> bool {
        ["state", "memory_used_kb", "cpu_usage_percent"].contains(&c)
    }

    #[test]
    fn both_shapes_give_the_same_points() {
        let mut a = parse_v1(V1.as_bytes()).unwrap();
        let mut b = parse_v3(V3.as_bytes(), &known).unwrap();
        a.sort_by_key(Point::series_key);
        b.sort_by_key(Point::series_key);
        assert_eq!(a, b);
        let web = &a[0];
        assert_eq!(web.measurement, "vm_features");
        assert_eq!(web.tag("project"), Some("shop"));
        assert_eq!(web.f64("cpu_usage_percent"), Some(12.5));
        assert_eq!(web.time_ns, 1_796_425_433_598_104_247);
        let db = &a[1];
        assert_eq!(db.str("state"), Some("shutoff"));
        assert_eq!(db.tag("project"), None, "an empty tag is no tag");
        assert!(!db.fields.contains_key("nosuch"), "nulls are left out");
    }

    #[test]
    fn server_errors_carry_the_servers_message() {
        let e = parse_v1(br#"{"results":[{"statement_id":0,"error":"database not found: x"}]}"#);
        assert_eq!(e, Err(AnswerError::Server("database not found: x".into())));
        let e = parse_v1(br#"{"error":"error parsing query: found EOF"}"#);
        assert!(matches!(e, Err(AnswerError::Server(m)) if m.contains("EOF")));
        let e = parse_v3(
            br#"{"error":"must provide only one InfluxQl statement per query"}"#,
            &known,
        );
        assert!(matches!(e, Err(AnswerError::Server(m)) if m.contains("one InfluxQl")));
        assert!(matches!(parse_v1(b"<html>"), Err(AnswerError::Shape(_))));
    }

    #[test]
    fn an_empty_answer_is_no_points() {
        assert_eq!(parse_v1(br#"{"results":[{"statement_id":0}]}"#), Ok(vec![]));
        assert_eq!(parse_v3(b"[]", &known), Ok(vec![]));
    }
}
