//! Braiins OS on 4028: `pause` / `resume` only. Reboot, pools and the light need its gRPC /
//! REST / GraphQL APIs (miner-dialects §3b), which this agent does not speak yet.

use super::wire::{outcome, Wire};
use super::{unsupported, Action, ControlError, Sent};

pub(super) async fn execute(w: &Wire, action: &Action) -> Result<Sent, ControlError> {
    let cmd = match action {
        Action::Sleep => "pause",
        Action::Wake => "resume",
        other => return Err(unsupported("Braiins OS", other)),
    };
    outcome(w.command(cmd, None).await?, false, cmd)
}
