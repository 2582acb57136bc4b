//! Gateway authentication: the credential a client presents, checked against the master key
//! and then the virtual keys.
//!
//! Keys are handled as SHA-256 digests: the master key is compared in constant time, so
//! neither timing nor length reveals how much of a guess was right; virtual keys are looked up
//! by digest (which says nothing about the key). No key itself is kept beyond start-up.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderName};
use http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tollgate_core::error::{ErrorKind, GatewayError, Origin};

use tollgate_pricing::Usd;
use tollgate_store::{
    BudgetFields, CustomerRecord, EntityKind, OrganizationRecord, TagRecord, TeamRecord, UserRecord,
};

use crate::budgets::{Budget, BudgetCheck};

use crate::directory::{Cached, Directory, ModelAccess};
use crate::keys::{VirtualKey, now_ms};
use crate::limits::{Limits, Scope, ScopeKind};

/// Who the caller is, once authenticated.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No master key is configured: the gateway is open.
    Anonymous,
    /// The caller presented the master key.
    Master,
    /// The caller presented a virtual key, usable now.
    Key(Principal),
}

/// A virtual key with whom it acts for, as the directory knew them when the request came.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key: Arc<VirtualKey>,
    pub user: Option<Arc<Cached<UserRecord>>>,
    pub team: Option<Arc<Cached<TeamRecord>>>,
    pub organization: Option<Arc<Cached<OrganizationRecord>>>,
}

impl Principal {
    /// The model group a request for `requested` goes to: the key's own alias for it, if it
    /// has one; 403 naming what may be used when the model is not allowed.
    pub fn resolve_model<'m>(&'m self, requested: &'m str) -> Result<&'m str, GatewayError> {
        let model = self
            .key
            .record
            .aliases
            .get(requested)
            .and_then(|target| target.as_str())
            .unwrap_or(requested);
        match self.refusing(model) {
            None => Ok(model),
            Some((owner, access)) => Err(GatewayError::new(
                StatusCode::FORBIDDEN,
                Origin::Client,
                ErrorKind::Permission,
                format!(
                    "{owner} may not use model `{requested}`. It may use: {}.",
                    access.models().join(", ")
                ),
            )
            .with_param("model")
            .with_code("key_model_access_denied")),
        }
    }

    /// Whether every list that applies allows `model`: the key's, its team's (else its
    /// user's, as for LiteLLM's personal keys), and its organisation's.
    pub fn may_use(&self, model: &str) -> bool {
        self.refusing(model).is_none()
    }

    /// The first list that does not allow `model`, with whose it is.
    fn refusing(&self, model: &str) -> Option<(String, &ModelAccess)> {
        if !self.key.access.allows(model) {
            return Some((
                format!("Key `{}`", self.key.record.key_name),
                &self.key.access,
            ));
        }
        if let Some(team) = &self.team {
            if !team.access.allows(model) {
                return Some((format!("Team `{}`", team.record.team_id), &team.access));
            }
        } else if let Some(user) = &self.user
            && !user.access.allows(model)
        {
            return Some((format!("User `{}`", user.record.user_id), &user.access));
        }
        match &self.organization {
            Some(org) if !org.access.allows(model) => Some((
                format!("Organization `{}`", org.record.organization_id),
                &org.access,
            )),
            _ => None,
        }
    }

    /// The limits of the key, its user, its team and its membership of the team (only those
    /// set: a request without limits allocates nothing here). Limits a record leaves unset come
    /// from the shared budget it names.
    pub fn limits(&self, directory: &Directory) -> Vec<(Scope<'_>, Limits)> {
        let key = &self.key.record;
        let mut checks = Vec::new();
        let key_limits = with_shared(
            Limits::of(key.rpm_limit, key.tpm_limit, key.max_parallel_requests),
            &key.budget,
            directory,
        );
        if !key_limits.is_unlimited() {
            checks.push((
                Scope {
                    kind: ScopeKind::Key,
                    id: Cow::Borrowed(&key.token),
                    label: Cow::Borrowed(&key.key_name),
                },
                key_limits,
            ));
        }
        if let Some(user) = &self.user {
            let record = &user.record;
            let own = Limits::of(
                record.rpm_limit,
                record.tpm_limit,
                record.max_parallel_requests,
            );
            checks.push((
                scope(ScopeKind::User, &record.user_id),
                with_shared(own, &record.budget, directory),
            ));
        }
        if let Some(team) = &self.team {
            let record = &team.record;
            let own = Limits::of(
                record.rpm_limit,
                record.tpm_limit,
                record.max_parallel_requests,
            );
            checks.push((
                scope(ScopeKind::Team, &record.team_id),
                with_shared(own, &record.budget, directory),
            ));
            let member_limits = Limits::of(
                record.team_member_rpm_limit,
                record.team_member_tpm_limit,
                None,
            );
            if let Some(user_id) = key
                .user_id
                .as_ref()
                .filter(|_| !member_limits.is_unlimited())
            {
                let member = format!("{}/{user_id}", record.team_id);
                checks.push((
                    Scope {
                        kind: ScopeKind::TeamMember,
                        label: Cow::Owned(member.clone()),
                        id: Cow::Owned(member),
                    },
                    member_limits,
                ));
            }
        }
        checks.retain(|(_, limits)| !limits.is_unlimited());
        checks
    }
}

impl Principal {
    /// The budgets of the key, its user, its team, its membership of the team and its
    /// organisation (only those set: a request without budgets allocates nothing here).
    pub fn budgets(&self, directory: &Directory) -> Vec<BudgetCheck<'_>> {
        let key = &self.key.record;
        let mut checks = Vec::new();
        if let Some(budget) = Budget::resolve(self.key.budget, &key.budget, directory) {
            checks.push(BudgetCheck {
                kind: EntityKind::Key,
                id: Cow::Borrowed(&key.token),
                label: Cow::Owned(format!("key {}", key.key_name)),
                budget,
            });
        }
        let resolve = |own, fields| Budget::resolve(own, fields, directory);
        let owners = [
            (
                EntityKind::User,
                self.user
                    .as_ref()
                    .map(|u| (&u.record.user_id, resolve(u.budget, &u.record.budget))),
            ),
            (
                EntityKind::Team,
                self.team
                    .as_ref()
                    .map(|t| (&t.record.team_id, resolve(t.budget, &t.record.budget))),
            ),
            (
                EntityKind::Organization,
                self.organization.as_ref().map(|o| {
                    let budget = resolve(o.budget, &o.record.budget);
                    (&o.record.organization_id, budget)
                }),
            ),
        ];
        for (kind, owner) in owners {
            if let Some((id, Some(budget))) = owner {
                checks.push(BudgetCheck {
                    kind,
                    id: Cow::Borrowed(id),
                    label: Cow::Owned(format!("{} {id}", kind.as_str())),
                    budget,
                });
            }
        }
        if let (Some(team), Some(user_id)) = (&self.team, &key.user_id)
            && let Some(max) = team
                .record
                .member(user_id)
                .and_then(|member| member.max_budget_in_team)
                .and_then(Usd::from_f64)
        {
            let member = format!("{}/{user_id}", team.record.team_id);
            checks.push(BudgetCheck {
                kind: EntityKind::TeamMember,
                label: Cow::Owned(format!("member {user_id} of team {}", team.record.team_id)),
                id: Cow::Owned(member),
                budget: Budget {
                    max: Some(max),
                    soft: None,
                    period: team.budget.and_then(|budget| budget.period),
                },
            });
        }
        checks
    }
}

/// The budget of the end user a request names, if it has one.
pub fn end_user_budget<'a>(
    customer: &'a Cached<CustomerRecord>,
    directory: &Directory,
) -> Option<BudgetCheck<'a>> {
    Budget::resolve(customer.budget, &customer.record.budget, directory).map(|budget| BudgetCheck {
        kind: EntityKind::EndUser,
        id: Cow::Borrowed(&customer.record.user_id),
        label: Cow::Owned(format!("end user {}", customer.record.user_id)),
        budget,
    })
}

/// The tags defined through `/tag/new` among those a request carries: its key's tags and its
/// own (`metadata.tags`, the tag headers), each once.
pub fn defined_tags(
    caller: &Caller,
    request_tags: &[String],
    directory: &Directory,
) -> Vec<Arc<Cached<TagRecord>>> {
    if directory.tags.is_empty() {
        return Vec::new();
    }
    let key_tags = match caller {
        Caller::Key(principal) => principal.key.record.tags.as_slice(),
        Caller::Master | Caller::Anonymous => &[],
    };
    let mut found: Vec<Arc<Cached<TagRecord>>> = Vec::new();
    for name in key_tags.iter().chain(request_tags) {
        if found.iter().any(|tag| &tag.record.name == name) {
            continue;
        }
        found.extend(directory.tags.get(name));
    }
    found
}

/// The budgets of the tags a request carries.
pub fn tag_budgets<'a>(
    tags: &'a [Arc<Cached<TagRecord>>],
    directory: &Directory,
) -> Vec<BudgetCheck<'a>> {
    tags.iter()
        .filter_map(|tag| {
            let budget = Budget::resolve(tag.budget, &tag.record.budget, directory)?;
            Some(BudgetCheck {
                kind: EntityKind::Tag,
                id: Cow::Borrowed(&tag.record.name),
                label: Cow::Owned(format!("tag {}", tag.record.name)),
                budget,
            })
        })
        .collect()
}

/// The limits of the end user a request names (those it leaves unset from the shared budget
/// it names).
pub fn end_user_limits<'a>(
    customer: &'a CustomerRecord,
    directory: &Directory,
) -> (Scope<'a>, Limits) {
    let own = Limits::of(
        customer.rpm_limit,
        customer.tpm_limit,
        customer.max_parallel_requests,
    );
    (
        scope(ScopeKind::EndUser, &customer.user_id),
        with_shared(own, &customer.budget, directory),
    )
}

/// `own`, each limit it leaves unset taken from the shared budget (`/budget/new`) the record
/// names, as LiteLLM's budget tiers give their rpm and tpm to whoever names them.
fn with_shared(own: Limits, fields: &BudgetFields, directory: &Directory) -> Limits {
    let Some(shared) = fields
        .budget_id
        .as_deref()
        .and_then(|id| directory.budgets.get(id))
    else {
        return own;
    };
    let shared = &shared.record;
    let shared = Limits::of(
        shared.rpm_limit,
        shared.tpm_limit,
        shared.max_parallel_requests,
    );
    Limits {
        rpm: own.rpm.or(shared.rpm),
        tpm: own.tpm.or(shared.tpm),
        parallel: own.parallel.or(shared.parallel),
    }
}

fn scope(kind: ScopeKind, id: &str) -> Scope<'_> {
    Scope {
        kind,
        id: Cow::Borrowed(id),
        label: Cow::Borrowed(id),
    }
}

impl Caller {
    /// The model group a request for `model` goes to, when the caller may use it.
    pub fn resolve_model<'m>(&'m self, model: &'m str) -> Result<&'m str, GatewayError> {
        match self {
            Caller::Key(principal) => principal.resolve_model(model),
            Caller::Anonymous | Caller::Master => Ok(model),
        }
    }

    /// Whether the caller may use `model` (for listing models).
    pub fn may_use(&self, model: &str) -> bool {
        match self {
            Caller::Key(principal) => principal.may_use(model),
            Caller::Anonymous | Caller::Master => true,
        }
    }

    /// The rate limits the caller's own identity carries (none for the master key).
    pub fn limits(&self, directory: &Directory) -> Vec<(Scope<'_>, Limits)> {
        match self {
            Caller::Key(principal) => principal.limits(directory),
            Caller::Anonymous | Caller::Master => Vec::new(),
        }
    }
}

/// Headers that may carry the key, after any custom one, in LiteLLM's order of precedence.
const KEY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-litellm-api-key"),
    HeaderName::from_static("api-key"),
    HeaderName::from_static("x-api-key"),
];

#[derive(Debug)]
pub struct Authenticator {
    master_key_digest: Option<[u8; 32]>,
    custom_header: Option<HeaderName>,
    pub directory: Directory,
}

impl Authenticator {
    /// `custom_header`: `general_settings.litellm_key_header_name`, checked first.
    pub fn new(master_key: Option<&SecretString>, custom_header: Option<HeaderName>) -> Self {
        Authenticator {
            master_key_digest: master_key.map(|key| digest(key.expose_secret())),
            custom_header,
            directory: Directory::default(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.master_key_digest.is_none()
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, GatewayError> {
        let Some(expected) = &self.master_key_digest else {
            return Ok(Caller::Anonymous);
        };
        let presented = digest(presented_key(headers, self.custom_header.as_ref())?);
        if bool::from(presented.ct_eq(expected)) {
            return Ok(Caller::Master);
        }
        let now = now_ms();
        if self.directory.freshness.is_stale(now) {
            return Err(GatewayError::store_unavailable(
                "Virtual keys cannot be checked: the store has been unreachable for longer than tollgate_settings.store_max_staleness allows.",
            ));
        }
        let Some(key) = self.directory.keys.get(&presented) else {
            return Err(GatewayError::unauthorized("Invalid API key."));
        };
        key.check_usable(now)?;
        self.principal(key).map(Caller::Key)
    }

    /// The key with its user, team and organisation; 401 when the team or organisation is
    /// blocked.
    fn principal(&self, key: Arc<VirtualKey>) -> Result<Principal, GatewayError> {
        let directory = &self.directory;
        let record = &key.record;
        let team = record
            .team_id
            .as_deref()
            .and_then(|id| directory.teams.get(id));
        if let Some(team) = team.as_ref().filter(|team| team.record.blocked) {
            return Err(GatewayError::unauthorized(format!(
                "Team `{}` is blocked.",
                team.record.team_id
            ))
            .with_code("team_blocked"));
        }
        let organization = record
            .organization_id
            .as_deref()
            .or_else(|| team.as_ref()?.record.organization_id.as_deref())
            .and_then(|id| directory.organizations.get(id));
        if let Some(org) = organization.as_ref().filter(|org| org.record.blocked) {
            return Err(GatewayError::unauthorized(format!(
                "Organization `{}` is blocked.",
                org.record.organization_id
            ))
            .with_code("organization_blocked"));
        }
        let user = record
            .user_id
            .as_deref()
            .and_then(|id| directory.users.get(id));
        Ok(Principal {
            key,
            user,
            team,
            organization,
        })
    }
}

fn presented_key<'a>(
    headers: &'a HeaderMap,
    custom_header: Option<&HeaderName>,
) -> Result<&'a str, GatewayError> {
    let header_text = |name: &HeaderName| -> Result<Option<&'a str>, GatewayError> {
        match headers.get(name) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .map(|text| Some(strip_bearer(text.trim())))
                .map_err(|_| {
                    GatewayError::unauthorized(format!("The `{name}` header is not valid text."))
                }),
        }
    };

    if let Some(name) = custom_header
        && let Some(key) = header_text(name)?
    {
        return non_empty(key);
    }
    if let Some(key) = header_text(&KEY_HEADERS[0])? {
        return non_empty(key);
    }
    if let Some(value) = headers.get(AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| GatewayError::unauthorized("The Authorization header is not valid text."))?
            .trim();
        let scheme_len = "bearer ".len();
        return match text.get(..scheme_len) {
            Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => {
                non_empty(text[scheme_len..].trim())
            }
            _ => Err(GatewayError::unauthorized(
                "Malformed Authorization header: expected `Authorization: Bearer <key>`.",
            )),
        };
    }
    for name in &KEY_HEADERS[1..] {
        if let Some(key) = header_text(name)? {
            return non_empty(key);
        }
    }
    Err(GatewayError::unauthorized(
        "Missing API key: pass it as `Authorization: Bearer <key>` (or in an `api-key` / `x-api-key` header).",
    )
    .with_code("missing_api_key"))
}

fn strip_bearer(text: &str) -> &str {
    match text.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => text[7..].trim(),
        _ => text,
    }
}

fn non_empty(key: &str) -> Result<&str, GatewayError> {
    if key.is_empty() {
        Err(GatewayError::unauthorized("The API key is empty.").with_code("missing_api_key"))
    } else {
        Ok(key)
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(
            Some(&SecretString::from("sk-master")),
            Some(HeaderName::from_static("x-custom-key")),
        )
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn accepts_the_master_key_in_every_supported_header() {
        for pair in [
            ("authorization", "Bearer sk-master"),
            ("authorization", "bearer   sk-master"),
            ("api-key", "sk-master"),
            ("x-api-key", "sk-master"),
            ("x-litellm-api-key", "Bearer sk-master"),
            ("x-custom-key", "sk-master"),
        ] {
            assert!(
                matches!(
                    auth().authenticate(&headers(&[pair])).unwrap(),
                    Caller::Master
                ),
                "{pair:?}"
            );
        }
    }

    #[test]
    fn refuses_missing_wrong_and_malformed_keys() {
        let missing = auth().authenticate(&headers(&[])).unwrap_err();
        assert_eq!(missing.status.as_u16(), 401);
        assert_eq!(missing.code.as_deref(), Some("missing_api_key"));

        let wrong = auth()
            .authenticate(&headers(&[("authorization", "Bearer sk-master2")]))
            .unwrap_err();
        assert_eq!(wrong.code.as_deref(), Some("invalid_api_key"));

        let malformed = auth()
            .authenticate(&headers(&[("authorization", "Basic abc")]))
            .unwrap_err();
        assert!(malformed.message.contains("Malformed"));
    }

    #[test]
    fn an_open_gateway_needs_no_key() {
        let open = Authenticator::new(None, None);
        assert!(open.is_open());
        assert!(matches!(
            open.authenticate(&headers(&[])).unwrap(),
            Caller::Anonymous
        ));
    }
}
