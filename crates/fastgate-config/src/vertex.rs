//! Vertex AI upstreams: the service-account key each credential holds, and the
//! default endpoint of a location. Parsed here so that `check` refuses a broken
//! key at load, and again by the proxy when it builds a snapshot.

use serde::Deserialize;

use crate::secret::Secret;

/// The fields FastGate needs from a Google service-account JSON key.
#[derive(Clone, Debug)]
pub struct ServiceAccountKey {
    pub client_email: String,
    /// The PEM (`-----BEGIN PRIVATE KEY-----`, PKCS#8) signing the token requests.
    pub private_key: Secret<String>,
    pub token_uri: String,
}

/// Why a credential's `key` is not a usable service-account key. The messages
/// never quote the key (nor the file's content).
#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountError {
    #[error("cannot read the service-account key file `{path}`: {reason}")]
    File { path: String, reason: String },
    #[error(
        "not a service-account JSON key (expected the key file's JSON text, or a path \
         starting with `/` or `./`): {0}"
    )]
    Json(String),
    #[error("the service-account key has no `{0}`")]
    Missing(&'static str),
    #[error("the service-account key's `private_key` is not a PEM `PRIVATE KEY` block")]
    NotPem,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    client_email: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// A credential's `key`: the JSON text itself, or a path to the file holding it
/// when it starts with `/` or `./`.
pub fn load_service_account(key: &str) -> Result<ServiceAccountKey, ServiceAccountError> {
    let key = key.trim();
    let text;
    let json = if key.starts_with('/') || key.starts_with("./") {
        text = std::fs::read_to_string(key).map_err(|e| ServiceAccountError::File {
            path: key.to_string(),
            reason: e.kind().to_string(),
        })?;
        text.as_str()
    } else {
        key
    };
    // serde_json's messages give a position, never the text.
    let raw: Raw =
        serde_json::from_str(json).map_err(|e| ServiceAccountError::Json(e.to_string()))?;
    let present = |v: Option<String>, name| {
        v.filter(|s| !s.trim().is_empty())
            .ok_or(ServiceAccountError::Missing(name))
    };
    let client_email = present(raw.client_email, "client_email")?;
    let private_key = present(raw.private_key, "private_key")?;
    let token_uri = present(raw.token_uri, "token_uri")?;
    if !private_key.contains("-----BEGIN PRIVATE KEY-----") {
        return Err(ServiceAccountError::NotPem);
    }
    if url::Url::parse(&token_uri).is_err() {
        return Err(ServiceAccountError::Json("`token_uri` is not a URL".into()));
    }
    Ok(ServiceAccountKey {
        client_email,
        private_key: Secret::new(private_key),
        token_uri,
    })
}

/// The endpoint of a Vertex AI location when `base_url` is not given.
pub fn default_base_url(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com".to_string()
    } else {
        format!("https://{location}-aiplatform.googleapis.com")
    }
}

/// A project id or location as it may appear in a URL path and host name:
/// lower-case letters, digits and `-` (project ids may also hold `.` and `:`
/// for domain-scoped projects).
pub fn is_path_safe(v: &str, allow_domain: bool) -> bool {
    !v.is_empty()
        && v.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b == b'-'
                || (allow_domain && matches!(b, b'.' | b':'))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\\nQUJD\\n-----END PRIVATE KEY-----\\n";

    fn json(email: &str, pem: &str, uri: &str) -> String {
        format!(
            r#"{{"type":"service_account","client_email":"{email}","private_key":"{pem}","token_uri":"{uri}"}}"#
        )
    }

    #[test]
    fn parses_inline_json() {
        let sa =
            load_service_account(&json("a@p.iam", PEM, "https://oauth2.example/token")).unwrap();
        assert_eq!(sa.client_email, "a@p.iam");
        assert_eq!(sa.token_uri, "https://oauth2.example/token");
        assert!(
            sa.private_key
                .expose()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
    }

    #[test]
    fn reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sa.json");
        std::fs::write(&path, json("b@p.iam", PEM, "https://t.example/x")).unwrap();
        let sa = load_service_account(path.to_str().unwrap()).unwrap();
        assert_eq!(sa.client_email, "b@p.iam");
        let missing = load_service_account("/nonexistent/sa.json").unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/sa.json"),
            "{missing}"
        );
    }

    #[test]
    fn refuses_without_quoting_the_key() {
        let secret_pem = "-----BEGIN PRIVATE KEY-----\\nSECRETBODY\\n-----END PRIVATE KEY-----";
        let no_email =
            load_service_account(&json("", secret_pem, "https://t.example")).unwrap_err();
        assert!(no_email.to_string().contains("client_email"));
        let not_json = load_service_account("sk-SECRETBODY").unwrap_err();
        assert!(!not_json.to_string().contains("SECRETBODY"), "{not_json}");
        let bad_pem =
            load_service_account(&json("a@b", "SECRETBODY", "https://t.example")).unwrap_err();
        assert!(matches!(bad_pem, ServiceAccountError::NotPem));
        assert!(!bad_pem.to_string().contains("SECRETBODY"));
        let no_uri = load_service_account(
            r#"{"client_email":"a","private_key":"-----BEGIN PRIVATE KEY-----"}"#,
        )
        .unwrap_err();
        assert!(no_uri.to_string().contains("token_uri"));
    }

    #[test]
    fn default_urls() {
        assert_eq!(
            default_base_url("global"),
            "https://aiplatform.googleapis.com"
        );
        assert_eq!(
            default_base_url("us-central1"),
            "https://us-central1-aiplatform.googleapis.com"
        );
        assert!(is_path_safe("my-proj-1", false));
        assert!(!is_path_safe("a/b", true));
        assert!(!is_path_safe("", false));
    }
}
