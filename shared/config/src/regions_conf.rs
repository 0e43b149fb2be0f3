//! deploy/regions.conf, the region list of the local stack that ./dev, the bench and the tests read.
use std::num::ParseIntError;

/// One region of the local stack, as a line of deploy/regions.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub kafka: String,
    pub cassandra: String,
    pub api_port: u16,
    pub worker_port: u16,
    pub edge_port: u16,
}

impl Region {
    pub fn cql_contact(&self) -> String {
        format!("{}:9042", self.cassandra)
    }
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }
    pub fn edge_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.edge_port)
    }
    pub fn worker_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.worker_port)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegionsConfError {
    #[error("regions.conf line needs 6 fields: {line}")]
    MissingFields { line: String },
    #[error("bad port {port:?} in: {line}")]
    BadPort {
        port: String,
        line: String,
        #[source]
        source: ParseIntError,
    },
}

/// Every region, in file order; blank lines and `#` comments are skipped.
pub fn parse(text: &str) -> Result<Vec<Region>, RegionsConfError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 6 {
                return Err(RegionsConfError::MissingFields { line: l.into() });
            }
            let port = |s: &str| {
                s.parse::<u16>().map_err(|source| RegionsConfError::BadPort {
                    port: s.into(),
                    line: l.into(),
                    source,
                })
            };
            Ok(Region {
                name: f[0].into(),
                kafka: f[1].into(),
                cassandra: f[2].into(),
                api_port: port(f[3])?,
                worker_port: port(f[4])?,
                edge_port: port(f[5])?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_read_in_file_order_without_comments() {
        let text = "# name kafka cass api worker edge\n\neu 127.0.0.1:19092 127.0.0.2 8081 9181 8080\nus 127.0.0.1:29092 127.0.0.3 8082 9182 8090\n";
        let r = parse(text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].name, "us");
        assert_eq!(r[0].cql_contact(), "127.0.0.2:9042");
        assert_eq!(r[1].edge_url(), "http://127.0.0.1:8090");
    }

    #[test]
    fn a_short_region_line_is_an_error() {
        assert!(parse("eu 127.0.0.1:19092 127.0.0.2 8081\n").is_err());
    }

    #[test]
    fn a_port_that_is_not_a_number_is_an_error() {
        let error = parse("eu 127.0.0.1:19092 127.0.0.2 8081 9181 edge\n").unwrap_err();
        assert!(error.to_string().starts_with("bad port \"edge\""), "{error}");
    }
}
