//! The shared-state example end to end: `examples/agents/agents.sh` runs one delivery as three
//! `pipe` processes in separate directories that share only a real PostgreSQL and a real
//! SeaweedFS S3 store; a bad release is rolled back by another agent than the one that built it.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn three_agents_share_one_delivery_through_postgres_and_s3() {
    let output = Command::new("bash")
        .arg("examples/agents/agents.sh")
        .env("PIPE_BIN", env!("CARGO_BIN_EXE_pipe"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{all}");
    assert!(
        stdout.contains("staging was rolled back by agent A to rel-r1"),
        "{all}"
    );
    assert!(stdout.contains("audit log OK"), "{all}");
    assert!(stdout.trim_end().ends_with("agents: ok"), "{all}");
}
