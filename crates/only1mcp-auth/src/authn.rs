//! Admission: who a request to an HTTP face comes from, from its
//! `Authorization: Bearer` header, or why it is refused (401 or 403 with
//! the `WWW-Authenticate` challenge the MCP authorization spec asks for).
//!
//! A bearer that looks like a JWT (three dot-separated parts) goes to the
//! OAuth verifier when `auth.oauth` is set; anything else is compared with
//! every API key's SHA-256 digest in constant time (no early exit, so the
//! time taken does not tell how much of a digest matched).

use std::collections::BTreeMap;
use std::sync::Arc;

use only1mcp_core::config::AuthConfig;
use only1mcp_core::config::auth::ProfileAccess;
use only1mcp_core::pipeline::Principal;
use subtle::ConstantTimeEq as _;

use crate::oauth::Verifier;

/// The longest bearer token read; a longer one is refused unread.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The well-known path of RFC 9728 Protected Resource Metadata.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The context profile served at `/mcp`, `/sse` and `/ws`.
const DEFAULT_PROFILE: &str = "default";

/// Decides who a request comes from.
#[derive(Debug)]
pub struct Admission {
    keys: Vec<ApiKey>,
    oauth: Option<OAuth>,
    profiles: BTreeMap<String, ProfileAccess>,
    /// Why nothing is admitted (a config that could not be applied).
    closed: Option<String>,
}

#[derive(Debug)]
struct OAuth {
    verifier: Verifier,
    issuer: String,
    /// The canonical resource URI of `/mcp`, without a trailing slash.
    resource: String,
    /// Its path (`/mcp`).
    resource_path: String,
    /// Its origin (`https://host:port`).
    origin: String,
    scopes_supported: Vec<String>,
    required_scopes: Vec<String>,
}

struct ApiKey {
    digest: [u8; 32],
    principal: Arc<Principal>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("subject", &self.principal.subject)
            .finish_non_exhaustive()
    }
}

/// Why a request was not admitted, as the face answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401 (no or a bad token) or 403 (a good token without the scope or
    /// role the endpoint needs).
    pub status: u16,
    /// The `WWW-Authenticate` header value, if any.
    pub challenge: Option<String>,
    /// Why, in words for the client (never the token).
    pub message: String,
}

impl Admission {
    /// Admission as `auth` configures it; `None` when it configures none
    /// (no API keys, no OAuth): the faces then admit everyone unchecked.
    /// API keys given through the environment are read now.
    pub fn new(auth: &AuthConfig) -> Result<Option<Self>, String> {
        if !auth.enabled() {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(auth.api_keys.len());
        for (idx, key) in auth.api_keys.iter().enumerate() {
            let digest = match (&key.sha256, &key.env) {
                (Some(hex), _) => from_hex(hex)
                    .ok_or_else(|| format!("auth.api_keys[{idx}].sha256 is not 64 hex digits"))?,
                (None, Some(var)) => match std::env::var(var) {
                    Ok(value) if !value.is_empty() => sha256(value.as_bytes()),
                    _ => {
                        return Err(format!(
                            "auth.api_keys[{idx}].env: the variable {var} is not set"
                        ));
                    }
                },
                (None, None) => return Err(format!("auth.api_keys[{idx}] has no key")),
            };
            keys.push(ApiKey {
                digest,
                principal: Arc::new(Principal {
                    subject: key.name.clone(),
                    issuer: None,
                    roles: key.roles.clone(),
                    scopes: key.scopes.clone(),
                    claims: serde_json::Map::new(),
                }),
            });
        }
        let oauth = match &auth.oauth {
            Some(config) => {
                let resource = config.resource.trim_end_matches('/').to_owned();
                let url =
                    url::Url::parse(&resource).map_err(|e| format!("auth.oauth.resource: {e}"))?;
                Some(OAuth {
                    verifier: Verifier::new(config, auth.cache_size)?,
                    issuer: config.issuer.clone(),
                    resource_path: url.path().trim_end_matches('/').to_owned(),
                    origin: url.origin().ascii_serialization(),
                    resource,
                    scopes_supported: config.scopes_supported.clone(),
                    required_scopes: config.required_scopes.clone(),
                })
            }
            None => None,
        };
        Ok(Some(Self {
            keys,
            oauth,
            profiles: auth.profiles.clone(),
            closed: None,
        }))
    }

    /// An admission that refuses every request (503), for a config that
    /// asks for authentication the gateway cannot set up: never an open
    /// door.
    pub fn closed(reason: String) -> Self {
        Self {
            keys: Vec::new(),
            oauth: None,
            profiles: BTreeMap::new(),
            closed: Some(reason),
        }
    }

    /// Who sent a request to `profile`'s endpoint with this `Authorization`
    /// header value, or why it is refused.
    pub async fn admit(
        &self,
        authorization: Option<&str>,
        profile: &str,
    ) -> Result<Arc<Principal>, Refusal> {
        if self.closed.is_some() {
            return Err(Refusal {
                status: 503,
                challenge: None,
                message: "authentication is not set up (see the gateway's log)".to_owned(),
            });
        }
        let Some(token) = authorization.and_then(bearer) else {
            return Err(self.unauthenticated(profile));
        };
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(self.invalid(profile, "the bearer token is empty or too long"));
        }
        let principal = match &self.oauth {
            Some(oauth) if looks_like_jwt(token) => {
                // `/mcp/<profile>`'s own URI (also for `default`, served
                // at `/mcp/default` too), or the gateway's.
                let own = format!("{}/{profile}", oauth.resource);
                let audiences = [oauth.resource.as_str(), own.as_str()];
                oauth
                    .verifier
                    .verify(token, audiences)
                    .await
                    .map_err(|reason| self.invalid(profile, &reason))?
            }
            _ => self
                .api_key(token)
                .ok_or_else(|| self.invalid(profile, "the bearer token is not valid"))?,
        };
        self.may_use(&principal, profile)?;
        Ok(principal)
    }

    /// Whether `principal` may use `profile`: one of its roles, and every
    /// scope required (OAuth's own and the profile's).
    fn may_use(&self, principal: &Principal, profile: &str) -> Result<(), Refusal> {
        let access = self.profiles.get(profile);
        if let Some(access) = access
            && !access.roles.is_empty()
            && !access.roles.iter().any(|r| principal.has_role(r))
        {
            return Err(Refusal {
                status: 403,
                challenge: None,
                message: format!("{} may not use the profile {profile:?}", principal.subject),
            });
        }
        let required = self.required_scopes(profile);
        if required.iter().any(|s| !principal.has_scope(s)) {
            let mut challenge = format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                required.join(" ")
            );
            if let Some(oauth) = &self.oauth {
                challenge.push_str(&format!(
                    ", resource_metadata=\"{}\"",
                    oauth.metadata_url(profile)
                ));
            }
            return Err(Refusal {
                status: 403,
                challenge: Some(challenge),
                message: format!("the token lacks a scope: needs {}", required.join(" ")),
            });
        }
        Ok(())
    }

    fn required_scopes(&self, profile: &str) -> Vec<&str> {
        let mut scopes: Vec<&str> = Vec::new();
        if let Some(oauth) = &self.oauth {
            scopes.extend(oauth.required_scopes.iter().map(String::as_str));
        }
        if let Some(access) = self.profiles.get(profile) {
            scopes.extend(access.scopes.iter().map(String::as_str));
        }
        scopes
    }

    /// The API key `token` is, compared with every key's digest.
    fn api_key(&self, token: &str) -> Option<Arc<Principal>> {
        let digest = sha256(token.as_bytes());
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(&digest)) {
                found = Some(key.principal.clone());
            }
        }
        found
    }

    /// 401 for a request without a bearer token: the challenge names the
    /// resource metadata (and the scopes needed), per the MCP spec.
    fn unauthenticated(&self, profile: &str) -> Refusal {
        let mut challenge = "Bearer".to_owned();
        let mut parts = Vec::new();
        if let Some(oauth) = &self.oauth {
            parts.push(format!(
                "resource_metadata=\"{}\"",
                oauth.metadata_url(profile)
            ));
        }
        let required = self.required_scopes(profile);
        if !required.is_empty() {
            parts.push(format!("scope=\"{}\"", required.join(" ")));
        }
        if !parts.is_empty() {
            challenge.push(' ');
            challenge.push_str(&parts.join(", "));
        }
        Refusal {
            status: 401,
            challenge: Some(challenge),
            message: "authentication required: send Authorization: Bearer <token>".to_owned(),
        }
    }

    /// 401 `invalid_token`.
    fn invalid(&self, profile: &str, reason: &str) -> Refusal {
        let mut challenge = format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            reason.replace(['"', '\\'], "'")
        );
        if let Some(oauth) = &self.oauth {
            challenge.push_str(&format!(
                ", resource_metadata=\"{}\"",
                oauth.metadata_url(profile)
            ));
        }
        Refusal {
            status: 401,
            challenge: Some(challenge),
            message: reason.to_owned(),
        }
    }

    /// The RFC 9728 metadata document served at `METADATA_PATH` followed
    /// by `suffix` (`""`, the resource's path, or that path and
    /// `/<profile>`), with the profile it is about; `None` when that path
    /// names no resource of this gateway or OAuth is not configured.
    pub fn metadata(&self, suffix: &str) -> Option<(String, Vec<u8>)> {
        let oauth = self.oauth.as_ref()?;
        let (profile, resource) = if suffix.is_empty() || suffix == oauth.resource_path {
            (DEFAULT_PROFILE.to_owned(), oauth.resource.clone())
        } else {
            let rest = suffix.strip_prefix(oauth.resource_path.as_str())?;
            let name = rest.strip_prefix('/')?;
            if name.is_empty() || name.contains('/') {
                return None;
            }
            (name.to_owned(), format!("{}/{name}", oauth.resource))
        };
        let mut scopes = oauth.scopes_supported.clone();
        for scope in self.required_scopes(&profile) {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        let document = serde_json::json!({
            "resource": resource,
            "authorization_servers": [oauth.issuer],
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "Only1MCP",
        });
        Some((profile, document.to_string().into_bytes()))
    }
}

impl OAuth {
    /// Where the metadata of `profile`'s endpoint is (RFC 9728 §3.1: the
    /// well-known path between the host and the resource's path).
    fn metadata_url(&self, profile: &str) -> String {
        let mut url = format!("{}{METADATA_PATH}{}", self.origin, self.resource_path);
        if profile != DEFAULT_PROFILE {
            url.push('/');
            url.push_str(profile);
        }
        url
    }
}

/// The token of a `Bearer` credential (the scheme in any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches(' '))
}

fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn from_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (idx, pair) in hex.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[idx] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use only1mcp_core::config::auth::ApiKeyConfig;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn admission(profiles: BTreeMap<String, ProfileAccess>) -> Admission {
        let config = AuthConfig {
            api_keys: vec![ApiKeyConfig {
                name: "ci".into(),
                sha256: Some(hex(&sha256(b"key-one"))),
                roles: vec!["dev".into()],
                ..ApiKeyConfig::default()
            }],
            profiles,
            cache_size: 10,
            ..AuthConfig::default()
        };
        Admission::new(&config).expect("valid").expect("enabled")
    }

    fn run<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn an_api_key_is_admitted_as_its_principal_and_a_wrong_one_is_not() {
        let admission = admission(BTreeMap::new());
        let principal = run(admission.admit(Some("Bearer key-one"), "default")).expect("admitted");
        assert_eq!(principal.subject, "ci");
        assert!(principal.has_role("dev"));
        let refused = run(admission.admit(Some("bearer key-two"), "default")).expect_err("refused");
        assert_eq!(refused.status, 401);
        assert!(
            refused
                .challenge
                .as_deref()
                .is_some_and(|c| c.contains("invalid_token"))
        );
        let missing = run(admission.admit(None, "default")).expect_err("refused");
        assert_eq!(
            (missing.status, missing.challenge.as_deref()),
            (401, Some("Bearer"))
        );
        let basic =
            run(admission.admit(Some("Basic a2V5LW9uZQ=="), "default")).expect_err("refused");
        assert_eq!(basic.status, 401);
    }

    #[test]
    fn a_profile_bound_to_roles_refuses_other_principals() {
        let profiles = BTreeMap::from([(
            "ops".to_owned(),
            ProfileAccess {
                roles: vec!["ops".into()],
                scopes: vec![],
            },
        )]);
        let admission = admission(profiles);
        let refused = run(admission.admit(Some("Bearer key-one"), "ops")).expect_err("refused");
        assert_eq!(refused.status, 403);
        assert!(run(admission.admit(Some("Bearer key-one"), "default")).is_ok());
    }

    #[test]
    fn no_keys_and_no_oauth_is_no_admission() {
        assert!(
            Admission::new(&AuthConfig::default())
                .expect("valid")
                .is_none()
        );
    }
}
