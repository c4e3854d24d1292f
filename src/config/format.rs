//! `--format`: the encoding of `--output` (line protocol, JSON or CSV).

use std::fmt;
use std::str::FromStr;

/// The encoding of `--output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// InfluxDB line protocol: four measurements per VM.
    #[default]
    Lp,
    /// One JSON object per VM per collection, one per line (NDJSON).
    Json,
    /// A header row, then one row per VM per collection.
    Csv,
}

impl Format {
    pub const NAMES: [&'static str; 3] = ["lp", "json", "csv"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lp => "lp",
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }
}

impl Format {
    /// For messages: `line protocol`, `JSON` or `CSV`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Lp => "line protocol",
            Self::Json => "JSON",
            Self::Csv => "CSV",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format '{0}': use lp, json or csv")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lp" | "line-protocol" | "influx" => Ok(Self::Lp),
            "json" | "ndjson" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_named() {
        for n in Format::NAMES {
            assert_eq!(n.parse::<Format>().unwrap().as_str(), n);
        }
        assert_eq!("JSON".parse::<Format>(), Ok(Format::Json));
        let e = "xml".parse::<Format>().unwrap_err().to_string();
        assert!(e.contains("'xml'") && e.contains("lp, json or csv"), "{e}");
    }
}
