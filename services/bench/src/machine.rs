//! The facts every result file records: the machine, the versions, the command line and build.
use std::process::Command;

use serde::Serialize;

use crate::stack::Stack;

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub machine: Machine,
    pub versions: Versions,
    pub command_line: String,
    /// The profile this bench binary was built with.
    pub build_profile: String,
    /// The profile of the running API, from the path of its executable (target/<profile>/orders-api).
    pub services_profile: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: u32,
    pub memory_gib: f64,
    pub cpu_model: String,
    pub hostname: String,
    pub kernel: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub rustc: String,
    pub kafka: String,
    pub cassandra: String,
    pub orders_bench: String,
}

impl Environment {
    pub fn collect(stack: &Stack) -> Environment {
        Environment {
            machine: Machine {
                cores: command_output("nproc", &[])
                    .and_then(|s| s.parse().ok())
                    .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get() as u32))
                    .unwrap_or(0),
                memory_gib: std::fs::read_to_string("/proc/meminfo")
                    .ok()
                    .and_then(|t| mem_total_gib(&t))
                    .unwrap_or(0.0),
                cpu_model: std::fs::read_to_string("/proc/cpuinfo")
                    .ok()
                    .and_then(|t| cpu_model(&t))
                    .unwrap_or_else(|| "unknown".into()),
                hostname: command_output("hostname", &[]).unwrap_or_default(),
                kernel: command_output("uname", &["-r"]).unwrap_or_default(),
            },
            versions: Versions {
                rustc: env!("BENCH_RUSTC_VERSION").to_string(),
                kafka: stack.dev_version("KAFKA_VERSION", "4.3.1"),
                cassandra: stack.dev_version("CASSANDRA_VERSION", "5.0.6"),
                orders_bench: env!("CARGO_PKG_VERSION").to_string(),
            },
            command_line: command_line(std::env::args()),
            build_profile: env!("BENCH_BUILD_PROFILE").to_string(),
            services_profile: services_profile(stack),
        }
    }
}

fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `MemTotal:       24576000 kB` in GiB.
pub fn mem_total_gib(meminfo: &str) -> Option<f64> {
    let kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((kb / 1024.0 / 1024.0 * 10.0).round() / 10.0)
}

pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The command line as a shell would need it typed again.
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    args.into_iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "debug" or "release", from where `./dev` started the first region's API.
fn services_profile(stack: &Stack) -> String {
    let Some(region) = stack.regions.first() else {
        return "unknown".into();
    };
    let pid_file = stack.root.join(format!(".dev/pids/{}-api.pid", region.name));
    let exe = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok());
    match exe {
        Some(path) => path
            .parent()
            .and_then(|d| d.file_name())
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        None => "unknown (API process not found)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_meminfo_in_gib() {
        let text = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n";
        assert_eq!(mem_total_gib(text), Some(23.4));
        assert_eq!(mem_total_gib("nothing"), None);
    }

    #[test]
    fn the_cpu_model_is_the_first_model_name() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_model(text).as_deref(), Some("AMD EPYC 7B13"));
    }

    #[test]
    fn the_command_line_quotes_what_a_shell_would_split() {
        let args = ["orders-bench", "drill", "region-eu", "--note", "it's a test"].map(String::from);
        assert_eq!(
            command_line(args),
            r"orders-bench drill region-eu --note 'it'\''s a test'"
        );
    }
}
