//! The bodies of start / update / done (protocol §2.5).

use serde_json::{json, Value};

/// Foreman cuts `message` to 255 characters; we do it ourselves so nothing is lost silently.
const MAX_MESSAGE: usize = 255;

/// Stands in for a pool password in the start echo.
const HIDDEN: &str = "***";

/// The start: an echo of the command as received, the miner login password and pool
/// passwords (`pools[].pass`) hidden.
pub fn start(id: &str, command: &str, args: &Value) -> Value {
    let mut args = args.clone();
    if let Some(pass) = args.get_mut("password") {
        if pass.as_str().is_some_and(|s| !s.is_empty()) {
            *pass = json!(HIDDEN);
        }
    }
    if let Some(pools) = args.get_mut("pools").and_then(Value::as_array_mut) {
        for pass in pools.iter_mut().filter_map(|p| p.get_mut("pass")) {
            if pass.as_str().is_some_and(|s| !s.is_empty()) {
                *pass = json!(HIDDEN);
            }
        }
    }
    json!({"id": id, "command": command, "args": args})
}

pub fn update(command: &str, update: Value) -> Value {
    json!({"command": command, "update": update})
}

pub fn done(command: &str, success: bool, message: Option<&str>, result: Option<Value>) -> Value {
    let message: Option<String> = message.map(|m| m.chars().take(MAX_MESSAGE).collect());
    json!({
        "command": command,
        "result": result,
        "status": {
            "type": if success { "success" } else { "failed" },
            "message": message,
            "details": Value::Null,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_echoes_the_command_without_pool_passwords() {
        let args = json!({"ip": "127.0.0.1", "pools": [
            {"url": "stratum+tcp://a:3333", "user": "w.1", "pass": "s3cret-pool-pw"},
            {"url": "stratum+tcp://b:3333", "user": "w.1", "pass": ""},
        ]});
        let s = start("c-1", "change-pools", &args);
        assert!(!s.to_string().contains("s3cret-pool-pw"), "{s}");
        assert_eq!(s["args"]["pools"][0]["pass"], "***");
        assert_eq!(s["args"]["pools"][0]["url"], "stratum+tcp://a:3333");
        assert_eq!(s["args"]["pools"][1]["pass"], "");
        assert_eq!(s["args"]["ip"], "127.0.0.1");
        let s = start(
            "c-3",
            "reboot",
            &json!({"username": "root", "password": "web-pw"}),
        );
        assert_eq!(s["args"], json!({"username": "root", "password": "***"}));
        assert_eq!(
            start("c-2", "reboot", &json!({"ip": "x"}))["args"],
            json!({"ip": "x"})
        );
    }

    #[test]
    fn done_has_foremans_shape() {
        let d = done("reboot", false, Some(&"x".repeat(300)), None);
        assert_eq!(d["status"]["type"], "failed");
        assert_eq!(d["status"]["message"].as_str().unwrap().len(), 255);
        assert!(d["result"].is_null());
        assert!(d["status"]["details"].is_null());
    }
}
