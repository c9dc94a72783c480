//! Option types and clap value parsers that both services' configurations
//! use, so a setting is written and read the same way everywhere.

use std::time::Duration;

use authrealm_tokens::ServiceCredential;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

impl LogFormat {
    /// The value as written in `AUTHREALM_LOG_FORMAT`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// A setting that must not be printed (a URL with a password, a token):
/// `Debug` says only that it is set. Parses from any string.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that uses it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<set>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// clap value parser for durations written `90s`, `5m`, `1h30m`, `30d`
/// (see [`authrealm_tokens::duration`]).
///
/// # Errors
/// An absolute `http://` or `https://` URL with a host and without query,
/// fragment, user info or whitespace: a base endpoint paths can be appended
/// to. What the operator writes and what the services accept (one rule).
#[must_use]
pub fn is_base_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && r.bytes().all(|b| b.is_ascii_graphic())
            && !r.contains(['?', '#', '@'])
    })
}

/// The parser's message, naming the accepted forms.
pub fn duration(s: &str) -> Result<Duration, String> {
    authrealm_tokens::duration::parse(s).map_err(|e| e.to_string())
}

/// clap value parser for the service credential (at least 16 characters).
///
/// # Errors
/// Why the credential was refused (never the credential itself).
pub fn credential(s: &str) -> Result<ServiceCredential, String> {
    ServiceCredential::new(s).map_err(|e| e.to_string())
}

/// The default values of an argument group (`#[derive(clap::Args)]`), with
/// the environment ignored: code that needs "the defaults" reads them from
/// the `#[arg]` attributes instead of writing them a second time.
///
/// # Errors
/// When a default value does not parse.
pub fn args_defaults<T: clap::Args + clap::FromArgMatches>() -> Result<T, clap::Error> {
    from_defaults(T::augment_args(clap::Command::new("defaults")))
}

/// The default values of a whole configuration (`#[derive(clap::Parser)]`),
/// with the environment ignored; see [`args_defaults`].
///
/// # Errors
/// When a default value does not parse, or an argument without a default
/// is required.
pub fn parser_defaults<T: clap::CommandFactory + clap::FromArgMatches>() -> Result<T, clap::Error> {
    from_defaults(T::command())
}

fn from_defaults<T: clap::FromArgMatches>(command: clap::Command) -> Result<T, clap::Error> {
    let name = command.get_name().to_owned();
    let matches = command
        .mut_args(|a| a.env(None::<&str>))
        .try_get_matches_from([name])?;
    T::from_arg_matches(&matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_have_a_host_and_nothing_after_the_path() {
        for ok in [
            "http://op:8080",
            "https://auth.example.com/realm",
            "http://127.0.0.1:9",
        ] {
            assert!(is_base_url(ok), "{ok}");
        }
        for bad in [
            "",
            "op:8080",
            "ftp://op",
            "http://",
            "https:///path",
            "http://op/?q",
            "http://op/#f",
            "http://user@op",
            "http://op /x",
            "http://op\n",
        ] {
            assert!(!is_base_url(bad), "{bad}");
        }
    }
    use clap::ValueEnum as _;

    #[test]
    fn log_format_names_round_trip() {
        for f in LogFormat::value_variants() {
            assert_eq!(LogFormat::from_str(f.as_str(), false), Ok(*f));
        }
    }

    #[test]
    fn durations_parse_and_bad_ones_name_the_forms() {
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        let msg = duration("5x").err().unwrap_or_default();
        assert!(msg.contains("90s"), "{msg}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::from("redis://:hunter2@redis:6379");
        assert_eq!(format!("{s:?} {:?}", Some(s.clone())), "<set> Some(<set>)");
        assert_eq!(s.expose(), "redis://:hunter2@redis:6379");
    }

    #[test]
    fn credential_errors_never_echo_the_value() {
        let msg = credential("short-secret").err().unwrap_or_default();
        assert!(!msg.is_empty());
        assert!(!msg.contains("short-secret"), "{msg}");
    }
}
