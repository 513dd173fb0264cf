//! The signed assertion a service account trades for an access token
//! (RFC 7523 JWT bearer grant): RS256 over `{iss, scope, aud, iat, exp}`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

use super::TokenError;

/// What every Vertex AI call needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google accepts assertions valid for at most an hour.
pub const LIFETIME_SECS: u64 = 3600;

/// The key pair of a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). The error says
/// what is wrong, never what the key holds.
pub fn key_pair(pem: &str) -> Result<RsaKeyPair, TokenError> {
    // Only the lines between the BEGIN and END markers (text around them is ignored).
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| TokenError::Key("the private key's PEM body is not base64"))?;
    RsaKeyPair::from_pkcs8(&der)
        .map_err(|_| TokenError::Key("the private key is not a PKCS#8 RSA key"))
}

/// `header.claims.signature`, each base64url without padding.
pub fn assertion(
    key: &RsaKeyPair,
    client_email: &str,
    token_uri: &str,
    iat: u64,
) -> Result<String, TokenError> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": client_email,
        "scope": SCOPE,
        "aud": token_uri,
        "iat": iat,
        "exp": iat + LIFETIME_SECS,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
    let mut out = String::with_capacity(header.len() + claims.len() + 344);
    out.push_str(&header);
    out.push('.');
    out.push_str(&claims);
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        out.as_bytes(),
        &mut sig,
    )
    .map_err(|_| TokenError::Key("signing the token request failed"))?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(&sig));
    Ok(out)
}
