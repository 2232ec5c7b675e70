//! A small HTTP client for miner web interfaces behind HTTP Digest auth (stock Antminer CGI):
//! the first request goes without credentials, the 401's challenge is answered, and later
//! requests of the same action reuse it (the nonce count goes up) until the miner asks again.

use std::net::SocketAddr;
use std::time::Duration;

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};

use super::control::ControlError;

/// Replies past this size are cut off: a CGI answer is a few KiB.
const MAX_BODY: usize = 256 * 1024;

/// How a request ended when no HTTP answer came back.
#[derive(Debug)]
pub enum WebError {
    /// Nothing reached the miner (connect failed or refused).
    Unreachable(String),
    /// The request went out; the connection closed or stayed silent before an answer.
    Dropped(String),
    /// The miner's answer was not usable.
    Other(ControlError),
}

impl WebError {
    /// As a control error when a drop is not an acceptable answer.
    pub fn into_control(self, what: &str) -> ControlError {
        match self {
            WebError::Unreachable(m) => ControlError::Unreachable(m),
            WebError::Dropped(m) => {
                ControlError::Protocol(format!("{what}: the miner gave no answer ({m})"))
            }
            WebError::Other(e) => e,
        }
    }
}

pub struct DigestClient {
    http: reqwest::Client,
    base: String,
    user: String,
    pass: String,
    challenge: Option<WwwAuthenticateHeader>,
}

impl DigestClient {
    pub fn new(
        addr: SocketAddr,
        user: &str,
        pass: &str,
        timeout: Duration,
    ) -> Result<Self, ControlError> {
        Ok(Self::with_http(http_client(timeout)?, addr, user, pass))
    }

    /// A client on a shared connection pool (many miners, one [`http_client`]).
    pub fn with_http(http: reqwest::Client, addr: SocketAddr, user: &str, pass: &str) -> Self {
        DigestClient {
            http,
            base: format!("http://{addr}"),
            user: user.to_string(),
            pass: pass.to_string(),
            challenge: None,
        }
    }

    /// One request with an optional body and its content type; answers a Digest challenge
    /// once. Returns the status and body of the final answer (a 401 after answering the
    /// challenge is an [`ControlError::Auth`]).
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&[u8], &'static str)>,
    ) -> Result<(StatusCode, Vec<u8>), WebError> {
        let mut answered = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            if let Some((bytes, content_type)) = body {
                req = req.header(CONTENT_TYPE, content_type).body(bytes.to_vec());
            }
            if let Some(header) = self.authorization(&method, path, body.map(|b| b.0))? {
                req = req.header(AUTHORIZATION, header);
            }
            let resp = req.send().await.map_err(classify)?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                let prompt = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if answered {
                    return Err(WebError::Other(ControlError::Auth(
                        "the miner refused the web login (`username`/`password` in the command; \
                         factory root/root)"
                            .into(),
                    )));
                }
                let Some(prompt) = prompt else {
                    return Err(WebError::Other(ControlError::Auth(
                        "the miner answered 401 without a Digest challenge".into(),
                    )));
                };
                self.challenge = Some(digest_auth::parse(&prompt).map_err(|e| {
                    WebError::Other(ControlError::Protocol(format!(
                        "unreadable Digest challenge: {e}"
                    )))
                })?);
                answered = true;
                continue;
            }
            let body = read_body(resp).await?;
            return Ok((status, body));
        }
    }

    /// The Authorization header for this request, once a challenge is known.
    fn authorization(
        &mut self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Option<String>, WebError> {
        let Some(challenge) = self.challenge.as_mut() else {
            return Ok(None);
        };
        let verb = if *method == Method::POST {
            HttpMethod::POST
        } else {
            HttpMethod::GET
        };
        let ctx =
            AuthContext::new_with_method(self.user.as_str(), self.pass.as_str(), path, body, verb);
        let header = challenge.respond(&ctx).map_err(|e| {
            WebError::Other(ControlError::Protocol(format!(
                "cannot answer the Digest challenge: {e}"
            )))
        })?;
        Ok(Some(header.to_header_string()))
    }
}

/// The HTTP client for miner web interfaces: plain HTTP on the LAN, no proxy, no redirects,
/// every request bounded by `timeout`.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ControlError> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(timeout.min(Duration::from_secs(3)))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ControlError::Protocol(format!("http client: {e}")))
}

fn classify(e: reqwest::Error) -> WebError {
    let connect = e.is_connect();
    // The causes say what happened ("connection refused"); the URL adds nothing.
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if connect {
        WebError::Unreachable(msg)
    } else {
        WebError::Dropped(msg)
    }
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, WebError> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(WebError::Other(ControlError::Protocol(format!(
                        "web answer larger than {MAX_BODY} bytes"
                    ))));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(classify(e)),
        }
    }
}
