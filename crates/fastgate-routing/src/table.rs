//! The compiled route table and the matcher.

use crate::route::{BodyCheck, Route, RouteError, RouteSpec};
use foldhash::{HashMap, HashMapExt};
use http::{HeaderMap, Method};
use serde_json::Value;

/// The request body as far as the caller has read it.
#[derive(Debug, Clone, Copy)]
pub enum BodyView<'a> {
    /// The body has not been read (yet).
    NotLoaded,
    /// The body, parsed as JSON.
    Json(&'a Value),
}

/// Result of [`RouteTable::find`].
#[derive(Debug, Clone)]
pub enum MatchOutcome<'t> {
    /// The first route in precedence order whose conditions all hold.
    Matched(RouteMatch<'t>),
    /// A candidate route (in precedence order, before any match) has body conditions
    /// and the body is NotLoaded: the caller reads and parses the body and calls find
    /// again with BodyView::Json.
    NeedBody,
    /// No route matches.
    NotFound,
}

/// A matched route with its captured parameters.
#[derive(Debug, Clone)]
pub struct RouteMatch<'t> {
    route: &'t Route,
    params: Vec<String>,
    rest_start: usize,
}

/// The compiled, immutable route table. Build once per snapshot; `find` is read-only
/// and the table is `Send + Sync`.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// All routes, sorted by precedence (position = rank).
    routes: Box<[Route]>,
    /// Exact-pattern routes by path -> ranks, ascending.
    exact: HashMap<Box<str>, Box<[usize]>>,
    /// Non-exact routes whose first segment is a literal, by that literal -> ranks.
    by_first: HashMap<Box<str>, Box<[usize]>>,
    /// Non-exact routes whose first segment is not a literal -> ranks.
    wild_first: Box<[usize]>,
}

impl RouteTable {
    /// Validate and compile `specs`, sorting them once by precedence. The error names
    /// the first bad route and the reason.
    pub fn build(specs: Vec<RouteSpec>) -> Result<RouteTable, RouteError> {
        let mut routes = specs
            .into_iter()
            .map(Route::compile)
            .collect::<Result<Vec<_>, _>>()?;
        routes.sort_by_cached_key(Route::precedence_key);
        let mut exact: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut by_first: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut wild_first = Vec::new();
        for (rank, route) in routes.iter().enumerate() {
            let p = &route.pattern;
            if p.is_exact() {
                exact.entry(p.as_str().into()).or_default().push(rank);
            } else if let Some(first) = p.first_literal() {
                by_first.entry(first.into()).or_default().push(rank);
            } else {
                wild_first.push(rank);
            }
        }
        let freeze = |m: HashMap<Box<str>, Vec<usize>>| {
            m.into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect()
        };
        Ok(RouteTable {
            routes: routes.into(),
            exact: freeze(exact),
            by_first: freeze(by_first),
            wild_first: wild_first.into(),
        })
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// `RouteSpec.index` values in precedence order (first = tried first).
    pub fn precedence_order(&self) -> impl Iterator<Item = usize> + '_ {
        self.routes.iter().map(|r| r.index)
    }

    /// Find the route for a request. `path` must be the output of
    /// [`crate::normalize_path`]. Candidates are tried in precedence order; the first
    /// whose method, path, header and body conditions all hold wins. If a candidate
    /// whose other conditions hold has body conditions and `body` is
    /// [`BodyView::NotLoaded`], the result is [`MatchOutcome::NeedBody`].
    ///
    /// Allocation-free except for captured parameter values.
    pub fn find<'t>(
        &'t self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: BodyView<'_>,
    ) -> MatchOutcome<'t> {
        let body = match body {
            BodyView::NotLoaded => None,
            BodyView::Json(v) => Some(v),
        };
        let mut caps = Vec::new();
        for rank in self.candidates(path) {
            let Some(route) = self.routes.get(rank) else {
                continue;
            };
            if !route.method_ok(method) {
                continue;
            }
            let rest_start = if route.pattern.is_exact() {
                // Came from the exact map: the key equals the path.
                path.len()
            } else {
                match route.pattern.match_into(path, &mut caps) {
                    Some(r) => r,
                    None => continue,
                }
            };
            if !route.headers_ok(headers) {
                continue;
            }
            match route.body_check(body) {
                BodyCheck::Pass => {
                    return MatchOutcome::Matched(RouteMatch {
                        route,
                        params: caps,
                        rest_start,
                    });
                }
                BodyCheck::Fail => continue,
                BodyCheck::NeedBody => return MatchOutcome::NeedBody,
            }
        }
        MatchOutcome::NotFound
    }

    /// Ranks of the routes that may match `path`, merged in precedence order.
    fn candidates(&self, path: &str) -> Merge3<'_> {
        let first = path
            .strip_prefix('/')
            .and_then(|s| s.split('/').next())
            .unwrap_or("");
        Merge3 {
            lists: [
                lookup(&self.exact, path),
                lookup(&self.by_first, first),
                &self.wild_first,
            ],
        }
    }
}

/// The rank list for `key`, skipping the hash when the map is empty.
fn lookup<'m>(m: &'m HashMap<Box<str>, Box<[usize]>>, key: &str) -> &'m [usize] {
    if m.is_empty() {
        return &[];
    }
    m.get(key).map_or(&[], |v| v)
}

/// Merges three ascending rank lists into one ascending sequence.
struct Merge3<'a> {
    lists: [&'a [usize]; 3],
}

impl Iterator for Merge3<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for (k, list) in self.lists.iter().enumerate() {
            if let Some(&v) = list.first()
                && best.is_none_or(|(b, _)| v < b)
            {
                best = Some((v, k));
            }
        }
        let (v, k) = best?;
        if let Some(list) = self.lists.get_mut(k) {
            *list = list.get(1..).unwrap_or_default();
        }
        Some(v)
    }
}

impl RouteMatch<'_> {
    /// `RouteSpec.index` of the matched route.
    pub fn index(&self) -> usize {
        self.route.index
    }

    /// Name of the matched route.
    pub fn name(&self) -> &str {
        &self.route.name
    }

    /// Priority of the matched route.
    pub fn priority(&self) -> i32 {
        self.route.priority
    }

    /// The matched route's pattern as written.
    pub fn pattern(&self) -> &str {
        self.route.pattern.as_str()
    }

    /// A captured parameter, as it appears in the normalised path (escapes other than
    /// the ones normalisation decodes are kept, e.g. `%20`).
    pub fn param(&self, name: &str) -> Option<&str> {
        let i = self.route.pattern.param_index(name)?;
        self.params.get(i).map(String::as_str)
    }

    /// All captured parameters as (name, value), in pattern order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.route
            .pattern
            .param_names()
            .zip(self.params.iter().map(String::as_str))
    }

    /// The `**` remainder of `path` (the same path passed to `find`), without a leading
    /// '/'; empty when the pattern has no `**` or nothing follows the prefix.
    pub fn remainder<'p>(&self, path: &'p str) -> &'p str {
        if !self.route.pattern.has_rest() {
            return "";
        }
        path.get(self.rest_start..).unwrap_or("")
    }

    /// Path to send upstream: target_path rendered with {param}/{**}; else, with
    /// strip_prefix, the request path minus the pattern's literal prefix (result always
    /// starts with '/'); else the request path unchanged.
    ///
    /// `path` must be the same (normalised) path that was passed to `find`.
    pub fn upstream_path(&self, path: &str) -> String {
        if let Some(t) = &self.route.target {
            return t.render(&self.params, self.remainder(path));
        }
        if !self.route.strip_prefix {
            return path.to_owned();
        }
        let rest = path
            .get(self.route.pattern.literal_prefix().len()..)
            .unwrap_or("");
        if rest.starts_with('/') {
            rest.to_owned()
        } else {
            let mut out = String::with_capacity(rest.len() + 1);
            out.push('/');
            out.push_str(rest);
            out
        }
    }
}

#[cfg(test)]
mod tests;
