//! A tiny command-line parser (`--name value`, `--name=value`, repeatable
//! options, `--flag`), enough for the bench binaries without pulling in clap.

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};

#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, Vec<String>>,
    flags: Vec<String>,
}

impl Args {
    /// Parses `argv` (without the program name). `flags` lists the options that
    /// take no value; every other `--name` needs one.
    pub fn parse<I, S>(argv: I, flags: &[&str]) -> anyhow::Result<Args>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out = Args::default();
        let mut it = argv.into_iter().map(Into::into);
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument `{arg}` (options are written --name value)");
            };
            if let Some((name, value)) = name.split_once('=') {
                out.push(name, value.to_string());
            } else if flags.contains(&name) {
                out.flags.push(name.to_string());
            } else {
                let value = it
                    .next()
                    .ok_or_else(|| anyhow!("option --{name} needs a value"))?;
                out.push(name, value);
            }
        }
        Ok(out)
    }

    fn push(&mut self, name: &str, value: String) {
        self.values.entry(name.to_string()).or_default().push(value);
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value given for a repeatable option, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values
            .get(name)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The value of `name` parsed as `T`, or `default` when absent.
    pub fn parse_or<T>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.get(name) {
            Some(v) => v
                .parse()
                .with_context(|| format!("invalid value `{v}` for --{name}")),
            None => Ok(default),
        }
    }

    /// Fails on options that no caller asked about (typos).
    pub fn reject_unknown(&self, known: &[&str]) -> anyhow::Result<()> {
        for name in self.values.keys().chain(self.flags.iter()) {
            if !known.contains(&name.as_str()) {
                bail!("unknown option --{name}");
            }
        }
        Ok(())
    }
}

/// Parses `"1.5"` (seconds), `"250ms"`, `"2s"` or `"1m"`.
pub fn parse_duration(s: &str) -> anyhow::Result<std::time::Duration> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("invalid duration `{s}`"))?;
    if !v.is_finite() || v < 0.0 {
        bail!("invalid duration `{s}`");
    }
    Ok(std::time::Duration::from_secs_f64(v * scale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_values_flags_and_repeats() {
        let a = Args::parse(
            [
                "--connections",
                "200",
                "--header=a: b",
                "--header",
                "c: d",
                "--quiet",
            ],
            &["quiet"],
        )
        .unwrap();
        assert_eq!(a.parse_or("connections", 1usize).unwrap(), 200);
        assert_eq!(a.all("header"), vec!["a: b", "c: d"]);
        assert!(a.flag("quiet"));
        assert_eq!(a.parse_or("missing", 7u32).unwrap(), 7);
        assert!(
            a.reject_unknown(&["connections", "header", "quiet"])
                .is_ok()
        );
        assert!(a.reject_unknown(&["connections", "quiet"]).is_err());
    }

    #[test]
    fn refuses_bad_input() {
        assert!(Args::parse(["positional"], &[]).is_err());
        assert!(Args::parse(["--needs-value"], &[]).is_err());
        let a = Args::parse(["--n", "x"], &[]).unwrap();
        assert!(a.parse_or("n", 1u32).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
