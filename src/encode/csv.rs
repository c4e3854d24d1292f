//! `--format csv`: a header row, then one row per VM per collection (pure).
//!
//! RFC 4180: fields holding a comma, a double quote, CR or LF are quoted, with
//! quotes doubled. Rows end in `\n` (what `virt-top --csv` writes).

use super::record::{cells, header, Value};
use crate::encode::line_protocol::EncodeCtx;
use crate::model::VmSnapshot;

/// The header row (no trailing newline).
pub fn header_row(ctx: &EncodeCtx) -> String {
    join(header(ctx).iter().map(String::as_str))
}

/// One VM's row (no trailing newline).
pub fn row(ctx: &EncodeCtx, vm: &VmSnapshot) -> String {
    let cells: Vec<String> = cells(ctx, vm)
        .into_iter()
        .map(|v| match v {
            Value::Null => String::new(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => s,
        })
        .collect();
    join(cells.iter().map(String::as_str))
}

/// One CSV row of `fields`, quoted where RFC 4180 asks (also the fleet's host rows).
pub fn join<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::record::tests::ctx;
    use crate::fixtures::sampled as vm;
    use crate::model::DomainState;

    #[test]
    fn parses_back_with_a_csv_reader_hostile_name_included() {
        let c = ctx(&[]);
        let name = "web 01,env=prod \"x\"\\y";
        let text = format!(
            "{}\n{}\n{}\n",
            header_row(&c),
            row(&c, &vm(name, DomainState::Running, true)),
            row(&c, &vm("off", DomainState::Shutoff, false))
        );
        let mut r = ::csv::Reader::from_reader(text.as_bytes());
        let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(h, header(&c));
        let rows: Vec<::csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        let col = |n: &str| h.iter().position(|x| x == n).unwrap();
        assert_eq!(&rows[0][col("name")], name);
        assert_eq!(&rows[0][col("cpu_usage_percent")], "12.5");
        assert_eq!(&rows[0][col("cpu_angle_deg")], "");
        assert_eq!(&rows[1][col("state")], "shutoff");
        assert_eq!(&rows[1][col("VMID")], "");
    }
}
