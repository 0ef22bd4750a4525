//! Bearer JWTs of one OAuth 2.1 authorization server, checked as the MCP
//! authorization spec asks of a resource server.
//!
//! The issuer's signing keys come from its JWKS, found through its metadata
//! (OpenID Connect discovery, else RFC 8414), fetched when the first token
//! arrives and again when a token names a key id the set does not hold (a
//! rotation), with a backoff while fetches bring nothing new. A token's
//! `alg` must be one its key allows (the key's own `alg`, else its type's
//! family); symmetric keys in the set are ignored, so an HS256 token signed
//! with a public key, or `alg: none`, never verifies. `iss` must be the
//! issuer, `aud` must name the resource the token is presented to, `exp`
//! and `nbf` hold within the configured leeway. A validated token is
//! remembered until it expires, so the next request with it costs a lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use only1mcp_core::config::OAuthConfig;
use only1mcp_core::pipeline::Principal;
use serde_json::{Map, Value};

/// The largest metadata or JWKS document read.
const MAX_DOCUMENT: usize = 1024 * 1024;
/// The time one metadata or JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two fetches that bring nothing new.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Checks one issuer's JWTs.
pub(crate) struct Verifier {
    issuer: String,
    /// A configured JWKS URL (else discovered).
    jwks_uri: Option<String>,
    roles_claim: Vec<String>,
    leeway: u64,
    client: reqwest::Client,
    keys: ArcSwap<KeySet>,
    fetch: tokio::sync::Mutex<Fetch>,
    cache: TokenCache,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("keys", &self.keys.load().by_kid.len())
            .finish_non_exhaustive()
    }
}

/// The issuer's usable keys.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    /// Keys without a `kid` (a token without one may use the only key).
    unnamed: Vec<Arc<Key>>,
}

struct Key {
    decoding: DecodingKey,
    /// The algorithms a token signed with it may name.
    algorithms: Vec<Algorithm>,
}

/// When the keys may be fetched again.
#[derive(Debug, Default)]
struct Fetch {
    jwks_uri: Option<String>,
    not_before: Option<Instant>,
    delay: Duration,
}

impl Verifier {
    /// A verifier for `config`; nothing is fetched yet.
    pub(crate) fn new(config: &OAuthConfig, cache_size: usize) -> Result<Self, String> {
        check_url(&config.issuer, "auth.oauth.issuer")?;
        if let Some(uri) = &config.jwks_uri {
            check_url(uri, "auth.oauth.jwks_uri")?;
        }
        Ok(Self {
            issuer: config.issuer.clone(),
            jwks_uri: config.jwks_uri.clone(),
            roles_claim: config.roles_claim.split('.').map(str::to_owned).collect(),
            leeway: config.leeway.as_secs(),
            client: client()?,
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetch: tokio::sync::Mutex::new(Fetch::default()),
            cache: TokenCache::new(cache_size),
        })
    }

    /// The principal `token` stands for, if it is valid and meant for one
    /// of `audiences`; else why not (words for the client).
    pub(crate) async fn verify(
        &self,
        token: &str,
        audiences: [&str; 2],
    ) -> Result<Arc<Principal>, String> {
        let now = unix_now();
        if let Some(principal) = self.cache.get(token, now, self.leeway, audiences) {
            return Ok(principal);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| format!("the token's header is not valid: {e}"))?;
        let key = match self.key(header.kid.as_deref()) {
            Some(key) => key,
            None => {
                self.refresh(header.kid.as_deref()).await;
                self.key(header.kid.as_deref())
                    .ok_or_else(|| "the token names a key the issuer does not publish".to_owned())?
            }
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(format!(
                "the token's alg {:?} is not one its key allows",
                header.alg
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        validation.required_spec_claims = ["exp", "iss", "aud"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(|e| format!("the token is not valid: {e}"))?;
        let claims = data.claims;
        let audience = strings(claims.get("aud"));
        if !audience.iter().any(|a| audiences.contains(&a.as_str())) {
            return Err("the token is not meant for this resource (aud)".to_owned());
        }
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let principal = Arc::new(self.principal(claims));
        self.cache
            .insert(token, principal.clone(), exp, audience, now, self.leeway);
        Ok(principal)
    }

    /// What the claims say of the caller.
    fn principal(&self, claims: Map<String, Value>) -> Principal {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let subject = text("sub")
            .or_else(|| text("client_id"))
            .or_else(|| text("azp"))
            .unwrap_or_default();
        let mut scopes: Vec<String> = claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| s.split_ascii_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        if scopes.is_empty() {
            scopes = strings(claims.get("scp"));
        }
        let mut at = Some(&claims);
        let mut roles = None;
        for (depth, name) in self.roles_claim.iter().enumerate() {
            let value = at.and_then(|object| object.get(name));
            if depth + 1 == self.roles_claim.len() {
                roles = value;
            } else {
                at = value.and_then(Value::as_object);
            }
        }
        Principal {
            subject,
            issuer: text("iss"),
            roles: strings(roles),
            scopes,
            claims,
        }
    }

    fn key(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        let keys = self.keys.load();
        match kid {
            Some(kid) => keys.by_kid.get(kid).cloned(),
            None if keys.unnamed.len() == 1 && keys.by_kid.is_empty() => {
                keys.unnamed.first().cloned()
            }
            None => None,
        }
    }

    /// Fetches the JWKS again, unless a fetch that brought nothing new
    /// was too recent (the wait doubles each time, 1 s to 5 min, and
    /// resets when the set changes). One fetch at a time; a caller that
    /// waited for another's finds its key without fetching.
    async fn refresh(&self, kid: Option<&str>) {
        let mut fetch = self.fetch.lock().await;
        if self.key(kid).is_some() {
            return;
        }
        if fetch.not_before.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let fetched = self.fetch_keys(&mut fetch).await;
        let changed = match fetched {
            Ok(keys) => {
                let old = self.keys.load();
                let changed = keys.by_kid.len() != old.by_kid.len()
                    || keys.by_kid.keys().any(|k| !old.by_kid.contains_key(k))
                    || keys.unnamed.len() != old.unnamed.len();
                tracing::info!(issuer = %self.issuer, keys = keys.by_kid.len() + keys.unnamed.len(), "Fetched the issuer's signing keys");
                self.keys.store(Arc::new(keys));
                changed
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "Cannot fetch the issuer's signing keys");
                false
            }
        };
        if changed {
            fetch.delay = Duration::ZERO;
            fetch.not_before = None;
        } else {
            fetch.delay = (fetch.delay * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
            fetch.not_before = Some(Instant::now() + fetch.delay);
        }
    }

    async fn fetch_keys(&self, fetch: &mut Fetch) -> Result<KeySet, String> {
        let uri = match (&self.jwks_uri, &fetch.jwks_uri) {
            (Some(uri), _) | (None, Some(uri)) => uri.clone(),
            (None, None) => {
                let uri = self.discover().await?;
                fetch.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let set: JwkSet = serde_json::from_slice(&self.get(&uri).await?)
            .map_err(|e| format!("{uri}: not a JWK set: {e}"))?;
        let mut keys = KeySet::default();
        for jwk in &set.keys {
            let Some(key) = usable(jwk) else { continue };
            match &jwk.common.key_id {
                Some(kid) => {
                    keys.by_kid.insert(kid.clone(), Arc::new(key));
                }
                None => keys.unnamed.push(Arc::new(key)),
            }
        }
        Ok(keys)
    }

    /// The JWKS URL from the issuer's metadata: OpenID Connect discovery,
    /// else RFC 8414 (the well-known path inserted before the issuer's
    /// path). The metadata must name the same issuer.
    async fn discover(&self) -> Result<String, String> {
        let issuer = self.issuer.trim_end_matches('/');
        let url = url::Url::parse(issuer).map_err(|e| e.to_string())?;
        let path = url.path().trim_end_matches('/');
        let origin = url.origin().ascii_serialization();
        let candidates = [
            format!("{issuer}/.well-known/openid-configuration"),
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
        ];
        let mut last = String::new();
        for candidate in candidates {
            match self.get(&candidate).await {
                Ok(body) => {
                    let meta: Value = serde_json::from_slice(&body)
                        .map_err(|e| format!("{candidate}: not JSON: {e}"))?;
                    let named = meta.get("issuer").and_then(Value::as_str);
                    if named.map(|n| n.trim_end_matches('/')) != Some(issuer) {
                        return Err(format!(
                            "{candidate} names issuer {named:?}, not {issuer:?}"
                        ));
                    }
                    let jwks = meta
                        .get("jwks_uri")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{candidate} has no jwks_uri"))?;
                    check_url(jwks, "jwks_uri")?;
                    return Ok(jwks.to_owned());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A document of at most [`MAX_DOCUMENT`] bytes.
    async fn get(&self, uri: &str) -> Result<Vec<u8>, String> {
        let fetch = async {
            let mut response = self
                .client
                .get(uri)
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|e| format!("{uri}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("{uri}: HTTP {}", response.status()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| format!("{uri}: {e}"))? {
                if body.len() + chunk.len() > MAX_DOCUMENT {
                    return Err(format!("{uri}: larger than {MAX_DOCUMENT} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| format!("{uri}: no answer within {}s", FETCH_TIMEOUT.as_secs()))?
    }
}

/// A key of the set the gateway will verify with, and the algorithms it
/// allows; `None` for a symmetric key, one meant for encryption, or one of
/// a type jsonwebtoken does not verify with.
fn usable(jwk: &Jwk) -> Option<Key> {
    use jsonwebtoken::jwk::PublicKeyUse;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(_) => &[Algorithm::EdDSA],
        // Symmetric keys (`oct`) and anything newer: never.
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        Some(named) => {
            // (KeyAlgorithm and Algorithm share their names.)
            let named: Algorithm = named.to_string().parse().ok()?;
            if !family.contains(&named) {
                return None;
            }
            vec![named]
        }
        None => family.to_vec(),
    };
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        decoding,
        algorithms,
    })
}

/// Refuses a URL that is not `https://`, or `http://` to a loopback host.
fn check_url(text: &str, what: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("{what}: {e}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(name)) => name == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "{what}: {text} must be https:// (http:// only to a loopback host)"
                ))
            }
        }
        other => Err(format!("{what}: {other}:// is not http(s)")),
    }
}

/// The HTTP client for metadata and keys: rustls on ring, the webpki roots,
/// no redirects to another place (none followed at all).
fn client() -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(FETCH_TIMEOUT)
        .no_proxy()
        .user_agent(concat!("only1mcp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A claim that is a string or an array of strings, as strings.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Validated tokens, each until it expires: at most `capacity`.
struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<Box<str>, Cached, foldhash::fast::RandomState>>,
}

struct Cached {
    principal: Arc<Principal>,
    exp: u64,
    audience: Vec<String>,
}

impl TokenCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::default()),
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Cached, foldhash::fast::RandomState>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The principal of `token` if it was validated, has not expired and
    /// names one of `audiences`.
    fn get(
        &self,
        token: &str,
        now: u64,
        leeway: u64,
        audiences: [&str; 2],
    ) -> Option<Arc<Principal>> {
        let mut entries = self.lock();
        let cached = entries.get(token)?;
        if cached.exp.saturating_add(leeway) <= now {
            entries.remove(token);
            return None;
        }
        cached
            .audience
            .iter()
            .any(|a| audiences.contains(&a.as_str()))
            .then(|| cached.principal.clone())
    }

    /// Remembers a validated token. When full, expired entries go; if none
    /// had, one entry goes (whichever the map yields first).
    fn insert(
        &self,
        token: &str,
        principal: Arc<Principal>,
        exp: u64,
        audience: Vec<String>,
        now: u64,
        leeway: u64,
    ) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(token) {
            entries.retain(|_, c| c.exp.saturating_add(leeway) > now);
            if entries.len() >= self.capacity
                && let Some(victim) = entries.keys().next().cloned()
            {
                entries.remove(&victim);
            }
        }
        entries.insert(
            token.into(),
            Cached {
                principal,
                exp,
                audience,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(subject: &str) -> Arc<Principal> {
        Arc::new(Principal {
            subject: subject.into(),
            ..Principal::default()
        })
    }

    #[test]
    fn the_token_cache_is_bounded_and_forgets_expired_tokens() {
        let cache = TokenCache::new(2);
        let aud = || vec!["https://gw/mcp".to_owned()];
        let audiences = ["https://gw/mcp", "https://gw/mcp"];
        cache.insert("a", principal("a"), 100, aud(), 10, 0);
        cache.insert("b", principal("b"), 200, aud(), 10, 0);
        cache.insert("c", principal("c"), 300, aud(), 10, 0);
        assert_eq!(cache.lock().len(), 2);
        assert!(cache.get("c", 10, 0, audiences).is_some());
        // Expired (with no leeway): gone, and not answered.
        assert!(cache.get("c", 300, 0, audiences).is_none());
        assert!(!cache.lock().contains_key("c"));
        // Another resource's token is not taken from the cache.
        cache.insert("d", principal("d"), 300, aud(), 10, 0);
        assert!(
            cache
                .get("d", 10, 0, ["https://gw/mcp/dev", "https://other"])
                .is_none()
        );
    }

    #[test]
    fn http_is_refused_except_to_loopback() {
        assert!(check_url("https://issuer.example", "x").is_ok());
        assert!(check_url("http://127.0.0.1:9/", "x").is_ok());
        assert!(check_url("http://localhost:9/", "x").is_ok());
        assert!(check_url("http://issuer.example", "x").is_err());
        assert!(check_url("ftp://issuer.example", "x").is_err());
    }

    #[test]
    fn symmetric_keys_are_never_used() {
        let oct: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "oct", "kid": "s", "k": "c2VjcmV0"
        }))
        .expect("jwk");
        assert!(usable(&oct).is_none());
    }
}
