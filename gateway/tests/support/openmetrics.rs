//! A small strict OpenMetrics text parser for the tests: a scrape must be
//! well formed (families declared once with HELP and TYPE before their
//! samples, sample names that belong to their family, quoted and escaped
//! label values, numeric values, `# EOF` last), or the parse fails with
//! the line at fault.

use std::collections::{BTreeMap, HashSet};

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its full name (`edgevisor_uplink_acked_total`).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Family name to type.
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// The value of the sample `name` whose labels include every pair in
    /// `labels`; `None` if there is none, panics if several match.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
        found.first().map(|s| s.value)
    }
}

/// Parses `text`, or says which line is wrong and why.
pub fn parse(text: &str) -> Result<Scrape, String> {
    let mut scrape = Scrape::default();
    let mut family: Option<(String, String)> = None;
    let mut declared = HashSet::new();
    let mut ended = false;
    for (n, line) in text.lines().enumerate() {
        let at = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        if ended {
            return Err(at("text after # EOF"));
        }
        if line == "# EOF" {
            ended = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let tail = parts.next().unwrap_or("");
            match kind {
                "HELP" => {
                    if !declared.insert(name.to_string()) {
                        return Err(at("family declared twice"));
                    }
                    family = Some((name.to_string(), String::new()));
                }
                "TYPE" => match &mut family {
                    Some((f, t)) if f == name && t.is_empty() => {
                        if ![
                            "counter",
                            "gauge",
                            "info",
                            "stateset",
                            "histogram",
                            "summary",
                            "unknown",
                            "gaugehistogram",
                        ]
                        .contains(&tail)
                        {
                            return Err(at("unknown type"));
                        }
                        *t = tail.to_string();
                        scrape.types.insert(name.to_string(), tail.to_string());
                    }
                    _ => return Err(at("TYPE without its HELP just before")),
                },
                "UNIT" => {}
                _ => return Err(at("unknown comment")),
            }
            continue;
        }
        let Some((fname, ftype)) = &family else {
            return Err(at("sample before any family"));
        };
        let (name, labels, rest) = split_sample(line).ok_or_else(|| at("malformed sample"))?;
        let belongs = match ftype.as_str() {
            "counter" => name == format!("{fname}_total") || name == format!("{fname}_created"),
            _ => name == *fname,
        };
        if !belongs {
            return Err(at(&format!("sample outside its family {fname} ({ftype})")));
        }
        let value_text = rest.split(' ').next().unwrap_or("");
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| at("value is not a number"))?,
        };
        if ftype == "counter" && value < 0.0 {
            return Err(at("negative counter"));
        }
        scrape.samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    if !ended {
        return Err("no # EOF at the end".into());
    }
    Ok(scrape)
}

/// `name{k="v",...} rest` -> parts; `None` when malformed.
fn split_sample(line: &str) -> Option<(String, BTreeMap<String, String>, &str)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        loop {
            let (start, c) = chars.next()?;
            if c == '}' {
                rest = &body[start + 1..];
                break;
            }
            let eq = body[start..].find("=\"")? + start;
            let key = &body[start..eq];
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            while chars.peek()?.0 < eq + 2 {
                chars.next();
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c @ ('"' | '\\') => value.push(c),
                        _ => return None,
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            if labels.insert(key.to_string(), value).is_some() {
                return None;
            }
            match chars.peek()?.1 {
                ',' => {
                    chars.next();
                }
                '}' => {}
                _ => return None,
            }
        }
    }
    Some((name.to_string(), labels, rest.strip_prefix(' ')?))
}

#[test]
fn the_parser_takes_good_text_and_refuses_bad() {
    let good = "# HELP a_b A.\n# TYPE a_b counter\na_b_total{x=\"1\",y=\"q\\\"z\"} 3\n# HELP g G.\n# TYPE g gauge\ng 1.5\n# EOF\n";
    let scrape = parse(good).unwrap();
    assert_eq!(scrape.value("a_b_total", &[("y", "q\"z")]), Some(3.0));
    assert_eq!(scrape.value("g", &[]), Some(1.5));
    for bad in [
        "# HELP a A.\n# TYPE a counter\na 1\n# EOF\n",
        "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n# EOF\n",
        "# HELP a A.\n# TYPE a gauge\na one\n# EOF\n",
        "# HELP a A.\n# TYPE a gauge\na 1\n",
        "b 1\n# EOF\n",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
