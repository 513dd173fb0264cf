//! The test Redis seen from the tests themselves: its address from
//! `FASTGATE_TEST_REDIS_URL`, a tiny blocking RESP client (this crate has no
//! Redis client dependency, and a blocking one can clean up from `Drop`), and
//! a guard that deletes every key under a test's prefix.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bound on connecting to Redis and on every read or write of the client.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The parts of a `redis://[user:password@]host[:port][/db]` URL.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    pub scheme: String,
    /// `user:password@` as written (possibly empty).
    pub userinfo: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// `host:port` (port 6379 when the URL has none).
    pub hostport: String,
    /// `/db` as written (possibly empty).
    pub path: String,
    pub db: Option<u32>,
}

impl RedisTarget {
    pub fn parse(url: &str) -> RedisTarget {
        let (scheme, rest) = url
            .split_once("://")
            .unwrap_or_else(|| panic!("FASTGATE_TEST_REDIS_URL has no scheme: {url:?}"));
        assert_eq!(
            scheme, "redis",
            "the fleet tests put a plain TCP proxy in front of Redis: use a redis:// URL"
        );
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let (user, password) = match userinfo.strip_suffix('@') {
            Some(creds) => match creds.split_once(':') {
                Some((u, p)) => (
                    Some(u.to_string()).filter(|u| !u.is_empty()),
                    Some(p.into()),
                ),
                None => (Some(creds.to_string()), None),
            },
            None => (None, None),
        };
        let hostport = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:6379")
        };
        let db = path
            .trim_start_matches('/')
            .split('?')
            .next()
            .filter(|d| !d.is_empty())
            .map(|d| {
                d.parse()
                    .unwrap_or_else(|_| panic!("bad Redis db in {url:?}"))
            });
        RedisTarget {
            scheme: scheme.to_string(),
            userinfo: userinfo.to_string(),
            user,
            password,
            hostport,
            path: path.to_string(),
            db,
        }
    }

    /// The same Redis (credentials and database kept) reached through a
    /// loopback port, e.g. a [`super::proxy::RedisProxy`].
    pub fn via(&self, port: u16) -> String {
        format!(
            "{}://{}127.0.0.1:{port}{}",
            self.scheme, self.userinfo, self.path
        )
    }
}

/// `FASTGATE_TEST_REDIS_URL`. The tests are compiled to run only when it was
/// set at build time (else libtest lists them as ignored); a test that runs
/// without it fails, it does not skip.
pub fn redis_url() -> String {
    match std::env::var("FASTGATE_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => panic!("FASTGATE_TEST_REDIS_URL is unset: the fleet tests need the test Redis"),
    }
}

/// One reply of Redis.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// A blocking RESP2 connection; every read and write bounded by [`IO_TIMEOUT`].
pub struct Resp {
    reader: BufReader<TcpStream>,
}

impl Resp {
    pub fn connect(target: &RedisTarget) -> std::io::Result<Resp> {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&target.hostport)?
            .next()
            .ok_or_else(|| std::io::Error::other("Redis host resolves to nothing"))?;
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut conn = Resp {
            reader: BufReader::new(stream),
        };
        if let Some(password) = &target.password {
            let mut auth = vec!["AUTH"];
            auth.extend(target.user.as_deref());
            auth.push(password);
            conn.expect_ok(&auth)?;
        }
        if let Some(db) = target.db {
            conn.expect_ok(&["SELECT", &db.to_string()])?;
        }
        Ok(conn)
    }

    pub fn cmd(&mut self, args: &[&str]) -> std::io::Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&out)?;
        self.read_reply()
    }

    fn expect_ok(&mut self, args: &[&str]) -> std::io::Result<()> {
        match self.cmd(args)? {
            Reply::Status(s) if s == "OK" => Ok(()),
            other => Err(std::io::Error::other(format!("{}: {other:?}", args[0]))),
        }
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("Redis closed the connection"));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let line = self.read_line()?;
        let (tag, rest) = line.split_at(1.min(line.len()));
        let num = || {
            rest.parse::<i64>()
                .map_err(|_| std::io::Error::other(format!("bad RESP line {line:?}")))
        };
        Ok(match tag {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(num()?),
            "$" => match usize::try_from(num()?) {
                Err(_) => Reply::Bulk(None),
                Ok(len) => {
                    let mut buf = vec![0; len + 2];
                    self.reader.read_exact(&mut buf)?;
                    buf.truncate(len);
                    Reply::Bulk(Some(buf))
                }
            },
            "*" => match usize::try_from(num()?) {
                Err(_) => Reply::Array(None),
                Ok(n) => Reply::Array(Some(
                    (0..n)
                        .map(|_| self.read_reply())
                        .collect::<std::io::Result<_>>()?,
                )),
            },
            _ => return Err(std::io::Error::other(format!("bad RESP line {line:?}"))),
        })
    }

    /// Every key matching `pattern` (SCAN, so Redis is never blocked).
    pub fn scan(&mut self, pattern: &str) -> std::io::Result<Vec<String>> {
        let mut cursor = "0".to_string();
        let mut keys = Vec::new();
        loop {
            let reply = self.cmd(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"])?;
            let Reply::Array(Some(parts)) = reply else {
                return Err(std::io::Error::other(format!("SCAN answered {reply:?}")));
            };
            let next = parts.first().and_then(Reply::text);
            if let Some(Reply::Array(Some(found))) = parts.get(1) {
                keys.extend(found.iter().filter_map(Reply::text));
            }
            match next {
                Some(c) if c != "0" => cursor = c,
                _ => return Ok(keys),
            }
        }
    }
}

/// A key prefix of its own for one test, and the deletion of its keys: at
/// [`RedisKeys::cleanup`] (checked), and again on drop should the test fail
/// before it (best effort).
pub struct RedisKeys {
    pub url: String,
    pub target: RedisTarget,
    pub prefix: String,
}

impl RedisKeys {
    /// Checks that the test Redis answers (the test fails when it does not).
    pub fn new(test: &str) -> RedisKeys {
        static N: AtomicU64 = AtomicU64::new(0);
        let url = redis_url();
        let target = RedisTarget::parse(&url);
        let mut conn = Resp::connect(&target).unwrap_or_else(|e| {
            panic!(
                "FASTGATE_TEST_REDIS_URL is set but Redis at {} is unreachable: {e}",
                target.hostport
            )
        });
        let pong = conn.cmd(&["PING"]).unwrap();
        assert_eq!(pong, Reply::Status("PONG".into()), "Redis PING");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let prefix = format!(
            "fgtest:{test}:{}-{nanos}-{}:",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        RedisKeys {
            url,
            target,
            prefix,
        }
    }

    /// The keys FastGate wrote under this prefix.
    pub fn keys(&self) -> Vec<String> {
        let mut conn = Resp::connect(&self.target).unwrap();
        conn.scan(&format!("{}*", self.prefix)).unwrap()
    }

    /// Deletes every key under the prefix (also what a Redis restart without
    /// persistence does to them); how many there were.
    pub fn wipe(&self) -> std::io::Result<usize> {
        let mut conn = Resp::connect(&self.target)?;
        let keys = conn.scan(&format!("{}*", self.prefix))?;
        for chunk in keys.chunks(500) {
            let mut args = vec!["DEL"];
            args.extend(chunk.iter().map(String::as_str));
            conn.cmd(&args)?;
        }
        Ok(keys.len())
    }

    /// Deletes the test's keys (call after the instances stopped) and checks
    /// that none is left.
    pub fn cleanup(&self) {
        self.wipe().unwrap();
        assert!(self.keys().is_empty(), "keys left under {}", self.prefix);
    }
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.wipe();
        }
    }
}
