//! Planning changes to credential health rules (`rules:`): created, replaced,
//! switched on or off and deleted through the API; the file's rules are
//! read-only. The merged configuration is validated as a whole, so a rule
//! naming an unknown upstream or alert channel is refused with its field path
//! (`rules[my-rule].actions[1].alert[0]`).

use fastgate_config::{Config, RuleConfig};
use serde_json::Value;

use crate::plan::{Planned, Write, checked, file_owned};
use crate::view::{Source, rule_view};
use crate::{LiveError, LiveObjects};

fn rule_snapshot(live: &LiveObjects, name: &str) -> Option<Value> {
    live.rules
        .iter()
        .find(|r| r.name == name)
        .map(|r| rule_view(r, Source::Api))
}

pub(crate) fn put_rule(
    file: &Config,
    live: &LiveObjects,
    rule: RuleConfig,
    must_be_new: bool,
) -> Result<Planned, LiveError> {
    let name = rule.name.clone();
    if file.rules.iter().any(|r| r.name == name) {
        return Err(file_owned("rule", &name));
    }
    let exists = live.rules.iter().any(|r| r.name == name);
    if must_be_new && exists {
        return Err(LiveError::Conflict(format!("rule '{name}' already exists")));
    }
    let mut next = live.clone();
    // Replaced in place: the order of the rules is the order they are tried in.
    match next.rules.iter_mut().find(|r| r.name == name) {
        Some(old) => *old = rule.clone(),
        None => next.rules.push(rule.clone()),
    }
    let merged = checked(file, &next)?;
    Ok(Planned {
        before: rule_snapshot(live, &name),
        after: rule_snapshot(&next, &name),
        next,
        merged,
        action: if exists { "update" } else { "create" },
        kind: "rule",
        name,
        write: Write::Rule(rule),
    })
}

fn api_rule<'a>(
    file: &Config,
    live: &'a LiveObjects,
    name: &str,
) -> Result<&'a RuleConfig, LiveError> {
    if file.rules.iter().any(|r| r.name == name) {
        return Err(file_owned("rule", name));
    }
    live.rules
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| LiveError::NotFound(format!("rule '{name}'")))
}

pub(crate) fn delete_rule(
    file: &Config,
    live: &LiveObjects,
    name: &str,
) -> Result<Planned, LiveError> {
    api_rule(file, live, name)?;
    let mut next = live.clone();
    next.rules.retain(|r| r.name != name);
    let merged = checked(file, &next)?;
    Ok(Planned {
        before: rule_snapshot(live, name),
        after: None,
        next,
        merged,
        action: "delete",
        kind: "rule",
        name: name.to_owned(),
        write: Write::DeleteRule(name.to_owned()),
    })
}

pub(crate) fn toggle_rule(
    file: &Config,
    live: &LiveObjects,
    name: &str,
    enabled: Option<bool>,
) -> Result<Planned, LiveError> {
    let mut rule = api_rule(file, live, name)?.clone();
    rule.enabled = enabled.unwrap_or(!rule.enabled);
    let mut next = live.clone();
    if let Some(r) = next.rules.iter_mut().find(|r| r.name == name) {
        *r = rule.clone();
    }
    let merged = checked(file, &next)?;
    Ok(Planned {
        before: rule_snapshot(live, name),
        after: rule_snapshot(&next, name),
        next,
        merged,
        action: "toggle",
        kind: "rule",
        name: name.to_owned(),
        write: Write::Rule(rule),
    })
}
