//! `--format json`: one object per VM per collection, one per line (pure).

use serde_json::{Map, Number, Value as Json};

use super::record::{cells, header, Value};
use crate::encode::line_protocol::EncodeCtx;
use crate::model::VmSnapshot;

/// One line of JSON (no trailing newline) holding every column of the record.
pub fn object(ctx: &EncodeCtx, vm: &VmSnapshot) -> String {
    let mut map = Map::new();
    for (k, v) in header(ctx).into_iter().zip(cells(ctx, vm)) {
        let v = match v {
            Value::Null => Json::Null,
            Value::Int(i) => Json::from(i),
            Value::Float(f) => Number::from_f64(f).map_or(Json::Null, Json::Number),
            Value::Str(s) => Json::String(s),
        };
        map.insert(k, v);
    }
    Json::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::record::tests::ctx;
    use crate::fixtures::sampled as vm;
    use crate::model::DomainState;

    #[test]
    fn one_object_per_line_with_the_readme_names_and_hostile_names_intact() {
        let name = "web 01,env=prod \"x\"\\y\u{e9}";
        let line = object(
            &ctx(&[("dc", "fra1")]),
            &vm(name, DomainState::Running, true),
        );
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["name"], name);
        assert_eq!(v["dc"], "fra1");
        assert_eq!(v["VMID"], 7);
        assert_eq!(v["state"], "running");
        assert_eq!(v["cpu_usage_percent"], 12.5);
        assert_eq!(v["timestamp_ns"], 1_699_868_400_123_456_789_i64);
        assert!(v["cpu_angle_deg"].is_null());
        assert_eq!(
            v.as_object().unwrap().len(),
            crate::encode::record::COLUMNS.len() + 1
        );
    }
}
