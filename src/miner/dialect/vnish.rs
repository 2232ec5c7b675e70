//! VNish (and the NiceHash and asicdip images built on it) on Antminer hardware: stock-shaped
//! replies read by [`antminer::read`]. The firmware tag rides in the model name,
//! `"Antminer S9 (vnish 3.8.6)"`; newer builds add per-chain power (`chain_consumptionN`) and a
//! miner `state` ("mining", "stopped", "failure") to `stats`.

use serde_json::Value;

use super::{antminer, Command, Replies};
use crate::miner::reply::{self, field_str, num};
use crate::model::{FirmwareKind, MinerStats, PowerMode};

pub fn normalize(r: &Replies) -> MinerStats {
    let mut s = antminer::read(r);
    let ty = antminer::version_block(r)
        .and_then(|v| field_str(v, "Type"))
        .unwrap_or("");
    // "(vnish 3.8.6)" → "vnish 3.8.6".
    let tag = ty
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inner, _)| inner.trim())
        .filter(|t| t.to_ascii_lowercase().contains("vnish"));
    if let Some(tag) = tag {
        s.identity.firmware = Some(tag.to_string());
    }
    s.identity.firmware_kind = Some(FirmwareKind::Vnish);

    let data = r
        .get(Command::Stats)
        .map(|v| reply::section(v, "STATS"))
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_object)
        .find(|o| !o.contains_key("Type"));
    if let Some(data) = data {
        if s.power.is_none() {
            let per_chain: Vec<f64> = data
                .iter()
                .filter(|(k, _)| k.starts_with("chain_consumption"))
                .filter_map(|(_, v)| num(v))
                .filter(|&w| w > 0.0)
                .collect();
            if !per_chain.is_empty() {
                s.power = Some(per_chain.iter().sum());
            }
        }
        match field_str(data, "state").map(str::trim) {
            Some(st) if st.eq_ignore_ascii_case("stopped") => {
                s.power_mode = Some(PowerMode::Sleeping);
            }
            Some(st) if st.eq_ignore_ascii_case("failure") => s.errors.push(format!("state: {st}")),
            _ => {}
        }
    }
    s
}
