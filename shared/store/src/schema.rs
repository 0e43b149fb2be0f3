//! Applies the CQL schema files of `schemas/cql/` in name order and waits for schema agreement.
//!
//! The keyspace's replication lists every region's datacenter; files say `@REPLICATION@` where it goes,
//! so the region list stays in one place (deploy/regions.conf).
use std::path::Path;

use scylla::client::session::Session;

use crate::StoreError;

/// The replication map for a keyspace over the given datacenters, one full copy in each.
pub fn replication(datacenters: &[String]) -> String {
    let dcs: Vec<String> = datacenters.iter().map(|dc| format!("'{dc}': 1")).collect();
    format!("{{'class': 'NetworkTopologyStrategy', {}}}", dcs.join(", "))
}

/// Splits a CQL file into statements (on `;` at line ends), dropping `--` comments.
pub fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.split("--").next().unwrap_or("").trim_end();
        if line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_string());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Applies every `*.cql` file in `dir`, in name order. Statements must be idempotent (`IF NOT EXISTS`).
pub async fn apply_dir(session: &Session, dir: &Path, datacenters: &[String]) -> Result<usize, StoreError> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| StoreError::Schema {
            path: dir.display().to_string(),
            detail: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cql"))
        .collect();
    files.sort();
    let replication = replication(datacenters);
    let mut applied = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| StoreError::Schema {
            path: file.display().to_string(),
            detail: e.to_string(),
        })?;
        for statement in statements(&text) {
            let statement = statement.replace("@REPLICATION@", &replication);
            session
                .query_unpaged(statement.as_str(), ())
                .await
                .map_err(|e| StoreError::Schema {
                    path: file.display().to_string(),
                    detail: format!("{e}: {statement}"),
                })?;
            applied += 1;
        }
    }
    session
        .await_schema_agreement()
        .await
        .map_err(|e| StoreError::query("schema agreement", e))?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_split_at_semicolons_and_comments_dropped() {
        let text = "-- a comment\nCREATE TABLE a (x int PRIMARY KEY);\n\nCREATE TABLE b (\n  y int PRIMARY KEY -- why\n);\n";
        assert_eq!(
            statements(text),
            vec![
                "CREATE TABLE a (x int PRIMARY KEY)".to_string(),
                "CREATE TABLE b (\n  y int PRIMARY KEY\n)".to_string()
            ]
        );
    }

    #[test]
    fn replication_names_every_datacenter_once() {
        let r = replication(&["eu".into(), "us".into()]);
        assert_eq!(r, "{'class': 'NetworkTopologyStrategy', 'eu': 1, 'us': 1}");
    }
}
