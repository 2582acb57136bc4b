//! Routes other than inference (which is the pipeline's).

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod budgets;
pub(crate) mod customers;
pub(crate) mod deployments;
pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod models;
pub(crate) mod organizations;
pub(crate) mod spend;
pub(crate) mod tags;
pub(crate) mod teams;
pub(crate) mod users;

/// The first non-empty value of `name` in a URL query.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}
