//! Search and paging of `GET /admin/api/keys`: `search` (a case-insensitive part
//! of the name, prefix, id or source), `limit` (1 to 1000) and `offset`. Without
//! any of them the list is the whole, as it always was; with any, the body keeps
//! its shape and the number of matching keys comes in `X-Total-Count`.

use fastgate_auth::ApiKeyRecord;
use serde::Deserialize;

use crate::error::AdminError;

/// The response header with the number of keys matching `search`.
pub const X_TOTAL_COUNT: &str = "x-total-count";
/// The largest page.
const MAX_LIMIT: usize = 1000;
/// Longest search text accepted.
const MAX_SEARCH: usize = 256;

/// The query string, taken as text so a bad value gets a message naming it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct KeyListQuery {
    /// A case-insensitive part of the key's name, prefix, id or source.
    pub search: Option<String>,
    /// Page size, 1 to 1000 (an integer).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// Keys to skip, 0 or more (an integer).
    #[param(value_type = Option<u32>)]
    pub offset: Option<String>,
}

/// A validated search and page.
#[derive(Debug, PartialEq)]
pub struct Paging {
    /// Lowercased; empty matches every key.
    search: String,
    limit: Option<usize>,
    offset: usize,
}

fn number(
    field: &str,
    raw: Option<&str>,
    range: std::ops::RangeInclusive<usize>,
) -> Result<Option<usize>, AdminError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    raw.parse::<usize>()
        .ok()
        .filter(|n| range.contains(n))
        .map(Some)
        .ok_or_else(|| {
            AdminError::field(
                field,
                format!(
                    "expected an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

impl KeyListQuery {
    /// `None` when no paging parameter was given (the whole list, no header).
    pub fn paging(&self) -> Result<Option<Paging>, AdminError> {
        if self.search.is_none() && self.limit.is_none() && self.offset.is_none() {
            return Ok(None);
        }
        let search = self.search.as_deref().unwrap_or("").trim();
        crate::validate::text("search", search, MAX_SEARCH)?;
        Ok(Some(Paging {
            search: search.to_lowercase(),
            limit: number("limit", self.limit.as_deref(), 1..=MAX_LIMIT)?,
            offset: number("offset", self.offset.as_deref(), 0..=usize::MAX)?.unwrap_or(0),
        }))
    }
}

impl Paging {
    fn matches(&self, k: &ApiKeyRecord) -> bool {
        let q = self.search.as_str();
        q.is_empty()
            || k.name.to_lowercase().contains(q)
            || k.prefix.to_lowercase().contains(q)
            || k.id.to_lowercase().contains(q)
            || k.source
                .as_deref()
                .is_some_and(|s| s.to_lowercase().contains(q))
    }

    /// The page of the matching keys (in the list's order) and how many match.
    pub fn apply(&self, keys: Vec<ApiKeyRecord>) -> (Vec<ApiKeyRecord>, usize) {
        let matching: Vec<ApiKeyRecord> = keys.into_iter().filter(|k| self.matches(k)).collect();
        let total = matching.len();
        let page = matching
            .into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        (page, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(search: Option<&str>, limit: Option<&str>, offset: Option<&str>) -> KeyListQuery {
        KeyListQuery {
            search: search.map(str::to_owned),
            limit: limit.map(str::to_owned),
            offset: offset.map(str::to_owned),
        }
    }

    #[test]
    fn no_parameter_no_paging() {
        assert_eq!(KeyListQuery::default().paging().unwrap(), None);
    }

    #[test]
    fn bad_values_name_the_field() {
        for (q, field) in [
            (query(None, Some("0"), None), "limit"),
            (query(None, Some("1001"), None), "limit"),
            (query(None, Some("ten"), None), "limit"),
            (query(None, None, Some("-1")), "offset"),
            (query(Some("a\u{0}b"), None, None), "search"),
        ] {
            let e = q.paging().unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
    }

    #[test]
    fn search_then_page() {
        let now = chrono::Utc::now();
        // The search also reads ids and display prefixes, which are random: fixed
        // ones here, or a prefix holding "al" would match too.
        let keys: Vec<ApiKeyRecord> = ["alpha", "beta", "Alpine", "gamma"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut k = fastgate_auth::new_key_record(n, now).1;
                k.id = format!("id-{i}");
                k.prefix = format!("fg_test{i}");
                k
            })
            .collect();
        let p = query(Some("AL"), Some("1"), Some("1"))
            .paging()
            .unwrap()
            .unwrap();
        let (page, total) = p.apply(keys.clone());
        assert_eq!(total, 2);
        assert_eq!(
            page.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            ["Alpine"]
        );
        let p = query(None, None, Some("3")).paging().unwrap().unwrap();
        let (page, total) = p.apply(keys);
        assert_eq!((page.len(), total), (1, 4));
    }
}
