//! Who may do what through the management API. The master key, and keys of `proxy_admin`
//! users, may do everything; `proxy_admin_viewer` reads everything; an `internal_user`
//! manages their own keys, a team's admins (`members_with_roles` role `admin`) that team's
//! keys and members; `internal_user_viewer` reads their own keys. Nothing else.

use http::StatusCode;
use tollgate_core::error::{ErrorKind, GatewayError, Origin};
use tollgate_store::{KeyRecord, MemberRole, UserRole};

use crate::auth::Caller;
use crate::directory::Directory;

/// A management caller's powers.
#[derive(Debug, Clone)]
pub enum Manager {
    /// The master key or a `proxy_admin`.
    Admin,
    /// A `proxy_admin_viewer`.
    Viewer,
    /// Anyone else with a key: what they may touch is theirs and their teams'.
    Member {
        user_id: Option<String>,
        read_only: bool,
        /// Teams the user belongs to, and whether as admin.
        teams: Vec<(String, MemberRole)>,
    },
}

impl Manager {
    /// The caller's powers; 403 for an open gateway, which has no admin.
    pub fn of(caller: &Caller, directory: &Directory) -> Result<Manager, GatewayError> {
        match caller {
            Caller::Master => Ok(Manager::Admin),
            Caller::Anonymous => Err(forbidden(
                "The management API needs general_settings.master_key to be configured.",
            )),
            Caller::Key(principal) => {
                let role = principal
                    .user
                    .as_ref()
                    .map(|user| user.record.user_role)
                    .unwrap_or_default();
                Ok(match role {
                    UserRole::ProxyAdmin => Manager::Admin,
                    UserRole::ProxyAdminViewer => Manager::Viewer,
                    UserRole::InternalUser | UserRole::InternalUserViewer => {
                        let user_id = principal.key.record.user_id.clone();
                        let teams = match &user_id {
                            Some(user) => directory
                                .teams
                                .all()
                                .iter()
                                .filter_map(|team| {
                                    let member = team.record.member(user)?;
                                    Some((team.record.team_id.clone(), member.role))
                                })
                                .collect(),
                            None => Vec::new(),
                        };
                        Manager::Member {
                            user_id,
                            read_only: role == UserRole::InternalUserViewer,
                            teams,
                        }
                    }
                })
            }
        }
    }

    pub fn require_admin(&self) -> Result<(), GatewayError> {
        match self {
            Manager::Admin => Ok(()),
            _ => Err(forbidden("This needs the master key or a proxy_admin.")),
        }
    }

    /// Reading everything: admins and viewers.
    pub fn require_read_all(&self) -> Result<(), GatewayError> {
        match self {
            Manager::Admin | Manager::Viewer => Ok(()),
            _ => Err(forbidden(
                "This needs the master key, a proxy_admin or a proxy_admin_viewer.",
            )),
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Manager::Admin)
    }

    pub fn reads_all(&self) -> bool {
        matches!(self, Manager::Admin | Manager::Viewer)
    }

    /// The user a member acts as.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Manager::Member { user_id, .. } => user_id.as_deref(),
            _ => None,
        }
    }

    fn role_in(&self, team_id: &str) -> Option<MemberRole> {
        match self {
            Manager::Member { teams, .. } => teams
                .iter()
                .find(|(id, _)| id == team_id)
                .map(|(_, role)| *role),
            _ => None,
        }
    }

    /// Whether the caller administers `team_id` (admins administer every team).
    pub fn administers(&self, team_id: &str) -> bool {
        match self {
            Manager::Admin => true,
            Manager::Member {
                read_only: false, ..
            } => self.role_in(team_id) == Some(MemberRole::Admin),
            _ => false,
        }
    }

    /// Whether the caller may see `team_id`: readers of everything, and its members.
    pub fn sees_team(&self, team_id: &str) -> bool {
        self.reads_all() || self.role_in(team_id).is_some()
    }

    pub fn sees_key(&self, key: &KeyRecord) -> bool {
        self.reads_all()
            || self.owns(key)
            || key.team_id.as_deref().is_some_and(|t| self.administers(t))
    }

    pub fn may_change_key(&self, key: &KeyRecord) -> bool {
        match self {
            Manager::Admin => true,
            Manager::Viewer => false,
            Manager::Member { read_only, .. } => {
                !read_only
                    && (self.owns(key)
                        || key.team_id.as_deref().is_some_and(|t| self.administers(t)))
            }
        }
    }

    /// Whether the caller may make a key for `user_id` in `team_id`: admins any; a team's
    /// admins for the team; members for themselves, personal or in a team of theirs.
    pub fn may_create_key(&self, user_id: Option<&str>, team_id: Option<&str>) -> bool {
        match self {
            Manager::Admin => true,
            Manager::Viewer => false,
            Manager::Member {
                read_only: true, ..
            } => false,
            Manager::Member { .. } => {
                if let Some(team) = team_id
                    && self.administers(team)
                {
                    return true;
                }
                let for_self = self.user_id().is_some() && user_id == self.user_id();
                for_self && team_id.is_none_or(|team| self.role_in(team).is_some())
            }
        }
    }

    fn owns(&self, key: &KeyRecord) -> bool {
        self.user_id()
            .is_some_and(|user| key.user_id.as_deref() == Some(user))
    }
}

pub fn forbidden(message: impl Into<std::borrow::Cow<'static, str>>) -> GatewayError {
    GatewayError::new(
        StatusCode::FORBIDDEN,
        Origin::Client,
        ErrorKind::Permission,
        message,
    )
}
