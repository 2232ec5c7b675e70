//! Avalon `ascset|0,<option>,<value>`: the parameter is one comma-joined string, never a JSON
//! array (C-20). Soft off/on take `1:<unix time>`; `softon` and `reboot` may close without a
//! reply, which counts as sent (to be verified). Pools change with `setpool` and a reboot
//! ([`super::avalon_pools`]).

use super::wire::{outcome, Wire};
use super::{avalon_pools, unsupported, Action, ControlError, Credentials, Sent};

/// The `ascset` parameter for an action.
pub(super) fn parameter(action: &Action, now_s: i64) -> Option<String> {
    Some(match action {
        Action::Sleep => format!("0,softoff,1:{now_s}"),
        Action::Wake => format!("0,softon,1:{now_s}"),
        Action::Reboot => "0,reboot,0".to_string(),
        Action::Light(on) => format!("0,led,1-{}", u8::from(*on)),
        _ => return None,
    })
}

pub(super) async fn execute(
    w: &Wire,
    action: &Action,
    creds: &Credentials,
) -> Result<Sent, ControlError> {
    if let Action::Pools(wanted) = action {
        return avalon_pools::replace(w, wanted, creds).await;
    }
    let Some(param) = parameter(action, chrono::Utc::now().timestamp()) else {
        return Err(unsupported("Avalon", action));
    };
    let answer = w.command("ascset", Some(&param)).await?;
    outcome(answer, action.may_drop_socket(), "ascset")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascset_parameter_is_one_comma_joined_string() {
        // C-20: `{"command":"ascset","parameter":"0,softoff,1:1712570000"}`.
        let p = parameter(&Action::Sleep, 1_712_570_000).unwrap();
        assert_eq!(p, "0,softoff,1:1712570000");
        let req = serde_json::json!({"command": "ascset", "parameter": p});
        assert!(req["parameter"].is_string());
        assert_eq!(parameter(&Action::Wake, 5).unwrap(), "0,softon,1:5");
        assert_eq!(parameter(&Action::Light(true), 5).unwrap(), "0,led,1-1");
    }
}
