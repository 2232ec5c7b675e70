//! A bad config is refused with a one-line error naming the key, and touches no state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn run_with(config: &str) -> (i32, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pickaxe.db");
    std::fs::write(&db, b"precious buffered data").unwrap();
    let path = dir.path().join("pickaxe.toml");
    std::fs::write(&path, config.replace("DB", &db.display().to_string())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pickaxe"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    // The state database is untouched and nothing was created beside it.
    assert_eq!(std::fs::read(&db).unwrap(), b"precious buffered data");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "unexpected files: {names:?}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    )
}

const GOOD: &str = r#"[foreman]
base_url = "https://api.foreman.mn"
api_key = "SECRET-KEY-123"
client_id = "1"
[poll]
interval = "60s"
[store]
path = "DB"
"#;

fn assert_refused(config: &str, expected: &str) {
    let (code, stderr, _dir) = run_with(config);
    assert_eq!(code, 78, "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
    assert!(
        lines[0].contains(expected),
        "{:?} does not name {expected:?}",
        lines[0]
    );
    assert!(
        !stderr.contains("SECRET-KEY-123"),
        "the key leaked: {stderr}"
    );
}

#[test]
fn missing_key() {
    assert_refused(
        &GOOD.replace("client_id = \"1\"\n", ""),
        "foreman.client_id: missing",
    );
    assert_refused(
        &GOOD.replace("api_key = \"SECRET-KEY-123\"\n", ""),
        "foreman.api_key: missing",
    );
}

#[test]
fn http_url() {
    assert_refused(
        &GOOD.replace("https://", "http://"),
        "foreman.base_url: must use https",
    );
}

#[test]
fn unknown_field() {
    assert_refused(
        &GOOD.replace("[poll]\n", "[poll]\nintervall = \"5s\"\n"),
        "poll.intervall: unknown key",
    );
}

#[test]
fn negative_interval() {
    assert_refused(
        &GOOD.replace("\"60s\"", "\"-60s\""),
        "poll.interval: invalid duration",
    );
}
