//! The fast path of Streamable HTTP calls to a plain `http://` backend:
//! POSTs on pooled HTTP/1.1 connections that are driven in the caller's own
//! task.
//!
//! reqwest (through hyper-util's pool) runs every connection in a task of its
//! own, so each call is handed to that task and its answer handed back: two
//! task wake-ups per call, which on a busy machine cost more than the HTTP
//! work itself. Here the caller checks a connection out of the pool, drives
//! hyper's connection future itself while it writes the request and reads a
//! JSON answer, and puts the connection back. Answers that are not a
//! complete JSON body (an event stream, an error status, a redirect) leave
//! the fast path: the connection is handed to a task of its own and the
//! response goes on as a [`reqwest::Response`], so everything after it is
//! the same code as for reqwest's own responses.
//!
//! Used only where reqwest would add nothing: `http` URLs without user info,
//! and no proxy configured in the environment (reqwest honours
//! `HTTP_PROXY`/`ALL_PROXY`; this path does not). `https` backends keep
//! reqwest (TLS, HTTP/2).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use reqwest::header::{HOST, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, Url};
use tokio::net::TcpStream;

use crate::http_client::MAX_MESSAGE;

/// How many idle connections the pool keeps per backend.
const MAX_IDLE: usize = 64;

/// The environment variables through which reqwest picks a proxy for `http`
/// URLs.
const PROXY_VARS: [&str; 4] = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/// A pool of HTTP/1.1 connections to one `http://` endpoint.
#[derive(Debug)]
pub(crate) struct Direct {
    /// Where to connect.
    target: Target,
    /// The `Host` header.
    host: HeaderValue,
    /// The request target (path and query).
    uri: http::Uri,
    connect_timeout: Duration,
    idle: Mutex<Vec<Conn>>,
}

#[derive(Debug)]
enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

/// One connection: the handle requests are sent on and the future that does
/// the connection's I/O, which whoever uses the connection must poll.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

/// The answer to a POST.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A success status with an `application/json` body, read whole.
    Json {
        /// The response headers.
        headers: HeaderMap,
        /// The body.
        body: Bytes,
    },
    /// Anything else, still streaming.
    Other(reqwest::Response),
}

/// Why a POST failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connecting, sending or reading failed.
    Transport(String),
    /// The JSON answer is larger than [`MAX_MESSAGE`].
    TooLarge,
    /// A redirect: the caller re-sends through reqwest, which follows it
    /// within the origin.
    Redirect,
}

impl Direct {
    /// The fast path for `url`, if it can take it (see the module doc).
    pub(crate) fn for_url(url: &Url, connect_timeout: Duration) -> Option<Self> {
        if url.scheme() != "http"
            || !url.username().is_empty()
            || url.password().is_some()
            || PROXY_VARS.iter().any(|v| std::env::var_os(v).is_some())
        {
            return None;
        }
        let port = url.port_or_known_default()?;
        let target = match url.host()? {
            url::Host::Ipv4(ip) => Target::Addr(SocketAddr::from((ip, port))),
            url::Host::Ipv6(ip) => Target::Addr(SocketAddr::from((ip, port))),
            url::Host::Domain(name) => Target::Name(name.to_owned(), port),
        };
        let host = HeaderValue::from_str(&url[url::Position::BeforeHost..url::Position::AfterPort])
            .ok()?;
        let uri = url[url::Position::BeforePath..url::Position::AfterQuery]
            .parse()
            .ok()?;
        Some(Self {
            target,
            host,
            uri,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// POSTs `body` with `headers`, on an idle connection if one is alive,
    /// else on a new one. A request that an idle connection closed under
    /// before it was sent is sent again on a new connection; one that may
    /// have reached the server never is.
    pub(crate) async fn post(&self, headers: HeaderMap, body: Bytes) -> Result<Answer, Failure> {
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = headers;
        request.headers_mut().insert(HOST, self.host.clone());
        request.headers_mut().insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("only1mcp/", env!("CARGO_PKG_VERSION"))),
        );
        let closed = || Failure::Transport("the connection closed before the answer".to_owned());
        let mut request = Some(request);
        while let Some(conn) = self.checkout() {
            match Self::exchange(conn, request.take().expect("the request is there")).await {
                Ok((read, reusable)) => return self.finish(read, reusable),
                Err(Unsent(Some(back))) => request = Some(back),
                Err(Unsent(None)) => return Err(closed()),
            }
        }
        let conn = self.connect().await?;
        let request = request.expect("the request is there");
        match Self::exchange(conn, request).await {
            Ok((read, reusable)) => self.finish(read, reusable),
            Err(Unsent(_)) => Err(closed()),
        }
    }

    /// An idle connection that is still open, if any.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(mut conn) = idle.pop() {
            // Whatever the connection learnt while idle (the server closed
            // it) is applied by one poll of its driver.
            let mut cx = Context::from_waker(Waker::noop());
            if conn.driver.as_mut().poll(&mut cx).is_pending() && !conn.sender.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let connecting = async {
            match &self.target {
                Target::Addr(addr) => TcpStream::connect(addr).await,
                Target::Name(name, port) => TcpStream::connect((name.as_str(), *port)).await,
            }
        };
        let stream = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| Failure::Transport("connecting timed out".to_owned()))?
            .map_err(|e| Failure::Transport(format!("cannot connect: {e}")))?;
        // Each message is one write; never wait for the peer's ACK.
        let _ = stream.set_nodelay(true);
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Transport(format!("HTTP handshake failed: {e}")))?;
        Ok(Conn {
            sender,
            driver: Box::pin(driver),
        })
    }

    /// Sends `request` on `conn` and reads the answer, polling the
    /// connection's driver alongside. Returns what was read and, after a
    /// whole answer on a connection still open, the connection.
    async fn exchange(
        conn: Conn,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(Read, Option<Conn>), Unsent> {
        let Conn {
            mut sender,
            mut driver,
        } = conn;
        let read = {
            let work = async {
                if sender.ready().await.is_err() {
                    return Err(Some(request));
                }
                let response = sender
                    .try_send_request(request)
                    .await
                    .map_err(|mut e| e.take_message())?;
                let json = response.status().is_success() && is_json(response.headers());
                if !json {
                    return Ok(Read::Streaming(response));
                }
                let (parts, body) = response.into_parts();
                match Limited::new(body, MAX_MESSAGE).collect().await {
                    Ok(collected) => Ok(Read::Whole(parts.headers, collected.to_bytes())),
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => Ok(Read::TooLarge),
                    Err(e) => Ok(Read::Failed(e.to_string())),
                }
            };
            let mut work = std::pin::pin!(work);
            tokio::select! {
            biased;
            read = &mut work => read,
            _ = driver.as_mut() => {
                // The connection ended. Dropping it fails whatever was in
                // flight (with the request back if it was never written).
                drop(driver);
                return match work.await {
                    Ok(whole @ Read::Whole(..)) => Ok((whole, None)),
                    Ok(_) | Err(None) => Err(Unsent(None)),
                    Err(Some(request)) => Err(Unsent(Some(request))),
                };
            }
            }
        };
        match read {
            Ok(whole @ Read::Whole(..)) => Ok((whole, Some(Conn { sender, driver }))),
            Ok(Read::Streaming(response)) => {
                // The body outlives this call: the connection gets a task of
                // its own and closes once the body is read.
                drop(sender);
                tokio::spawn(async move {
                    let _ = driver.await;
                });
                Ok((Read::Streaming(response), None))
            }
            Ok(other) => Ok((other, None)),
            Err(back) => Err(Unsent(back)),
        }
    }

    /// The answer from what an exchange read; a reusable connection goes
    /// back to the pool.
    fn finish(&self, read: Read, reusable: Option<Conn>) -> Result<Answer, Failure> {
        if let Some(conn) = reusable {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        match read {
            Read::Whole(headers, body) => Ok(Answer::Json { headers, body }),
            Read::Streaming(response) if response.status().is_redirection() => {
                Err(Failure::Redirect)
            }
            Read::Streaming(response) => Ok(Answer::Other(reqwest::Response::from(
                response.map(reqwest::Body::wrap),
            ))),
            Read::TooLarge => Err(Failure::TooLarge),
            Read::Failed(reason) => Err(Failure::Transport(format!(
                "reading the response failed: {reason}"
            ))),
        }
    }
}

/// What one exchange read.
enum Read {
    Whole(HeaderMap, Bytes),
    Streaming(http::Response<Incoming>),
    TooLarge,
    Failed(String),
}

/// The connection failed before an answer; the request, if it was never
/// written.
struct Unsent(Option<http::Request<Full<Bytes>>>);

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_without_credentials_takes_the_fast_path() {
        let timeout = Duration::from_secs(1);
        let fast = |url: &str| Direct::for_url(&Url::parse(url).unwrap(), timeout);
        let direct = fast("http://127.0.0.1:8080/mcp?x=1").expect("plain http");
        assert_eq!(direct.host, "127.0.0.1:8080");
        assert_eq!(direct.uri, "/mcp?x=1");
        let v6 = fast("http://[::1]/mcp").expect("IPv6 literal");
        assert_eq!(v6.host, "[::1]");
        assert!(matches!(v6.target, Target::Addr(addr) if addr.port() == 80));
        assert!(matches!(
            fast("http://localhost:9/mcp").unwrap().target,
            Target::Name(ref n, 9) if n == "localhost"
        ));
        assert!(fast("https://127.0.0.1/mcp").is_none());
        assert!(fast("http://user:secret@127.0.0.1/mcp").is_none());
    }
}
