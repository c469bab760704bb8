//! Config: a `--state` PostgreSQL location (URL or libpq keywords) turned into a client
//! configuration, its schema, the password from `PGPASSWORD` or `~/.pgpass`, and a password-free
//! description for every message.

use super::super::StoreError;
use postgres::Config;
use postgres::config::Host;
use std::str::FromStr;
use std::time::Duration;

/// The schema used when the location names none.
pub const DEFAULT_SCHEMA: &str = "pipe";

/// How long connecting may take when the location does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the shared state is: the server, database and schema.
#[derive(Clone)]
pub struct Target {
    pub(super) config: Config,
    pub(super) schema: String,
    /// `user@host:port/db (schema s)`: what messages show; never the password.
    shown: String,
    /// The password, kept only to scrub it from any message that might echo it.
    password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    /// Reads a location: `postgres[ql]://USER[:PASSWORD]@HOST:PORT/DB?schema=S` or
    /// `host=/socket/dir dbname=DB user=U schema=S`.
    pub fn parse(text: &str) -> Result<Target, StoreError> {
        let (rest, schema) = split_schema(text)?;
        let invalid = |reason: String| StoreError::Invalid {
            what: "the PostgreSQL state location".to_string(),
            reason,
        };
        let mut config = Config::from_str(&rest).map_err(|e| invalid(e.to_string()))?;
        fill_defaults(&mut config);
        if config.get_password().is_none()
            && let Some(password) = environment_password(&config)
        {
            config.password(password);
        }
        let password = config
            .get_password()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
        let shown = format!("PostgreSQL {} (schema {schema})", server_text(&config));
        let target = Target {
            config,
            schema,
            shown,
            password,
        };
        Ok(target)
    }

    /// `PostgreSQL user@host:port/db (schema s)`.
    pub fn describe(&self) -> String {
        self.shown.clone()
    }

    /// `text` with the password (if any) replaced, for messages built from server errors.
    pub fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(password) if !password.is_empty() => text.replace(password.as_str(), "***"),
            _ => text.to_string(),
        }
    }

    /// The schema, quoted as an SQL identifier.
    pub fn quoted_schema(&self) -> String {
        format!("\"{}\"", self.schema)
    }
}

/// Removes `schema=S` from the location (the client does not know that key) and checks it.
fn split_schema(text: &str) -> Result<(String, String), StoreError> {
    let is_url = text.starts_with("postgres://") || text.starts_with("postgresql://");
    let (rest, schema) = if is_url {
        split_url_schema(text)
    } else {
        split_keyword_schema(text)
    };
    let schema = schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
    let valid = schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(StoreError::Invalid {
            what: "the PostgreSQL state location".to_string(),
            reason: format!(
                "schema `{schema}` is not a plain name (lower-case letters, digits and `_`, \
                 at most 63)"
            ),
        });
    }
    Ok((rest, schema))
}

fn split_url_schema(text: &str) -> (String, Option<String>) {
    let Some((base, query)) = text.split_once('?') else {
        return (text.to_string(), None);
    };
    let mut schema = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("schema=") {
            Some(value) => {
                schema = Some(value.to_string());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    if kept.is_empty() {
        (base.to_string(), schema)
    } else {
        (format!("{base}?{}", kept.join("&")), schema)
    }
}

fn split_keyword_schema(text: &str) -> (String, Option<String>) {
    let mut schema = None;
    let kept: Vec<&str> = text
        .split_whitespace()
        .filter(|word| match word.strip_prefix("schema=") {
            Some(value) => {
                schema = Some(value.trim_matches('\'').to_string());
                false
            }
            None => true,
        })
        .collect();
    (kept.join(" "), schema)
}

/// What libpq would assume: `PGUSER` or the login name, `PGHOST` or the local socket
/// directory, `PGPORT`, `PGDATABASE`; a bounded connect timeout.
fn fill_defaults(config: &mut Config) {
    if config.get_user().is_none() {
        let user = std::env::var("PGUSER").ok().or_else(login_name);
        if let Some(user) = user {
            config.user(&user);
        }
    }
    if config.get_hosts().is_empty() {
        let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".to_string());
        config.host(&host);
    }
    if config.get_ports().is_empty()
        && let Some(port) = std::env::var("PGPORT").ok().and_then(|p| p.parse().ok())
    {
        config.port(port);
    }
    if config.get_dbname().is_none()
        && let Ok(dbname) = std::env::var("PGDATABASE")
    {
        config.dbname(&dbname);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("pipe");
    }
}

fn login_name() -> Option<String> {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// `PGPASSWORD`, else the first matching line of `PGPASSFILE` or `~/.pgpass`.
fn environment_password(config: &Config) -> Option<String> {
    if let Ok(password) = std::env::var("PGPASSWORD") {
        return Some(password);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".pgpass"))
        })?;
    let text = std::fs::read_to_string(file).ok()?;
    let wanted = [
        host_text(config.get_hosts().first()),
        config
            .get_ports()
            .first()
            .copied()
            .unwrap_or(5432)
            .to_string(),
        config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or_default()
            .to_string(),
        config.get_user().unwrap_or_default().to_string(),
    ];
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| pgpass_match(line, &wanted))
}

/// The password of a `host:port:db:user:password` line whose fields match (`*` matches all).
fn pgpass_match(line: &str, wanted: &[String; 4]) -> Option<String> {
    let fields = pgpass_fields(line);
    let [host, port, db, user, password] = fields.as_slice() else {
        return None;
    };
    let matches = [host, port, db, user]
        .iter()
        .zip(wanted)
        .all(|(field, want)| field.as_str() == "*" || field == &want);
    // libpq writes a unix-socket host as `localhost` in .pgpass.
    let host_is_local = host.as_str() == "localhost" && wanted[0].starts_with('/');
    let matches = matches
        || (host_is_local
            && [port, db, user]
                .iter()
                .zip(&wanted[1..])
                .all(|(field, want)| field.as_str() == "*" || field == &want));
    matches.then(|| password.clone())
}

/// Splits on `:`, honouring `\:` and `\\`.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(field)) = (chars.next(), fields.last_mut()) {
                    field.push(next);
                }
            }
            ':' => fields.push(String::new()),
            other => {
                if let Some(field) = fields.last_mut() {
                    field.push(other);
                }
            }
        }
    }
    fields
}

fn host_text(host: Option<&Host>) -> String {
    match host {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    }
}

/// `user@host:port/db`, without the password.
fn server_text(config: &Config) -> String {
    let user = config.get_user().unwrap_or("?");
    let host = host_text(config.get_hosts().first());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_keywords_give_the_schema_and_never_show_the_password() {
        let url = Target::parse("postgres://ci:hunter2@db.example:5433/state?schema=team").unwrap();
        assert_eq!(url.schema, "team");
        assert_eq!(
            url.describe(),
            "PostgreSQL ci@db.example:5433/state (schema team)"
        );
        assert_eq!(
            url.scrub("password hunter2 rejected"),
            "password *** rejected"
        );
        let keywords = Target::parse("host=/tmp/sock dbname=x user=y").unwrap();
        assert_eq!(keywords.schema, DEFAULT_SCHEMA);
        assert_eq!(
            keywords.describe(),
            "PostgreSQL y@/tmp/sock:5432/x (schema pipe)"
        );
        let both = Target::parse("postgresql://u@h/d?connect_timeout=3&schema=s1").unwrap();
        assert_eq!(both.schema, "s1");
        assert_eq!(
            both.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
    }

    #[test]
    fn an_unsafe_schema_or_a_bad_key_is_refused_without_the_password() {
        let error = Target::parse("postgres://u:pw1234@h/d?schema=a;drop").unwrap_err();
        assert!(error.to_string().contains("not a plain name"), "{error}");
        let error = Target::parse("postgres://u:pw1234@h/d?nonsense=1").unwrap_err();
        assert!(!error.to_string().contains("pw1234"), "{error}");
    }

    #[test]
    fn pgpass_lines_match_by_field_with_wildcards_and_escapes() {
        let wanted = ["db".to_string(), "5432".into(), "state".into(), "ci".into()];
        assert_eq!(
            pgpass_match("db:5432:state:ci:s3cret", &wanted).as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            pgpass_match("*:*:*:ci:a\\:b", &wanted).as_deref(),
            Some("a:b")
        );
        assert_eq!(pgpass_match("other:*:*:ci:x", &wanted), None);
    }
}
