//! The HTTP client for Foreman: one reqwest client (rustls, keep-alive), `Authorization: Token`
//! on every authenticated call, and errors classified so the caller knows whether to retry,
//! pause for a new key, or set a batch aside.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::Deserialize;

use super::paths;
use super::retry::parse_retry_after;
use crate::config::{Config, Secret};

#[derive(Debug, thiserror::Error)]
pub enum ForemanError {
    /// Worth retrying later: network error, timeout, 408, 429, 5xx.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
        /// The server's status when it answered (408, 429, 5xx); `None` for network errors.
        status: Option<u16>,
    },
    /// 401/403: the key or client id is wrong; retrying will not help until it is fixed.
    #[error("authentication failed (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    /// 413: the body is too large for the server.
    #[error("request too large (HTTP 413)")]
    TooLarge,
    /// Any other 4xx: this request will never succeed as is.
    #[error("rejected (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// A 2xx whose body we could not read.
    #[error("unexpected reply: {0}")]
    BadReply(String),
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

impl ForemanError {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ForemanError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A 5xx: the server answered and failed on this request (an outage, or a request it
    /// chokes on: see the uploader's poison watch).
    pub fn is_server_error(&self) -> bool {
        matches!(self, ForemanError::Transient { status: Some(s), .. } if *s >= 500)
    }
}

/// One entry of the miner list Foreman assigns (protocol §4.2). Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MinerConfigEntry {
    pub api_ip: String,
    pub api_port: u16,
    #[serde(default)]
    pub api_type: Option<i64>,
}

/// Runtime tunables (protocol §4.1); only what we use is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppConfig {
    #[serde(default)]
    pub metrics_batch_size: Option<i64>,
    /// Foreman accepts gzip'd metrics bodies.
    #[serde(default)]
    pub compress_metrics: Option<bool>,
}

/// One command as Foreman lists it (protocol §2.4). Kept as raw JSON too: the start echoes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteCommand {
    pub id: String,
    pub command: String,
    pub args: serde_json::Value,
}

/// The command list and the server's hint for the next poll.
#[derive(Debug, Clone, Default)]
pub struct CommandList {
    pub commands: Vec<RemoteCommand>,
    /// Entries without a usable id or command name (skipped).
    pub malformed: usize,
    pub delay: Option<Duration>,
}

/// Reads `delay` + `delayUnits` (Java TimeUnit names), else `delaySeconds`.
fn poll_hint(v: &serde_json::Value) -> Option<Duration> {
    let unit = v.get("delayUnits").and_then(|u| u.as_str());
    if let (Some(d), Some(unit)) = (v.get("delay").and_then(|d| d.as_f64()), unit) {
        let secs = match unit {
            "MILLISECONDS" => d / 1000.0,
            "SECONDS" => d,
            "MINUTES" => d * 60.0,
            "HOURS" => d * 3600.0,
            _ => f64::NAN,
        };
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
    }
    v.get("delaySeconds")
        .and_then(|d| d.as_f64())
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map(|d| Duration::from_secs_f64(d.min(86_400.0)))
}

#[derive(Debug, Clone)]
pub struct ForemanClient {
    http: reqwest::Client,
    base: Url,
    api_key: Secret,
    client_id: String,
    pickaxe_id: String,
}

impl ForemanClient {
    pub fn new(config: &Config, pickaxe_id: &str) -> Result<ForemanClient, ForemanError> {
        let f = &config.foreman;
        let base = Url::parse(&f.base_url).map_err(|e| ForemanError::Setup(e.to_string()))?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("pickaxe/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(20).min(f.request_timeout))
            .timeout(f.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90));
        if !f.allow_insecure {
            builder = builder.https_only(true);
        }
        if let Some(ca_file) = &f.ca_file {
            let pem = std::fs::read(ca_file).map_err(|e| {
                ForemanError::Setup(format!("cannot read ca_file {}: {e}", ca_file.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| ForemanError::Setup(format!("ca_file {}: {e}", ca_file.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| ForemanError::Setup(e.to_string()))?;
        Ok(ForemanClient {
            http,
            base,
            api_key: config.api_key(),
            client_id: f.client_id.clone(),
            pickaxe_id: pickaxe_id.to_string(),
        })
    }

    pub fn pickaxe_id(&self) -> &str {
        &self.pickaxe_id
    }

    fn url(&self, path: &str) -> Result<Url, ForemanError> {
        self.base
            .join(path)
            .map_err(|e| ForemanError::Setup(format!("bad path {path}: {e}")))
    }

    fn auth_headers(&self) -> Result<HeaderMap, ForemanError> {
        let mut headers = HeaderMap::new();
        let mut value = HeaderValue::from_str(&format!("Token {}", self.api_key.expose()))
            .map_err(|_| ForemanError::Setup("the API key holds invalid characters".into()))?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
        Ok(headers)
    }

    /// Sends one request and classifies the answer. Returns the body of a 2xx.
    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ForemanError> {
        let mut request = self.http.request(method, url).headers(headers);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(|e| ForemanError::Transient {
            reason: network_reason(&e),
            retry_after: None,
            status: None,
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let body = response
            .bytes()
            .await
            .map_err(|e| ForemanError::Transient {
                reason: network_reason(&e),
                retry_after: None,
                status: None,
            })?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let message = error_message(&body);
        Err(match status.as_u16() {
            401 | 403 => ForemanError::Auth {
                status: status.as_u16(),
                message,
            },
            413 => ForemanError::TooLarge,
            408 | 429 | 500..=599 => ForemanError::Transient {
                reason: format!("HTTP {}: {message}", status.as_u16()),
                retry_after,
                status: Some(status.as_u16()),
            },
            code => ForemanError::Rejected {
                status: code,
                message,
            },
        })
    }

    /// The miners Foreman assigns to this pickaxe.
    pub async fn miner_config(&self) -> Result<Vec<MinerConfigEntry>, ForemanError> {
        let mut url = self.url(&paths::miner_config(&self.client_id, &self.pickaxe_id))?;
        url.query_pairs_mut()
            .append_pair("hostname", &local_hostname())
            .append_pair("ip", "127.0.0.1");
        let body = self
            .send(Method::GET, url, self.auth_headers()?, None)
            .await?;
        // Parse entry by entry: one malformed entry must not cost us the whole list.
        let raw: Vec<serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|e| ForemanError::BadReply(format!("miner list: {e}")))?;
        Ok(raw
            .into_iter()
            .filter_map(|v| serde_json::from_value::<MinerConfigEntry>(v).ok())
            .collect())
    }

    pub async fn app_config(&self) -> Result<AppConfig, ForemanError> {
        let url = self.url(&paths::app_config(&self.pickaxe_id))?;
        let body = self
            .send(Method::GET, url, self.auth_headers()?, None)
            .await?;
        serde_json::from_slice(&body).map_err(|e| ForemanError::BadReply(format!("appConfig: {e}")))
    }

    /// Announces this start to Foreman.
    pub async fn started(&self) -> Result<(), ForemanError> {
        let url = self.url(&paths::started(&self.pickaxe_id))?;
        self.send(Method::POST, url, self.auth_headers()?, Some(Vec::new()))
            .await?;
        Ok(())
    }

    /// Checks connectivity and the key.
    pub async fn ping(&self) -> Result<(), ForemanError> {
        let url = self.url(&paths::ping(&self.client_id))?;
        let body = self
            .send(Method::GET, url, self.auth_headers()?, None)
            .await?;
        if String::from_utf8_lossy(&body)
            .to_lowercase()
            .contains("pong")
        {
            Ok(())
        } else {
            Err(ForemanError::BadReply("ping did not answer pong".into()))
        }
    }

    /// The commands waiting for this pickaxe.
    pub async fn commands(&self) -> Result<CommandList, ForemanError> {
        let url = self.url(&paths::commands(&self.pickaxe_id))?;
        let body = self
            .send(Method::GET, url, self.auth_headers()?, None)
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ForemanError::BadReply(format!("commands: {e}")))?;
        let mut list = CommandList {
            delay: poll_hint(&v),
            ..CommandList::default()
        };
        // Entry by entry: one malformed command must not hide the others.
        for c in v
            .get("commands")
            .and_then(|c| c.as_array())
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let id = c.get("id").and_then(|i| match i {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let command = c.get("command").and_then(|x| x.as_str());
            match (id, command) {
                (Some(id), Some(command)) => list.commands.push(RemoteCommand {
                    id,
                    command: command.to_string(),
                    args: c.get("args").cloned().unwrap_or(serde_json::Value::Null),
                }),
                _ => list.malformed += 1,
            }
        }
        Ok(list)
    }

    /// Posts one batch of command results: `kind` is `start`, `update` or `done`, each entry
    /// `(commandId, body)` (protocol §2.5).
    pub async fn command_batch(
        &self,
        kind: &str,
        entries: &[(String, serde_json::Value)],
    ) -> Result<(), ForemanError> {
        let url = self.url(&paths::command_batch(&self.pickaxe_id, kind))?;
        let commands: Vec<serde_json::Value> = entries
            .iter()
            .map(|(id, body)| serde_json::json!({ "commandId": id, kind: body }))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "commands": commands }))
            .map_err(|e| ForemanError::Setup(e.to_string()))?;
        self.send(Method::POST, url, self.auth_headers()?, Some(body))
            .await?;
        Ok(())
    }

    /// Sends MAC addresses `(ip, apiPort, mac)`, at most 100 per request (protocol §2.7).
    pub async fn post_macs(&self, updates: &[(String, u16, String)]) -> Result<(), ForemanError> {
        for chunk in updates.chunks(100) {
            let url = self.url(&paths::macs(&self.pickaxe_id))?;
            let list: Vec<serde_json::Value> = chunk
                .iter()
                .map(|(ip, port, mac)| {
                    serde_json::json!({"ip": ip, "apiPort": port, "mac": mac.to_lowercase()})
                })
                .collect();
            let body = serde_json::to_vec(&serde_json::json!({ "updates": list }))
                .map_err(|e| ForemanError::Setup(e.to_string()))?;
            self.send(Method::POST, url, self.auth_headers()?, Some(body))
                .await?;
        }
        Ok(())
    }

    /// Uploads one metrics batch (JSON body) under its idempotency key.
    pub async fn put_metrics(
        &self,
        body: Vec<u8>,
        idempotency_key: &str,
        gzipped: bool,
    ) -> Result<(), ForemanError> {
        let url = self.url(&paths::metrics(&self.client_id, &self.pickaxe_id))?;
        let mut headers = self.auth_headers()?;
        if gzipped {
            headers.insert(
                reqwest::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
        }
        let key = HeaderValue::from_str(idempotency_key)
            .map_err(|_| ForemanError::Setup("invalid idempotency key".into()))?;
        headers.insert("Idempotency-Key", key);
        self.send(Method::PUT, url, headers, Some(body)).await?;
        Ok(())
    }
}

/// The server's `message` from an error body, else a short prefix of the body.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
    }
    if let Ok(ErrorBody {
        message: Some(message),
    }) = serde_json::from_slice(body)
    {
        return truncate(&message, 200);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "no message".to_string()
    } else {
        truncate(text, 200)
    }
}

fn truncate(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    cut.replace(['\n', '\r'], " ")
}

/// Describes a network error without the URL (which carries nothing secret, but is noise).
fn network_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "network error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "pickaxe".to_string())
}
