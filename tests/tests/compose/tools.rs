//! Running the external tools the checks use (docker-compose, promtool) and scratch directories.
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use orders_tests::repo_root;

pub fn run(program: &str, args: &[&str], envs: &[(String, String)], remove: &[String]) -> Option<Output> {
    let mut command = Command::new(program);
    command.args(args).current_dir(repo_root());
    for (k, v) in envs {
        command.env(k, v);
    }
    for k in remove {
        command.env_remove(k);
    }
    command.output().ok()
}

pub fn promtool(args: &[&str]) -> Output {
    let out = run("promtool", args, &[], &[]).unwrap_or_else(|| {
        panic!(
            "promtool is not installed: .ci/run installs Debian's prometheus package, which ships it \
             (apt-get install prometheus)"
        )
    });
    assert!(
        out.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn scratch_dir(what: &str) -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("orders-{what}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
