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
    // Whatever its type: a password sent as a number or an object is still a password.
    let hide = |pass: &mut Value| {
        if !(pass.is_null() || pass.as_str() == Some("")) {
            *pass = json!(HIDDEN);
        }
    };
    if let Some(pass) = args.get_mut("password") {
        hide(pass);
    }
    if let Some(pools) = args.get_mut("pools").and_then(Value::as_array_mut) {
        for pass in pools.iter_mut().filter_map(|p| p.get_mut("pass")) {
            hide(pass);
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
    fn a_password_of_another_type_is_hidden_too() {
        let args = json!({"password": 73311, "pools": [
            {"url": "stratum+tcp://a:3333", "pass": 90210},
            {"url": "stratum+tcp://b:3333", "pass": ["s3cret"]},
            {"url": "stratum+tcp://c:3333", "pass": null},
        ]});
        let s = start("c-4", "change-pools", &args).to_string();
        for secret in ["73311", "90210", "s3cret"] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
        assert!(s.contains(r#""pass":null"#), "{s}");
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
