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
        let mut stale_answered = false;
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
                let challenge = prompt.as_deref().map(digest_auth::parse);
                // `stale=true`: the login was right, only the nonce expired; answered once more.
                let stale = matches!(&challenge, Some(Ok(c)) if c.stale);
                if answered && (!stale || stale_answered) {
                    return Err(WebError::Other(ControlError::Auth(
                        "the miner refused the web login (`username`/`password` in the command; \
                         factory root/root)"
                            .into(),
                    )));
                }
                stale_answered |= answered;
                let Some(challenge) = challenge else {
                    return Err(WebError::Other(ControlError::Auth(
                        "the miner answered 401 without a Digest challenge".into(),
                    )));
                };
                self.challenge = Some(challenge.map_err(|e| {
                    // The crate quotes the whole header, which the miner sets: kept short.
                    let e: String = e.to_string().chars().take(160).collect();
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
    // The request could not be built (the Digest answer carries the username, which may
    // hold what an HTTP header cannot): nothing left the agent.
    if e.is_builder() {
        return WebError::Other(ControlError::Unsupported(
            "the web login cannot go into an HTTP header (a control character in the \
             username?); nothing was sent to the miner"
                .into(),
        ));
    }
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

/// A scripted web server on 127.0.0.1 for tests: one request per connection.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod fake {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// How the server answers one request.
    pub enum Reply {
        /// These bytes, then close.
        Bytes(Vec<u8>),
        /// Close without a byte.
        Close,
        /// Say nothing, keep the connection open.
        Hang,
        /// These bytes, then this many more (`x`) one every 50 ms.
        Drip(Vec<u8>, usize),
    }

    /// An HTTP/1.1 answer with `Connection: close`.
    pub fn http(status: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        Reply::Bytes(out.into_bytes())
    }

    /// The Digest challenge of a stock Antminer.
    pub fn challenge(extra: &str) -> Reply {
        let h =
            format!(r#"Digest realm="antMiner Configuration", nonce="n0nce", qop="auth"{extra}"#);
        http("401 Unauthorized", &[("WWW-Authenticate", &h)], "")
    }

    /// Each request as `METHOD path [auth]\n\nbody`, in order.
    pub type Seen = Arc<Mutex<Vec<String>>>;

    /// Serves `answer(index, request)` for each request.
    pub async fn server(
        answer: impl Fn(usize, &str) -> Reply + Send + Sync + 'static,
    ) -> (SocketAddr, Seen) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let log = log.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    let n = {
                        let mut l = log.lock().unwrap();
                        l.push(req.clone());
                        l.len() - 1
                    };
                    match answer(n, &req) {
                        Reply::Bytes(b) => {
                            let _ = sock.write_all(&b).await;
                        }
                        Reply::Close => {}
                        Reply::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
                        Reply::Drip(head, more) => {
                            let _ = sock.write_all(&head).await;
                            for _ in 0..more {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                if sock.write_all(b"x").await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<String> {
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&req[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if req.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&req[end + 4..end + 4 + len]);
                    let first = head.lines().next().unwrap_or("").to_string();
                    let auth = head
                        .lines()
                        .any(|l| l.to_ascii_lowercase().starts_with("authorization:"));
                    let auth = if auth { " [auth]" } else { "" };
                    return Some(format!("{first}{auth}\n\n{body}"));
                }
            }
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::fake::{challenge, http, server, Reply};
    use super::*;

    async fn get(addr: SocketAddr, user: &str) -> Result<(StatusCode, Vec<u8>), WebError> {
        let mut c = DigestClient::new(addr, user, "web-s3cret", Duration::from_secs(1)).unwrap();
        c.request(Method::GET, "/cgi-bin/x.cgi", None).await
    }

    fn text(r: Result<(StatusCode, Vec<u8>), WebError>) -> String {
        match r {
            Ok((s, b)) => format!("ok {s} {}", String::from_utf8_lossy(&b)),
            Err(e) => format!("{:?}", e.into_control("x.cgi")),
        }
    }

    #[tokio::test]
    async fn a_401_forever_is_a_refused_login_after_one_answer() {
        let (addr, seen) = server(|_, _| challenge("")).await;
        let t = text(get(addr, "root").await);
        assert!(
            t.starts_with("Auth(") && t.contains("refused the web login"),
            "{t}"
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
        // No challenge at all, or one that is not Digest: a clear error, one request.
        let (addr, seen) = server(|_, _| http("401 Unauthorized", &[], "")).await;
        let t = text(get(addr, "root").await);
        assert!(t.contains("without a Digest challenge"), "{t}");
        assert_eq!(seen.lock().unwrap().len(), 1);
        let long = format!("Basic realm=\"{}\"", "a".repeat(5000));
        let (addr, _) =
            server(move |_, _| http("401 Unauthorized", &[("WWW-Authenticate", &long)], "")).await;
        let t = text(get(addr, "root").await);
        assert!(t.contains("unreadable Digest challenge"), "{t}");
        assert!(t.len() < 400, "the miner's header is not copied whole: {t}");
    }

    #[tokio::test]
    async fn a_stale_nonce_is_answered_again_not_taken_for_a_wrong_login() {
        // The login is right; the miner's nonce expired between the two requests.
        let (addr, seen) = server(|n, _| match n {
            0 => challenge(""),
            1 => challenge(", stale=true"),
            _ => http("200 OK", &[], "done"),
        })
        .await;
        assert_eq!(text(get(addr, "root").await), "ok 200 OK done");
        assert_eq!(seen.lock().unwrap().len(), 3);
        // A miner saying stale forever is still a refusal, after a bounded number of tries.
        let (addr, seen) = server(|_, _| challenge(", stale=true")).await;
        let t = text(get(addr, "root").await);
        assert!(t.starts_with("Auth("), "{t}");
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_username_no_header_can_carry_is_not_a_request_that_went_out() {
        let (addr, seen) = server(|_, _| challenge("")).await;
        let e = get(addr, "ro\not").await.unwrap_err();
        // A drop would read as "sent" for a reboot.
        assert!(!matches!(e, WebError::Dropped(_)), "{e:?}");
        let t = e.into_control("x.cgi").to_string();
        assert!(t.contains("nothing was sent"), "{t}");
        // Only the unauthenticated first request reached the miner.
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn huge_endless_and_dripping_answers_end_in_an_error() {
        let big = "a".repeat(MAX_BODY + 10);
        let (addr, _) = server(move |_, _| http("200 OK", &[], &big)).await;
        let t = text(get(addr, "root").await);
        assert!(t.contains("larger than"), "{t}");
        // A body that never ends within the timeout.
        let (addr, _) = server(|_, _| {
            Reply::Drip(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec(),
                1000,
            )
        })
        .await;
        let t0 = std::time::Instant::now();
        assert!(matches!(get(addr, "root").await, Err(WebError::Dropped(_))));
        assert!(t0.elapsed() < Duration::from_secs(3));
        // Reset mid-body.
        let (addr, _) = server(|_, _| {
            Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"po".to_vec())
        })
        .await;
        assert!(matches!(get(addr, "root").await, Err(WebError::Dropped(_))));
    }
}
