//! Home Assistant MQTT discovery: retained config messages that make every miner a device
//! whose sensors read the compact metrics message, and the agent a device with a
//! connectivity sensor. Pure builders, no I/O: the publisher decides when to send them
//! (on change, see [`Discovery::miner_key`], and again when HA announces `online` on
//! `homeassistant/status`).
//!
//! Topics use the per-component form `<discovery_prefix>/<component>/<node_id>/<object_id>/config`,
//! which every HA version understands. Payloads use full key names and leave out absent values
//! (HA's schema rejects `null` where it expects a string).

use serde_json::{json, Map, Value};

use crate::foreman::metrics::Sample;
use crate::foreman::paths::AGENT_VERSION;
use crate::model::PowerMode;

/// HA's own default discovery prefix.
pub const DEFAULT_DISCOVERY_PREFIX: &str = "homeassistant";

/// Where discovery goes and what it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// HA's discovery prefix, `homeassistant` unless HA was configured otherwise.
    pub discovery_prefix: String,
    /// Prefix of this agent's own topics (`<prefix>/status`, `<prefix>/miners/...`).
    pub topic_prefix: String,
    pub pickaxe_id: String,
}

/// One entity of a device, before it becomes a config message.
struct Entity {
    /// `sensor` or `binary_sensor`.
    component: &'static str,
    /// Last topic segment and suffix of the unique_id; only `[a-z0-9_]`.
    object_id: String,
    name: String,
    value_template: String,
    /// Component-specific keys (unit, device_class, state_class, payloads...).
    extra: Value,
}

impl Discovery {
    /// Discovery under HA's default prefix.
    pub fn new(topic_prefix: impl Into<String>, pickaxe_id: impl Into<String>) -> Self {
        Discovery {
            discovery_prefix: DEFAULT_DISCOVERY_PREFIX.to_owned(),
            topic_prefix: topic_prefix.into(),
            pickaxe_id: pickaxe_id.into(),
        }
    }

    /// Retained config messages (topic, JSON payload) announcing one miner as an HA device
    /// with its sensors. Sensors for values the miner does not report are left out.
    pub fn miner(&self, sample: &Sample) -> Vec<(String, String)> {
        let node_id = self.miner_node_id(sample);
        let common = json!({
            "state_topic": self.miner_topic(sample, "metrics"),
            "availability": self.miner_availability(sample),
            "availability_mode": "all",
            "device": self.miner_device(sample),
        });
        miner_entities(sample)
            .into_iter()
            .map(|entity| self.config(&node_id, entity, &common))
            .collect()
    }

    /// The agent itself as a device: a connectivity binary_sensor on `<prefix>/status`
    /// (retained `online`, last will `offline`). No availability: offline is its state.
    pub fn agent(&self) -> Vec<(String, String)> {
        let node_id = self.agent_identifier();
        let common = json!({
            "state_topic": self.status_topic(),
            "device": {
                "identifiers": [self.agent_identifier()],
                "name": format!("Pickaxe {}", self.pickaxe_id),
                "manufacturer": "Pickaxe",
                "model": "Pickaxe agent",
                "sw_version": AGENT_VERSION,
            },
        });
        let status = Entity {
            component: "binary_sensor",
            object_id: "status".to_owned(),
            name: "Status".to_owned(),
            value_template: "{{ value }}".to_owned(),
            extra: json!({
                "device_class": "connectivity",
                "payload_on": "online",
                "payload_off": "offline",
            }),
        };
        vec![self.config(&node_id, status, &common)]
    }

    /// A stable key for "has this miner's discovery changed": everything [`Self::miner`]
    /// depends on (identity, address, which sensors exist), so the caller republishes only
    /// when it changes.
    pub fn miner_key(sample: &Sample) -> String {
        let s = &sample.stats;
        let id = &s.identity;
        format!(
            "{}|{}|{:?}|{:?}|{:?}|{:?}|power={}|inlet={}|outlet={}|fans={}",
            sample.ip,
            sample.port,
            id.mac.as_deref().and_then(mac_hex),
            id.make,
            id.model,
            id.firmware,
            s.power.is_some(),
            s.inlet_temp.is_some(),
            s.outlet_temp.is_some(),
            rpm_fan_count(sample),
        )
    }

    /// Empty retained payloads for the configs of `previous` that `current` no longer has
    /// (a fan gone, a MAC learned), so HA deletes those entities instead of keeping them
    /// unavailable forever. Pass an empty `current` to remove a device entirely.
    pub fn removals(
        previous: &[(String, String)],
        current: &[(String, String)],
    ) -> Vec<(String, String)> {
        previous
            .iter()
            .filter(|(topic, _)| !current.iter().any(|(t, _)| t == topic))
            .map(|(topic, _)| (topic.clone(), String::new()))
            .collect()
    }

    /// Node id of a miner, also its device identifier: the MAC when known (IPs move with
    /// DHCP), else this agent plus the address.
    fn miner_node_id(&self, sample: &Sample) -> String {
        match sample.stats.identity.mac.as_deref().and_then(mac_hex) {
            Some(hex) => format!("pickaxe_mac_{hex}"),
            None => sanitize(&format!(
                "pickaxe_{}_{}_{}",
                self.pickaxe_id, sample.ip, sample.port
            )),
        }
    }

    /// The agent's device identifier, which miners name as `via_device`.
    fn agent_identifier(&self) -> String {
        sanitize(&format!("pickaxe_{}", self.pickaxe_id))
    }

    fn status_topic(&self) -> String {
        format!("{}/status", self.topic_prefix)
    }

    fn miner_topic(&self, sample: &Sample, leaf: &str) -> String {
        format!(
            "{}/miners/{}_{}/{leaf}",
            self.topic_prefix, sample.ip, sample.port
        )
    }

    /// Available only while both the miner and the agent are: a dead agent leaves stale
    /// retained `online`s behind. A sleeping miner is up, just not hashing.
    fn miner_availability(&self, sample: &Sample) -> Value {
        json!([
            {
                "topic": self.miner_topic(sample, "availability"),
                "value_template":
                    "{{ 'online' if value in ('online', 'sleeping') else 'offline' }}",
                "payload_available": "online",
                "payload_not_available": "offline",
            },
            {
                "topic": self.status_topic(),
                "payload_available": "online",
                "payload_not_available": "offline",
            },
        ])
    }

    /// The miner's device; optional fields are left out rather than sent as `null`.
    fn miner_device(&self, sample: &Sample) -> Value {
        let id = &sample.stats.identity;
        let name = format!("{} {}", id.model.as_deref().unwrap_or("Miner"), sample.ip);
        let mut device = Map::new();
        device.insert("identifiers".into(), json!([self.miner_node_id(sample)]));
        device.insert("name".into(), json!(name));
        insert_some(&mut device, "model", id.model.as_deref());
        insert_some(&mut device, "manufacturer", id.make.as_deref());
        insert_some(&mut device, "sw_version", id.firmware.as_deref());
        if let Some(mac) = id.mac.as_deref().and_then(mac_hex) {
            // Lets HA merge the device with what a router integration knows of the MAC.
            device.insert("connections".into(), json!([["mac", colon_mac(&mac)]]));
        }
        device.insert("via_device".into(), json!(self.agent_identifier()));
        Value::Object(device)
    }

    /// One config message: the entity's keys over the device-wide ones.
    fn config(&self, node_id: &str, entity: Entity, common: &Value) -> (String, String) {
        let topic = format!(
            "{}/{}/{node_id}/{}/config",
            self.discovery_prefix.trim_end_matches('/'),
            entity.component,
            entity.object_id
        );
        let mut payload = Map::new();
        merge(&mut payload, common);
        payload.insert("name".into(), json!(entity.name));
        payload.insert(
            "unique_id".into(),
            json!(format!("{node_id}_{}", entity.object_id)),
        );
        payload.insert("value_template".into(), json!(entity.value_template));
        merge(&mut payload, &entity.extra);
        (topic, Value::Object(payload).to_string())
    }
}

/// The entities of one miner, each reading one field of the compact metrics message.
fn miner_entities(sample: &Sample) -> Vec<Entity> {
    let s = &sample.stats;
    let mut entities = vec![
        hashrate_sensor("hashrate", "Hashrate", "hashrate_ths"),
        hashrate_sensor("hashrate_avg", "Average hashrate", "hashrate_avg_ths"),
    ];
    if s.power.is_some() {
        entities.push(measurement("power", "Power", "power_w", "W", Some("power")));
    }
    entities.push(temperature_sensor(
        "temp_max",
        "Max temperature",
        "temp_max_c",
    ));
    if s.inlet_temp.is_some() {
        entities.push(temperature_sensor(
            "temp_inlet",
            "Inlet temperature",
            "temp_inlet_c",
        ));
    }
    if s.outlet_temp.is_some() {
        entities.push(temperature_sensor(
            "temp_outlet",
            "Outlet temperature",
            "temp_outlet_c",
        ));
    }
    entities.extend((0..rpm_fan_count(sample)).map(fan_sensor));
    entities.push(measurement(
        "uptime",
        "Uptime",
        "uptime_s",
        "s",
        Some("duration"),
    ));
    entities.push(power_mode_sensor());
    entities.push(hashing_sensor());
    entities
}

/// A numeric sensor with long-term statistics.
fn measurement(
    object_id: &str,
    name: &str,
    field: &str,
    unit: &str,
    device_class: Option<&str>,
) -> Entity {
    let mut extra = json!({ "unit_of_measurement": unit, "state_class": "measurement" });
    if let (Some(class), Some(map)) = (device_class, extra.as_object_mut()) {
        map.insert("device_class".into(), json!(class));
    }
    Entity {
        component: "sensor",
        object_id: object_id.to_owned(),
        name: name.to_owned(),
        value_template: field_template(field),
        extra,
    }
}

/// HA has no hashrate device class: a unit and an icon instead.
fn hashrate_sensor(object_id: &str, name: &str, field: &str) -> Entity {
    let mut entity = measurement(object_id, name, field, "TH/s", None);
    with_key(&mut entity.extra, "icon", json!("mdi:pickaxe"));
    entity
}

fn temperature_sensor(object_id: &str, name: &str, field: &str) -> Entity {
    measurement(object_id, name, field, "°C", Some("temperature"))
}

/// Fan `index` of `fans_rpm`; `default(none)` turns a fan gone missing into "unknown"
/// instead of a template error.
fn fan_sensor(index: usize) -> Entity {
    let mut entity = measurement(
        &format!("fan_{index}"),
        &format!("Fan {}", index + 1),
        "fans_rpm",
        "RPM",
        None,
    );
    entity.value_template = format!("{{{{ value_json.fans_rpm[{index}] | default(none) }}}}");
    with_key(&mut entity.extra, "icon", json!("mdi:fan"));
    entity
}

/// An enum sensor, so HA offers the modes as choices in automations.
fn power_mode_sensor() -> Entity {
    let options: Vec<&str> = [
        PowerMode::Sleeping,
        PowerMode::Low,
        PowerMode::Normal,
        PowerMode::High,
    ]
    .into_iter()
    .map(PowerMode::as_str)
    .collect();
    Entity {
        component: "sensor",
        object_id: "power_mode".to_owned(),
        name: "Power mode".to_owned(),
        value_template: field_template("power_mode"),
        extra: json!({ "device_class": "enum", "options": options, "icon": "mdi:flash" }),
    }
}

/// `hashing` is a JSON bool or null; HA wants ON/OFF, and `None` for unknown.
fn hashing_sensor() -> Entity {
    Entity {
        component: "binary_sensor",
        object_id: "hashing".to_owned(),
        name: "Hashing".to_owned(),
        value_template: "{% if value_json.hashing is none %}None\
                         {% elif value_json.hashing %}ON{% else %}OFF{% endif %}"
            .to_owned(),
        extra: json!({ "payload_on": "ON", "payload_off": "OFF", "icon": "mdi:pickaxe" }),
    }
}

/// `{{ value_json.<field> }}`: a JSON null renders `None`, which HA shows as unknown.
fn field_template(field: &str) -> String {
    format!("{{{{ value_json.{field} }}}}")
}

/// Fans the metrics message lists in `fans_rpm` (duty-only fans are not there).
fn rpm_fan_count(sample: &Sample) -> usize {
    sample
        .stats
        .fans
        .iter()
        .filter(|f| f.unit == crate::model::FanUnit::Rpm)
        .count()
}

/// The 12 lower-case hex digits of a MAC, or `None` for a malformed or placeholder one
/// (all zeros or all ones: several firmwares report those), which must not become an id.
fn mac_hex(mac: &str) -> Option<String> {
    let hex: String = mac
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid = hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit());
    let placeholder = hex.chars().all(|c| c == '0') || hex.chars().all(|c| c == 'f');
    (valid && !placeholder).then_some(hex)
}

/// `aa:bb:cc:dd:ee:ff`, the form HA's device registry uses for MAC connections.
fn colon_mac(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// Topic ids may only hold `[a-zA-Z0-9_-]`; anything else (dots of an IP, colons) becomes `_`.
fn sanitize(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn insert_some(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), json!(value));
    }
}

fn with_key(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

/// Copies the keys of a JSON object into `into` (later keys win).
fn merge(into: &mut Map<String, Value>, from: &Value) {
    if let Some(map) = from.as_object() {
        into.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::model::{Board, Fan, FanUnit, Identity, MinerStats};
    use crate::mqtt::message::metrics_message;

    const STATE_TOPIC: &str = "pickaxe/site1/miners/127.1.0.5_4028/metrics";

    fn discovery() -> Discovery {
        Discovery::new("pickaxe/site1", "agent-7")
    }

    fn s19(power: Option<f64>, mac: Option<&str>) -> Sample {
        let rpm = |slot, speed| Fan {
            slot,
            speed,
            unit: FanUnit::Rpm,
        };
        Sample {
            ip: "127.1.0.5".into(),
            port: 4028,
            stats: MinerStats {
                identity: Identity {
                    make: Some("Antminer".into()),
                    model: Some("S19 Pro".into()),
                    firmware: Some("Braiins OS 23.03".into()),
                    mac: mac.map(Into::into),
                    ..Identity::default()
                },
                hashrate: Some(110.2e12),
                hashrate_avg: Some(109.8e12),
                boards: vec![Board {
                    board_temps: vec![61.0],
                    chip_temps: vec![77.5],
                    ..Board::default()
                }],
                fans: vec![
                    rpm(0, 5400.0),
                    rpm(1, 5520.0),
                    rpm(2, 5460.0),
                    rpm(3, 5580.0),
                    Fan {
                        slot: 4,
                        speed: 60.0,
                        unit: FanUnit::Percent,
                    },
                ],
                power,
                uptime: Some(86_400),
                power_mode: Some(PowerMode::Normal),
                is_hashing: Some(true),
                ..MinerStats::default()
            },
        }
    }

    fn payloads(messages: &[(String, String)]) -> Vec<Value> {
        messages
            .iter()
            .map(|(_, p)| serde_json::from_str(p).unwrap())
            .collect()
    }

    fn object_ids(messages: &[(String, String)]) -> Vec<String> {
        messages
            .iter()
            .map(|(t, _)| t.split('/').nth(3).unwrap().to_owned())
            .collect()
    }

    /// Every `value_json.<field>` (with an optional `[index]`) a template reads.
    fn referenced_fields(template: &str) -> Vec<(String, Option<usize>)> {
        template
            .split("value_json.")
            .skip(1)
            .map(|rest| {
                let field: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let index = rest[field.len()..]
                    .strip_prefix('[')
                    .and_then(|r| r.split(']').next())
                    .map(|i| i.parse().unwrap());
                (field, index)
            })
            .collect()
    }

    fn is_id(segment: &str) -> bool {
        !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn topics_are_per_component_and_sanitized() {
        let messages = discovery().miner(&s19(Some(3250.0), None));
        for (topic, _) in &messages {
            let parts: Vec<&str> = topic.split('/').collect();
            assert_eq!(parts.len(), 5, "{topic}");
            assert_eq!(parts[0], "homeassistant");
            assert!(["sensor", "binary_sensor"].contains(&parts[1]), "{topic}");
            assert_eq!(parts[2], "pickaxe_agent-7_127_1_0_5_4028");
            assert!(is_id(parts[3]), "{topic}");
            assert_eq!(parts[4], "config");
        }
    }

    #[test]
    fn miner_entities_point_at_the_metrics_topic() {
        let sample = s19(Some(3250.0), Some("02:42:AC:11:00:05"));
        let messages = discovery().miner(&sample);
        let all = payloads(&messages);
        let unique: HashSet<&str> = all
            .iter()
            .map(|p| p["unique_id"].as_str().unwrap())
            .collect();
        assert_eq!(unique.len(), all.len(), "unique_ids are distinct");
        for p in &all {
            assert_eq!(p["state_topic"], STATE_TOPIC);
            assert_eq!(p["availability_mode"], "all");
            let availability = p["availability"].as_array().unwrap();
            assert_eq!(
                availability[0]["topic"],
                "pickaxe/site1/miners/127.1.0.5_4028/availability"
            );
            assert_eq!(availability[1]["topic"], "pickaxe/site1/status");
            assert_eq!(p["device"]["via_device"], "pickaxe_agent-7");
        }
        let ids = object_ids(&messages);
        assert!(ids.contains(&"power".to_owned()));
        assert!(!ids.contains(&"temp_inlet".to_owned()), "not reported");
        let fans = ids.iter().filter(|id| id.starts_with("fan_")).count();
        assert_eq!(fans, 4, "one per RPM fan, duty fans left out");
    }

    #[test]
    fn power_sensor_only_when_reported() {
        let messages = discovery().miner(&s19(None, None));
        assert!(!object_ids(&messages).contains(&"power".to_owned()));
    }

    #[test]
    fn identity_comes_from_the_mac() {
        let sample = s19(Some(3250.0), Some("02:42:AC:11:00:05"));
        let messages = discovery().miner(&sample);
        for (topic, payload) in &messages {
            assert_eq!(topic.split('/').nth(2), Some("pickaxe_mac_0242ac110005"));
            let p: Value = serde_json::from_str(payload).unwrap();
            assert_eq!(
                p["device"]["identifiers"],
                json!(["pickaxe_mac_0242ac110005"])
            );
            assert_eq!(
                p["device"]["connections"],
                json!([["mac", "02:42:ac:11:00:05"]])
            );
            assert_eq!(p["device"]["name"], "S19 Pro 127.1.0.5");
            assert_eq!(p["device"]["manufacturer"], "Antminer");
            assert_eq!(p["device"]["sw_version"], "Braiins OS 23.03");
            assert!(p["unique_id"]
                .as_str()
                .unwrap()
                .starts_with("pickaxe_mac_0242ac110005_"));
        }
    }

    #[test]
    fn without_mac_identity_is_agent_and_address() {
        for mac in [None, Some("00:00:00:00:00:00"), Some("not a mac")] {
            let messages = discovery().miner(&s19(Some(3250.0), mac));
            let p = &payloads(&messages)[0];
            assert_eq!(
                p["device"]["identifiers"],
                json!(["pickaxe_agent-7_127_1_0_5_4028"])
            );
            assert!(p["device"].get("connections").is_none());
        }
    }

    #[test]
    fn templates_read_fields_of_the_metrics_message() {
        let sample = s19(Some(3250.0), Some("02:42:ac:11:00:05"));
        let message = serde_json::to_value(metrics_message("t", &sample)).unwrap();
        for p in payloads(&discovery().miner(&sample)) {
            let template = p["value_template"].as_str().unwrap();
            let fields = referenced_fields(template);
            assert!(!fields.is_empty(), "{template}");
            for (field, index) in fields {
                let value = &message[&field];
                assert!(message.get(&field).is_some(), "{field} missing");
                if let Some(i) = index {
                    assert!(value[i].is_number(), "{field}[{i}]");
                } else {
                    assert!(!value.is_null(), "{field} is null for an S19");
                }
            }
        }
    }

    #[test]
    fn hashing_is_a_binary_sensor_and_power_mode_an_enum() {
        let messages = discovery().miner(&s19(Some(3250.0), None));
        let find = |id: &str| {
            let (topic, payload) = messages
                .iter()
                .find(|(t, _)| t.split('/').nth(3) == Some(id))
                .unwrap();
            (
                topic.clone(),
                serde_json::from_str::<Value>(payload).unwrap(),
            )
        };
        let (topic, hashing) = find("hashing");
        assert!(topic.starts_with("homeassistant/binary_sensor/"));
        assert_eq!(hashing["payload_on"], "ON");
        assert_eq!(hashing["payload_off"], "OFF");
        let (_, mode) = find("power_mode");
        assert_eq!(mode["device_class"], "enum");
        assert!(mode["options"]
            .as_array()
            .unwrap()
            .contains(&json!("normal")));
        let (_, power) = find("power");
        assert_eq!(power["unit_of_measurement"], "W");
        assert_eq!(power["device_class"], "power");
    }

    #[test]
    fn agent_is_a_connectivity_sensor() {
        let messages = discovery().agent();
        assert_eq!(messages.len(), 1);
        let (topic, payload) = &messages[0];
        assert_eq!(
            topic,
            "homeassistant/binary_sensor/pickaxe_agent-7/status/config"
        );
        let p: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(p["state_topic"], "pickaxe/site1/status");
        assert_eq!(p["device_class"], "connectivity");
        assert_eq!(p["payload_on"], "online");
        assert_eq!(p["payload_off"], "offline");
        assert_eq!(p["device"]["identifiers"], json!(["pickaxe_agent-7"]));
        assert_eq!(p["device"]["name"], "Pickaxe agent-7");
        assert_eq!(p["device"]["manufacturer"], "Pickaxe");
    }

    #[test]
    fn key_changes_with_identity_and_sensors_only() {
        let base = s19(Some(3250.0), Some("02:42:ac:11:00:05"));
        let mut busier = base.clone();
        busier.stats.hashrate = Some(1.0);
        busier.stats.uptime = Some(1);
        assert_eq!(Discovery::miner_key(&base), Discovery::miner_key(&busier));
        let mut no_power = base.clone();
        no_power.stats.power = None;
        assert_ne!(Discovery::miner_key(&base), Discovery::miner_key(&no_power));
        let mut moved = base.clone();
        moved.ip = "127.1.0.6".into();
        assert_ne!(Discovery::miner_key(&base), Discovery::miner_key(&moved));
    }

    #[test]
    fn removals_clear_configs_no_longer_published() {
        let d = discovery();
        let before = d.miner(&s19(Some(3250.0), None));
        let after = d.miner(&s19(None, None));
        let removed = Discovery::removals(&before, &after);
        assert_eq!(removed.len(), 1);
        assert!(removed[0].0.ends_with("/power/config"));
        assert!(removed[0].1.is_empty());
        assert_eq!(Discovery::removals(&before, &[]).len(), before.len());
    }
}
