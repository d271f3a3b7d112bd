//! b3scale's API tokens: HS384 JSON Web Tokens signed with `B3SCALE_API_JWT_SECRET`
//! (b3scale `pkg/http/auth/jwt.go`). A leaf module: the balancer client signs its admin
//! tokens here and the template filter `b3scale_token` the node agents' tokens, without the
//! template engine importing the balancer.

use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

/// A b3scale API token that never expires and never changes: an HS384 JWT with `sub` and
/// `scope`, signed with `B3SCALE_API_JWT_SECRET`. With scope `b3scale:node` and `sub` the
/// agent's ref it is the node agent's token, as `b3scalectl auth authorize_node_agent --ref
/// REF` makes it (`cmd/b3scalectl/cli.go`; upstream's carry no `exp` either), but without
/// `iat` and `jti`, so that the same values always give the same token and the agent's
/// configuration file stays unchanged between applies.
///
/// # Errors
/// A `sub` that is empty or longer than 64 bytes (a node's ref is stored in `agent_ref
/// VARCHAR(64)`, migration `0002_node_agent_api.sql`), or an empty `scope`.
pub fn static_token(secret: &str, sub: &str, scope: &str) -> std::result::Result<String, String> {
    if sub.is_empty() || sub.len() > 64 {
        return Err(format!(
            "a b3scale token's sub (a node agent's ref, agent_ref VARCHAR(64)) must have 1 to 64 bytes, not {}",
            sub.len()
        ));
    }
    if scope.is_empty() {
        return Err("a b3scale token needs a scope".into());
    }
    Ok(sign(secret, &json!({"scope": scope, "sub": sub})))
}

fn sign(secret: &str, claims: &Value) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = b64(br#"{"alg":"HS384","typ":"JWT"}"#);
    let claims = b64(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{claims}");
    let mut mac = hmac::Hmac::<sha2::Sha384>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

/// A signed HS384 JWT for `sub` with `scope`, valid for `ttl` seconds from `now` (Unix
/// seconds): the form b3scale's `pkg/http/auth/jwt.go` checks against `secret`.
pub fn token(secret: &str, sub: &str, scope: &str, now: u64, ttl: u64) -> String {
    sign(
        secret,
        &json!({"sub": sub, "scope": scope, "iat": now, "exp": now + ttl}),
    )
}
