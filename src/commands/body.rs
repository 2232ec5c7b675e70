//! The bodies of start / update / done (protocol §2.5).

use serde_json::{json, Value};

/// Foreman cuts `message` to 255 characters; we do it ourselves so nothing is lost silently.
const MAX_MESSAGE: usize = 255;

/// The start: an echo of the command as received.
pub fn start(id: &str, command: &str, args: &Value) -> Value {
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
    fn done_has_foremans_shape() {
        let d = done("reboot", false, Some(&"x".repeat(300)), None);
        assert_eq!(d["status"]["type"], "failed");
        assert_eq!(d["status"]["message"].as_str().unwrap().len(), 255);
        assert!(d["result"].is_null());
        assert!(d["status"]["details"].is_null());
    }
}
