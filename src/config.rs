//! The agent's TOML configuration: parsed strictly, validated completely, before any state is
//! touched. Every error names the key it is about, on one line.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Most miners Foreman accepts in one metrics request (its own pickaxe uses 200).
pub const MAX_BATCH_MINERS: usize = 200;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run control commands (reboot, power, pools, blink) from Foreman. `false`: monitor-only,
    /// every control command fails with "control disabled on this pickaxe".
    #[serde(default = "defaults::control")]
    pub control: bool,
    pub foreman: ForemanConfig,
    #[serde(default)]
    pub poll: PollConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub upload: UploadConfig,
    /// Miners polled in addition to those Foreman assigns.
    #[serde(default)]
    pub miners: Vec<StaticMiner>,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub commands: CommandsConfig,
    /// Live metrics and availability over MQTT; absent = off.
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
    /// The stock Antminer web interface: MACs, and commands that name no login or port.
    #[serde(default)]
    pub antminer_web: AntminerWebConfig,
}

/// The web interface of stock Antminers (CGI with HTTP Digest auth), site-wide: where the
/// agent reads their MACs (their RPC has none) and what a command naming no `username`,
/// `password` or `port` uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AntminerWebConfig {
    #[serde(default = "defaults::antminer_web_port")]
    pub port: u16,
    #[serde(default = "defaults::antminer_web_login")]
    pub username: String,
    /// The factory `root` when neither this nor `password_file` is set.
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Read MACs from `get_system_info.cgi` for the `/macs` report.
    #[serde(default = "defaults::yes")]
    pub read_mac: bool,
}

impl Default for AntminerWebConfig {
    fn default() -> Self {
        AntminerWebConfig {
            port: defaults::antminer_web_port(),
            username: defaults::antminer_web_login(),
            password: None,
            password_file: None,
            read_mac: true,
        }
    }
}

impl AntminerWebConfig {
    /// The configured password, else the factory one.
    pub fn password(&self) -> Secret {
        self.password
            .clone()
            .unwrap_or_else(|| Secret::new(defaults::antminer_web_login()))
    }
}

/// The optional MQTT publisher (live view; durability comes from the Foreman path).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host:port`, or `mqtts://host:port` with `ca_file`.
    pub url: String,
    /// Default `pickaxe-<pickaxe id>`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM) of the broker, for `mqtts://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Default `pickaxe/<pickaxe id>`.
    #[serde(default)]
    pub topic_prefix: Option<String>,
    #[serde(default)]
    pub qos_metrics: u8,
    #[serde(default = "defaults::qos_status")]
    pub qos_status: u8,
    /// Publish per-miner metrics after each poll.
    #[serde(default = "defaults::yes")]
    pub publish_metrics: bool,
    /// Publish per-miner availability (retained).
    #[serde(default = "defaults::yes")]
    pub publish_availability: bool,
    /// Accept commands on `<prefix>/commands`; when false they are answered "refused".
    #[serde(default)]
    pub commands: bool,
    /// A command whose `issued_at` is older than this is refused as stale (a reboot queued
    /// somewhere during an outage must not fire long after).
    #[serde(
        default = "defaults::mqtt_command_max_age",
        deserialize_with = "duration"
    )]
    pub command_max_age: Duration,
    /// MQTT keep-alive: a silent (half-open) connection is replaced after about 1.5 times this.
    #[serde(default = "defaults::mqtt_keep_alive", deserialize_with = "duration")]
    pub keep_alive: Duration,
    /// Keep the broker session across disconnects (MQTT clean session off): the broker
    /// queues commands sent while the agent is away and delivers them when it is back. Then
    /// every command must carry `issued_at`, so one queued for days is refused as stale.
    #[serde(default)]
    pub persistent_session: bool,
    /// Publish Home Assistant discovery for every miner.
    #[serde(default)]
    pub home_assistant: bool,
    #[serde(default = "defaults::discovery_prefix")]
    pub discovery_prefix: String,
}

/// Commands from Foreman: intake, bulk safety, verification.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    /// How often commands are fetched when Foreman gives no hint.
    #[serde(default = "defaults::command_poll", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Commands acting on miners at the same time (sending; verification is cheap).
    #[serde(default = "defaults::command_concurrency")]
    pub concurrency: usize,
    /// Gap between two miners powered back on, so a row does not hit the breakers at once.
    #[serde(default = "defaults::power_on_ramp", deserialize_with = "duration")]
    pub power_on_ramp: Duration,
    /// A miner rebooted less than this long ago is not rebooted again (stops reboot loops).
    #[serde(default = "defaults::reboot_cooldown", deserialize_with = "duration")]
    pub reboot_cooldown: Duration,
    /// Deadline of a command whose args carry no `deadlineMillis`.
    #[serde(default = "defaults::command_deadline", deserialize_with = "duration")]
    pub default_deadline: Duration,
    /// How often the effect of a command is checked on the miner.
    #[serde(default = "defaults::verify_interval", deserialize_with = "duration")]
    pub verify_interval: Duration,
    /// Timeout of one exchange with a miner.
    #[serde(default = "defaults::miner_timeout", deserialize_with = "duration")]
    pub miner_timeout: Duration,
    /// How long finished command ids are remembered (at least 24 h).
    #[serde(default = "defaults::command_retention", deserialize_with = "duration")]
    pub retention: Duration,
    /// How often MACs of polled miners are sent to Foreman.
    #[serde(default = "defaults::mac_interval", deserialize_with = "duration")]
    pub mac_interval: Duration,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig {
            poll_interval: defaults::command_poll(),
            concurrency: defaults::command_concurrency(),
            power_on_ramp: defaults::power_on_ramp(),
            reboot_cooldown: defaults::reboot_cooldown(),
            default_deadline: defaults::command_deadline(),
            verify_interval: defaults::verify_interval(),
            miner_timeout: defaults::miner_timeout(),
            retention: defaults::command_retention(),
            mac_interval: defaults::mac_interval(),
        }
    }
}

/// The local Prometheus endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "defaults::metrics_enabled")]
    pub enabled: bool,
    /// Address of `/metrics`; loopback by default so nothing is exposed to the LAN.
    #[serde(default = "defaults::metrics_listen")]
    pub listen: std::net::SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: defaults::metrics_enabled(),
            listen: defaults::metrics_listen(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForemanConfig {
    pub base_url: String,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    pub client_id: String,
    /// Fixed pickaxe id; when absent one is created on first start and kept in the state DB.
    #[serde(default)]
    pub pickaxe_id: Option<String>,
    /// Extra CA certificate (PEM) to trust besides the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow plain http, only to a loopback host (tests, simulators).
    #[serde(default)]
    pub allow_insecure: bool,
    /// How often the miner list and app config are fetched again.
    #[serde(default = "defaults::refresh_interval", deserialize_with = "duration")]
    pub refresh_interval: Duration,
    /// Timeout of one HTTP request to Foreman.
    #[serde(default = "defaults::request_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    #[serde(default = "defaults::poll_interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// Deadline for one miner's poll (connect + reply).
    #[serde(default = "defaults::poll_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Miners polled at the same time.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
    /// Largest reply accepted from a miner, in bytes.
    #[serde(default = "defaults::max_reply_bytes")]
    pub max_reply_bytes: usize,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            interval: defaults::poll_interval(),
            timeout: defaults::poll_timeout(),
            concurrency: defaults::concurrency(),
            max_reply_bytes: defaults::max_reply_bytes(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default = "defaults::store_path")]
    pub path: PathBuf,
    /// Most the buffered metrics may take on disk, in MB (compressed batches).
    #[serde(default = "defaults::max_buffer_mb")]
    pub max_buffer_mb: u64,
    /// Buffered samples older than this are dropped.
    #[serde(default = "defaults::max_age", deserialize_with = "duration")]
    pub max_age: Duration,
    /// Free space to leave on the state directory's file system, in MB.
    #[serde(default = "defaults::min_free_disk_mb")]
    pub min_free_disk_mb: u64,
    /// What to drop when a bound is hit.
    #[serde(default)]
    pub when_full: WhenFull,
    /// SQLite `synchronous`: `normal` survives a process crash and keeps the file consistent on
    /// power loss (the last commits may roll back); `full` also keeps those.
    #[serde(default)]
    pub synchronous: Synchronous,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: defaults::store_path(),
            max_buffer_mb: defaults::max_buffer_mb(),
            max_age: defaults::max_age(),
            min_free_disk_mb: defaults::min_free_disk_mb(),
            when_full: WhenFull::default(),
            synchronous: Synchronous::default(),
        }
    }
}

/// Which samples give way when the buffer is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Keep the newest data (what an operator looks at first).
    #[default]
    DropOldest,
    /// Keep the oldest data and refuse new cycles.
    DropNewest,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    #[default]
    Normal,
    Full,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadConfig {
    /// Miners per metrics request (at most 200, Foreman's limit).
    #[serde(default = "defaults::batch_miners")]
    pub batch_miners: usize,
    /// Backlog batches sent per second at most while catching up after an outage.
    #[serde(default = "defaults::backlog_rate")]
    pub backlog_rate: f64,
    /// First retry delay after a failed upload; doubles up to `max_backoff`, with jitter.
    #[serde(default = "defaults::min_backoff", deserialize_with = "duration")]
    pub min_backoff: Duration,
    #[serde(default = "defaults::max_backoff", deserialize_with = "duration")]
    pub max_backoff: Duration,
    /// Gzip metrics bodies: `auto` follows Foreman's appConfig `compressMetrics`.
    #[serde(default)]
    pub compress: Compress,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compress {
    #[default]
    Auto,
    Always,
    Never,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            batch_miners: defaults::batch_miners(),
            backlog_rate: defaults::backlog_rate(),
            min_backoff: defaults::min_backoff(),
            max_backoff: defaults::max_backoff(),
            compress: Compress::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticMiner {
    pub ip: IpAddr,
    #[serde(default = "defaults::miner_port")]
    pub port: u16,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// tracing filter, e.g. "info" or "pickaxe=debug"; `RUST_LOG` overrides it.
    #[serde(default)]
    pub level: Option<String>,
}

mod defaults {
    use super::*;
    pub fn control() -> bool {
        true
    }
    pub fn command_poll() -> Duration {
        Duration::from_secs(30)
    }
    pub fn command_concurrency() -> usize {
        50
    }
    pub fn power_on_ramp() -> Duration {
        Duration::from_secs(2)
    }
    pub fn reboot_cooldown() -> Duration {
        Duration::from_secs(600)
    }
    pub fn command_deadline() -> Duration {
        Duration::from_secs(600)
    }
    pub fn verify_interval() -> Duration {
        Duration::from_secs(10)
    }
    pub fn miner_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn command_retention() -> Duration {
        Duration::from_secs(7 * 24 * 3600)
    }
    pub fn antminer_web_port() -> u16 {
        80
    }
    pub fn antminer_web_login() -> String {
        "root".into()
    }
    pub fn mac_interval() -> Duration {
        Duration::from_secs(600)
    }
    pub fn refresh_interval() -> Duration {
        Duration::from_secs(120)
    }
    pub fn request_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn poll_interval() -> Duration {
        Duration::from_secs(60)
    }
    pub fn poll_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn concurrency() -> usize {
        500
    }
    pub fn max_reply_bytes() -> usize {
        1 << 20
    }
    pub fn max_buffer_mb() -> u64 {
        2048
    }
    pub fn max_age() -> Duration {
        Duration::from_secs(7 * 24 * 3600)
    }
    pub fn min_free_disk_mb() -> u64 {
        256
    }
    pub fn store_path() -> PathBuf {
        PathBuf::from("/var/lib/pickaxe/pickaxe.db")
    }
    pub fn batch_miners() -> usize {
        MAX_BATCH_MINERS
    }
    pub fn backlog_rate() -> f64 {
        20.0
    }
    pub fn min_backoff() -> Duration {
        Duration::from_secs(1)
    }
    pub fn max_backoff() -> Duration {
        Duration::from_secs(300)
    }
    pub fn metrics_enabled() -> bool {
        true
    }
    pub fn metrics_listen() -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], 9464))
    }
    pub fn qos_status() -> u8 {
        1
    }
    pub fn yes() -> bool {
        true
    }
    pub fn mqtt_command_max_age() -> Duration {
        Duration::from_secs(300)
    }
    pub fn mqtt_keep_alive() -> Duration {
        Duration::from_secs(30)
    }
    pub fn discovery_prefix() -> String {
        "homeassistant".into()
    }
    pub fn miner_port() -> u16 {
        4028
    }
}

/// A secret string (API key) that never prints itself.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself: only for building the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A configuration error: the key it is about and what is wrong, printed on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config: {}", self.message)
        } else {
            write!(f, "config: {}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    let parsed = humantime::parse_duration(text.trim()).map_err(|_| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?}: expected a positive duration such as \"60s\" or \"5m\""
        ))
    })?;
    Ok(parsed)
}

impl Config {
    /// Reads, parses and validates the file. The API key file, when used, is read here too,
    /// so a missing key fails before the daemon touches its state.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
        let mut config = Config::parse(&text)?;
        config.resolve_api_key(path.parent())?;
        config.resolve_mqtt_files(path.parent())?;
        if let Some(file) = config.antminer_web.password_file.clone() {
            config.antminer_web.password = Some(read_secret_file(
                &file,
                path.parent(),
                "antminer_web.password_file",
            )?);
        }
        Ok(config)
    }

    /// Parses and validates TOML text (the API key file is not read).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| toml_error(text, &e))?;
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            path_error(&path, inner.message())
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let f = &self.foreman;
        validate_base_url(&f.base_url, f.allow_insecure)?;
        match (&f.api_key, &f.api_key_file) {
            (None, None) => {
                return Err(ConfigError::new(
                    "foreman.api_key",
                    "missing: set api_key or api_key_file",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "foreman.api_key",
                    "set only one of api_key and api_key_file",
                ))
            }
            (Some(key), None) if key.expose().trim().is_empty() => {
                return Err(ConfigError::new("foreman.api_key", "is empty"))
            }
            _ => {}
        }
        if f.client_id.trim().is_empty() {
            return Err(ConfigError::new("foreman.client_id", "is empty"));
        }
        if let Some(id) = &f.pickaxe_id {
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(ConfigError::new("foreman.pickaxe_id", "must be a UUID"));
            }
        }
        positive("foreman.refresh_interval", f.refresh_interval)?;
        positive("foreman.request_timeout", f.request_timeout)?;

        let p = &self.poll;
        positive("poll.interval", p.interval)?;
        positive("poll.timeout", p.timeout)?;
        if p.timeout >= p.interval {
            return Err(ConfigError::new(
                "poll.timeout",
                format!(
                    "must be shorter than poll.interval ({})",
                    humantime::format_duration(p.interval)
                ),
            ));
        }
        if !(1..=20_000).contains(&p.concurrency) {
            return Err(ConfigError::new(
                "poll.concurrency",
                "must be between 1 and 20000",
            ));
        }
        if p.max_reply_bytes < 4096 {
            return Err(ConfigError::new(
                "poll.max_reply_bytes",
                "must be at least 4096",
            ));
        }

        if self.store.path.as_os_str().is_empty() {
            return Err(ConfigError::new("store.path", "is empty"));
        }
        if self.store.max_buffer_mb == 0 {
            return Err(ConfigError::new(
                "store.max_buffer_mb",
                "must be at least 1",
            ));
        }
        positive("store.max_age", self.store.max_age)?;

        let u = &self.upload;
        if !(1..=MAX_BATCH_MINERS).contains(&u.batch_miners) {
            return Err(ConfigError::new(
                "upload.batch_miners",
                format!("must be between 1 and {MAX_BATCH_MINERS}"),
            ));
        }
        if !(u.backlog_rate.is_finite() && u.backlog_rate > 0.0) {
            return Err(ConfigError::new(
                "upload.backlog_rate",
                "must be a positive number of batches per second",
            ));
        }
        positive("upload.min_backoff", u.min_backoff)?;
        if u.max_backoff < u.min_backoff {
            return Err(ConfigError::new(
                "upload.max_backoff",
                "must not be shorter than upload.min_backoff",
            ));
        }

        let c = &self.commands;
        positive("commands.poll_interval", c.poll_interval)?;
        positive("commands.verify_interval", c.verify_interval)?;
        positive("commands.miner_timeout", c.miner_timeout)?;
        positive("commands.default_deadline", c.default_deadline)?;
        positive("commands.mac_interval", c.mac_interval)?;
        if !(1..=10_000).contains(&c.concurrency) {
            return Err(ConfigError::new(
                "commands.concurrency",
                "must be between 1 and 10000",
            ));
        }
        if c.retention < Duration::from_secs(24 * 3600) {
            return Err(ConfigError::new(
                "commands.retention",
                "must be at least 24h (command ids are de-duplicated for a day at least)",
            ));
        }

        if let Some(m) = &self.mqtt {
            validate_mqtt(m)?;
            // Taken up to command_max_age ahead and as old again: the id must outlive that,
            // or a resend after the command left the log runs it twice.
            if m.command_max_age.saturating_mul(2) > c.retention {
                return Err(ConfigError::new(
                    "mqtt.command_max_age",
                    "must be at most half of commands.retention (ids are remembered that long: a resend after would run again)",
                ));
            }
        }
        let w = &self.antminer_web;
        if w.port == 0 {
            return Err(ConfigError::new("antminer_web.port", "must not be 0"));
        }
        if w.username.trim().is_empty() {
            return Err(ConfigError::new("antminer_web.username", "is empty"));
        }
        if w.password.is_some() && w.password_file.is_some() {
            return Err(ConfigError::new(
                "antminer_web.password",
                "set only one of password and password_file",
            ));
        }

        for (i, m) in self.miners.iter().enumerate() {
            if m.port == 0 {
                return Err(ConfigError::new(
                    format!("miners[{i}].port"),
                    "must not be 0",
                ));
            }
        }
        Ok(())
    }

    /// Reads `api_key_file` (relative paths are relative to the config file) into `api_key`.
    fn resolve_api_key(&mut self, base: Option<&Path>) -> Result<(), ConfigError> {
        let Some(file) = &self.foreman.api_key_file else {
            return Ok(());
        };
        let path = match base {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.clone(),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(
                "foreman.api_key_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let key = text.trim();
        if key.is_empty() {
            return Err(ConfigError::new(
                "foreman.api_key_file",
                "the file is empty",
            ));
        }
        self.foreman.api_key = Some(Secret::new(key));
        Ok(())
    }

    /// The API key; `load` guarantees it is present.
    pub fn api_key(&self) -> Secret {
        self.foreman
            .api_key
            .clone()
            .unwrap_or_else(|| Secret::new(""))
    }
}

impl Config {
    /// Reads `mqtt.password_file` into `mqtt.password`; relative paths (also `ca_file`) are
    /// relative to the config file.
    fn resolve_mqtt_files(&mut self, base: Option<&Path>) -> Result<(), ConfigError> {
        let Some(m) = &mut self.mqtt else {
            return Ok(());
        };
        let resolve = |file: &PathBuf| match base {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.clone(),
        };
        m.ca_file = m.ca_file.as_ref().map(resolve);
        if let Some(file) = m.password_file.clone() {
            m.password = Some(read_secret_file(&file, base, "mqtt.password_file")?);
        }
        Ok(())
    }
}

/// A password kept in its own file (relative paths are relative to the config file); the
/// line end is not part of it.
fn read_secret_file(file: &Path, base: Option<&Path>, key: &str) -> Result<Secret, ConfigError> {
    let path = match base {
        Some(dir) if file.is_relative() => dir.join(file),
        _ => file.to_path_buf(),
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(ConfigError::new(key, "the file is empty"));
    }
    Ok(Secret::new(secret))
}

/// Checks `[mqtt]`: URL scheme and port, TLS CA, credentials, topic prefix, QoS levels.
fn validate_mqtt(m: &MqttConfig) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(&m.url)
        .map_err(|e| ConfigError::new("mqtt.url", format!("not a valid URL: {e}")))?;
    match parsed.scheme() {
        "mqtt" => {
            if m.ca_file.is_some() {
                return Err(ConfigError::new(
                    "mqtt.ca_file",
                    "only with an mqtts:// url",
                ));
            }
        }
        "mqtts" => {
            if m.ca_file.is_none() {
                return Err(ConfigError::new(
                    "mqtt.ca_file",
                    "missing: mqtts:// needs the broker's CA certificate",
                ));
            }
        }
        other => {
            return Err(ConfigError::new(
                "mqtt.url",
                format!("scheme {other:?} not supported: use mqtt:// or mqtts://"),
            ))
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new("mqtt.url", "has no host"));
    }
    if parsed.port().is_none() {
        return Err(ConfigError::new(
            "mqtt.url",
            "has no port (mqtt://host:1883)",
        ));
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
        return Err(ConfigError::new(
            "mqtt.url",
            "must be only scheme://host:port",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConfigError::new(
            "mqtt.url",
            "must not carry credentials: use mqtt.username and mqtt.password",
        ));
    }
    if let Some(id) = &m.client_id {
        if id.trim().is_empty() {
            return Err(ConfigError::new("mqtt.client_id", "is empty"));
        }
    }
    if m.password.is_some() && m.password_file.is_some() {
        return Err(ConfigError::new(
            "mqtt.password",
            "set only one of password and password_file",
        ));
    }
    if (m.password.is_some() || m.password_file.is_some()) && m.username.is_none() {
        return Err(ConfigError::new(
            "mqtt.username",
            "missing: a password needs a username",
        ));
    }
    if let Some(prefix) = &m.topic_prefix {
        if prefix.is_empty()
            || prefix.starts_with('/')
            || prefix.ends_with('/')
            || prefix.contains(['+', '#', '\0'])
        {
            return Err(ConfigError::new(
                "mqtt.topic_prefix",
                "must be non-empty, without leading or trailing '/', '+', '#'",
            ));
        }
    }
    for (key, qos) in [
        ("mqtt.qos_metrics", m.qos_metrics),
        ("mqtt.qos_status", m.qos_status),
    ] {
        if qos > 2 {
            return Err(ConfigError::new(key, "must be 0, 1 or 2"));
        }
    }
    // rumqttc refuses less than 5 s; more than 20 min leaves a dead link unnoticed too long.
    if m.keep_alive < Duration::from_secs(5) || m.keep_alive > Duration::from_secs(1200) {
        return Err(ConfigError::new(
            "mqtt.keep_alive",
            "must be between 5s and 20m",
        ));
    }
    positive("mqtt.command_max_age", m.command_max_age)?;
    let d = &m.discovery_prefix;
    if d.is_empty() || d.starts_with('/') || d.ends_with('/') || d.contains(['+', '#', '\0']) {
        return Err(ConfigError::new(
            "mqtt.discovery_prefix",
            "must be non-empty, without leading or trailing '/', '+', '#'",
        ));
    }
    Ok(())
}

fn positive(key: &str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::new(key, "must be greater than zero"));
    }
    Ok(())
}

fn validate_base_url(url: &str, allow_insecure: bool) -> Result<(), ConfigError> {
    const KEY: &str = "foreman.base_url";
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ConfigError::new(KEY, format!("not a valid URL: {e}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => return Err(ConfigError::new(KEY, "has no host")),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure && loopback => Ok(()),
        "http" if allow_insecure => Err(ConfigError::new(
            KEY,
            "plain http is allowed only to a loopback host",
        )),
        "http" => Err(ConfigError::new(
            KEY,
            "must use https (http only to loopback with allow_insecure = true)",
        )),
        other => Err(ConfigError::new(
            KEY,
            format!("unsupported scheme {other:?}"),
        )),
    }
}

/// Turns serde's message at a path into our one-line error, naming the missing key itself
/// rather than its parent table.
fn path_error(path: &str, message: &str) -> ConfigError {
    let path = if path == "." { "" } else { path };
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Some(field) = quoted(message, "missing field `") {
        return ConfigError::new(join(field), "missing required key");
    }
    if message.starts_with("unknown field `") {
        // serde reports unknown keys at their own path already.
        return ConfigError::new(path, "unknown key");
    }
    ConfigError::new(path, message.replace('\n', " "))
}

fn quoted<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// A TOML syntax error, with its line number, on one line.
fn toml_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let line = error
        .span()
        .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
    let message = error.message().replace('\n', " ");
    match line {
        Some(line) => ConfigError::new("", format!("invalid TOML at line {line}: {message}")),
        None => ConfigError::new("", format!("invalid TOML: {message}")),
    }
}

/// True when `ip` may be targeted by anything this project starts on its own (tests, demo).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// The first simulated miner address, used by examples.
pub const EXAMPLE_MINER: Ipv4Addr = Ipv4Addr::new(127, 1, 0, 1);

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[foreman]
base_url = "https://api.foreman.mn"
api_key = "k"
client_id = "123"
[poll]
interval = "60s"
timeout = "5s"
concurrency = 1000
[store]
path = "/tmp/x.db"
[[miners]]
ip = "127.1.0.1"
port = 4028
"#;

    #[test]
    fn good_config_parses_with_values() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.poll.interval, Duration::from_secs(60));
        assert_eq!(c.poll.concurrency, 1000);
        assert_eq!(c.miners.len(), 1);
        assert_eq!(c.api_key().expose(), "k");
        // The default config scans and polls nothing by itself.
        let minimal = "[foreman]\nbase_url=\"https://a.b\"\napi_key=\"k\"\nclient_id=\"1\"\n";
        assert!(Config::parse(minimal).unwrap().miners.is_empty());
    }

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn mqtt_section_is_validated() {
        assert!(Config::parse(GOOD).unwrap().mqtt.is_none());
        let ok = format!("{GOOD}\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n");
        let m = Config::parse(&ok).unwrap().mqtt.unwrap();
        assert_eq!((m.qos_metrics, m.qos_status), (0, 1));
        let bad = |extra: &str| err(&format!("{GOOD}\n[mqtt]\n{extra}\n"));
        assert!(bad("url = \"http://h:1\"").starts_with("config: mqtt.url:"));
        assert!(bad("url = \"mqtt://h\"").starts_with("config: mqtt.url:"));
        assert!(bad("url = \"mqtts://h:8883\"").starts_with("config: mqtt.ca_file:"));
        assert!(bad("url = \"mqtt://h:1\"\nqos_status = 3").starts_with("config: mqtt.qos_status:"));
        assert!(bad("url = \"mqtt://h:1\"\ntopic_prefix = \"a/#\"")
            .starts_with("config: mqtt.topic_prefix:"));
        assert!(bad("url = \"mqtt://h:1\"\nbogus = 1").contains("mqtt.bogus"));
        assert!(bad("url = \"mqtt://h:1\"\nkeep_alive = \"1s\"")
            .starts_with("config: mqtt.keep_alive:"));
        // A command stays valid up to 2 × command_max_age (issued that far ahead, then that
        // old): its id must be remembered longer, or a resend runs it twice.
        assert!(bad("url = \"mqtt://h:1\"\ncommand_max_age = \"4d\"")
            .starts_with("config: mqtt.command_max_age:"));
        assert!(Config::parse(&format!("{ok}command_max_age = \"3d\"\n")).is_ok());
        assert!(!m.commands, "commands over MQTT are off unless enabled");
        let e = bad("url = \"mqtt://h:1\"\npassword = \"hunter2\"");
        assert!(
            e.starts_with("config: mqtt.username:") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn antminer_web_defaults_to_the_factory_login_and_reads_its_password_file() {
        let w = Config::parse(GOOD).unwrap().antminer_web;
        assert_eq!(
            (w.port, w.username.as_str(), w.read_mac),
            (80, "root", true)
        );
        assert_eq!(w.password().expose(), "root");
        let bad = |extra: &str| err(&format!("{GOOD}\n[antminer_web]\n{extra}\n"));
        assert!(bad("port = 0").starts_with("config: antminer_web.port:"));
        assert!(bad("username = \" \"").starts_with("config: antminer_web.username:"));
        let e = bad("password = \"hunter2\"\npassword_file = \"p\"");
        assert!(
            e.starts_with("config: antminer_web.password:") && !e.contains("hunter2"),
            "{e}"
        );
        // The file, relative to the config, without its line end.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("web-pw"), "s3cret\n").unwrap();
        let path = dir.path().join("pickaxe.toml");
        std::fs::write(
            &path,
            format!("{GOOD}\n[antminer_web]\npassword_file = \"web-pw\"\n"),
        )
        .unwrap();
        let w = Config::load(&path).unwrap().antminer_web;
        assert_eq!(w.password().expose(), "s3cret");
        std::fs::write(dir.path().join("web-pw"), "\n").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("antminer_web.password_file") && e.contains("empty"),
            "{e}"
        );
    }

    #[test]
    fn missing_key_is_named() {
        let e = err(&GOOD.replace("api_key = \"k\"\n", ""));
        assert_eq!(
            e,
            "config: foreman.api_key: missing: set api_key or api_key_file"
        );
        let e = err(&GOOD.replace("client_id = \"123\"\n", ""));
        assert_eq!(e, "config: foreman.client_id: missing required key");
    }

    #[test]
    fn http_url_is_refused() {
        let e = err(&GOOD.replace("https://api.foreman.mn", "http://api.foreman.mn"));
        assert!(
            e.starts_with("config: foreman.base_url: must use https"),
            "{e}"
        );
        let insecure = GOOD.replace(
            "https://api.foreman.mn\"",
            "http://127.0.0.1:9\"\nallow_insecure = true",
        );
        assert!(Config::parse(&insecure).is_ok());
        let remote = GOOD.replace(
            "https://api.foreman.mn\"",
            "http://api.foreman.mn\"\nallow_insecure = true",
        );
        assert!(err(&remote).contains("only to a loopback host"));
    }

    #[test]
    fn unknown_field_is_named() {
        let e = err(&GOOD.replace("concurrency = 1000", "concurrency = 1000\nspeed = 3"));
        assert_eq!(e, "config: poll.speed: unknown key");
    }

    #[test]
    fn negative_interval_is_refused() {
        let e = err(&GOOD.replace("interval = \"60s\"", "interval = \"-60s\""));
        assert!(
            e.starts_with("config: poll.interval: invalid duration"),
            "{e}"
        );
        let e = err(&GOOD.replace("interval = \"60s\"", "interval = -60"));
        assert!(e.starts_with("config: poll.interval:"), "{e}");
    }

    #[test]
    fn errors_are_one_line_and_hide_the_key() {
        let bad = GOOD.replace("[poll]", "[poll\n");
        let e = err(&bad);
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("line"), "{e}");
        let c = Config::parse(GOOD).unwrap();
        assert!(!format!("{c:?}").contains("\"k\""));
    }

    #[test]
    fn timeout_must_be_below_interval() {
        let e = err(&GOOD.replace("timeout = \"5s\"", "timeout = \"90s\""));
        assert!(
            e.starts_with("config: poll.timeout: must be shorter"),
            "{e}"
        );
    }
}
