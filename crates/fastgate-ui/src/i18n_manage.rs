//! The management pages' text (routes, upstreams and credentials, rules): (key,
//! English, Chinese). Kept apart from the shell's dictionary in `i18n`; both are
//! served to the page as one.

pub(crate) const TEXT: &[(&str, &str, &str)] = &[("manage.title", "Manage", "管理")];
