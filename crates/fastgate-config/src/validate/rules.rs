//! `rules:` checks.

use super::Report;
use crate::model::Config;

pub(super) fn check(_cfg: &Config, _r: &mut Report) {}
