//! Form bodies of the public OAuth endpoints
//! (`application/x-www-form-urlencoded`, RFC 6749 §3.2, RFC 7009 §2.1,
//! RFC 7662 §2.1): a parameter may appear once; an empty one counts as
//! absent (RFC 6749 §3.1); unknown ones are ignored. `Debug` shows the
//! parameter names, never their values (codes, secrets, tokens).

use std::collections::HashMap;

use authrealm_tokens::oauth::ErrorCode;
use axum::http::{HeaderMap, header};

use crate::error::{Error, Result};

/// The parameters of one form body.
#[derive(Default)]
pub struct Form {
    params: HashMap<String, String>,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.params.keys().collect();
        names.sort_unstable();
        f.debug_struct("Form").field("params", &names).finish()
    }
}

impl Form {
    /// Parses a form body sent with `headers`.
    ///
    /// # Errors
    /// `invalid_request` for another content type or a repeated parameter.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(Error::oauth(
                ErrorCode::InvalidRequest,
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            if value.is_empty() {
                continue;
            }
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(Error::oauth(
                    ErrorCode::InvalidRequest,
                    format!("parameter `{}` appears more than once", printable(&name)),
                ));
            }
        }
        Ok(Self { params })
    }

    /// A parameter, when present and not empty.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A required parameter.
    ///
    /// # Errors
    /// `invalid_request` naming it when it is missing.
    pub fn require(&self, name: &'static str) -> Result<&str> {
        self.get(name).ok_or_else(|| {
            Error::oauth(
                ErrorCode::InvalidRequest,
                format!("parameter `{name}` is required"),
            )
        })
    }
}

/// A parameter name as it may appear in an error: at most 40 printable
/// ASCII characters.
fn printable(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_graphic)
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn form_headers(ct: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        h
    }

    #[test]
    fn parameters_appear_once_and_empty_ones_are_absent() -> Result<()> {
        let h = form_headers("application/x-www-form-urlencoded; charset=UTF-8");
        let f = Form::parse(&h, b"grant_type=client_credentials&scope=&x=a%20b+c")?;
        assert_eq!(f.get("grant_type"), Some("client_credentials"));
        assert_eq!(f.get("scope"), None);
        assert_eq!(f.get("x"), Some("a b c"));
        assert!(f.require("code").is_err());
        let twice = Form::parse(&h, b"code=a&code=b");
        assert!(matches!(
            twice,
            Err(Error::OAuth {
                code: ErrorCode::InvalidRequest,
                ..
            })
        ));
        assert!(Form::parse(&form_headers("application/json"), b"{}").is_err());
        let shown = format!("{:?}", Form::parse(&h, b"client_secret=hunter2hunter2")?);
        assert!(!shown.contains("hunter2") && shown.contains("client_secret"));
        Ok(())
    }
}
