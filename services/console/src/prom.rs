//! Reads the Prometheus text exposition format, as much of it as the console needs: samples with labels.
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Every sample line that parses; comments and lines that do not parse are skipped, so one odd
/// line from a service does not blank the console's charts.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    // An optional timestamp may follow the value.
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` and returns the labels and what follows the closing brace.
fn parse_labels(mut text: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        text = text.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after) = text.split_once('=')?;
        let body = after.trim_start().strip_prefix('"')?;
        let mut chars = body.char_indices();
        let mut value = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.insert(name.trim().to_string(), value);
        text = &body[end + 1..];
    }
}

fn parse_value(token: &str) -> Option<f64> {
    // Rust's float parser reads `+Inf`, `-Inf` and `NaN` as the exposition format writes them.
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_keep_their_labels_in_any_order_and_skip_comments() {
        let text = "# TYPE x counter\n\
                    orders_http_requests_total{method=\"POST\",route=\"/v1/orders\",status=\"201\",region=\"eu\"} 22\n\
                    \n\
                    orders_placed_total 13 1700000000000\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].name, "orders_http_requests_total");
        assert_eq!(samples[0].label("route"), Some("/v1/orders"));
        assert_eq!(samples[0].label("status"), Some("201"));
        assert_eq!(samples[0].value, 22.0);
        assert_eq!(samples[1].value, 13.0);
        assert!(samples[1].labels.is_empty());
    }

    #[test]
    fn escaped_quotes_backslashes_and_infinite_bounds_are_read() {
        let samples =
            parse("m{a=\"say \\\"hi\\\"\",b=\"c:\\\\d\\nx\",le=\"+Inf\"} +Inf\nh_bucket{le=\"0.5\",} 3\n");
        assert_eq!(samples[0].label("a"), Some("say \"hi\""));
        assert_eq!(samples[0].label("b"), Some("c:\\d\nx"));
        assert_eq!(
            samples[0].label("le").unwrap().parse::<f64>().unwrap(),
            f64::INFINITY
        );
        assert_eq!(samples[0].value, f64::INFINITY);
        assert_eq!(samples[1].label("le"), Some("0.5"));
    }

    #[test]
    fn a_broken_line_is_skipped_without_losing_the_others() {
        let samples = parse("good 1\nbad{a=\"unterminated} 2\nalso_bad\nfine{x=\"y\"} 3\n");
        let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["good", "fine"]);
    }
}
