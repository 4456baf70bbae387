//! The ChatGPT session: credentials loaded from the environment or the 0600 file,
//! verified by an exchange, stored, adopted by the client that uses them, and the
//! health recorded for `convos status`. [`verify_and_store`] is the one path from new
//! cookies to stored ones, for `convos auth` and the daemon alike; [`browser`] re-reads
//! the session cookie from a browser when the session dies.
//!
//! A session that the service declared dead is remembered by its fingerprint, so a
//! dead cookie costs no request until new credentials arrive ([`known_dead`]).

pub mod browser;

use crate::api::auth::{AuthError, Credentials};
use crate::api::pace::{self, PaceState, PaceStore, Pacer};
use crate::api::{ApiError, Client, SessionInfo};
use crate::archive::{Archive, ArchiveError};
use crate::config::{Config, Paths};
use crate::model::time::{now_rfc3339, rfc3339_secs};
use crate::util::{Panicked, blocking};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// State key: the credentials' health for `convos status`.
pub const CREDENTIALS_KEY: &str = "credentials_status";
/// State key: the stable device id.
pub const DEVICE_KEY: &str = "device_id";

/// How the stored credentials stand. Saved as today's words (`valid`, `expired`,
/// `missing`, `unverified`), so records written by earlier versions read unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialState {
    /// An exchange succeeded and gave an access token with a known expiry.
    Valid,
    /// The service declared the session dead: new credentials are needed.
    Expired,
    /// No credentials are stored.
    Missing,
    /// Stored, but no exchange has confirmed them yet.
    #[default]
    Unverified,
}

impl std::fmt::Display for CredentialState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CredentialState::Valid => "valid",
            CredentialState::Expired => "expired",
            CredentialState::Missing => "missing",
            CredentialState::Unverified => "unverified",
        })
    }
}

/// Credentials health, as `convos status` shows it (never a secret).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialsStatus {
    /// How they stand.
    pub state: CredentialState,
    /// Where they came from.
    pub source: Option<String>,
    /// Fingerprint of the session token (not reversible).
    pub fingerprint: Option<String>,
    /// Account id.
    pub account_id: Option<String>,
    /// Access token expiry (RFC 3339).
    pub access_token_expires: Option<String>,
    /// When this was checked (RFC 3339).
    pub checked_at: Option<String>,
}

impl CredentialsStatus {
    /// The status of credentials an exchange has just verified.
    pub fn verified(creds: &Credentials, info: &SessionInfo) -> Self {
        Self {
            state: CredentialState::Valid,
            source: Some(creds.source.clone()),
            fingerprint: Some(creds.fingerprint()),
            account_id: info.account_id.clone(),
            access_token_expires: info.access_token_expires.map(rfc3339_secs),
            checked_at: Some(now_rfc3339()),
        }
    }

    /// Whether this records `creds` as the session the service declared dead.
    pub fn marks_dead(&self, creds: &Credentials) -> bool {
        self.state == CredentialState::Expired
            && self.fingerprint.as_deref() == Some(creds.fingerprint().as_str())
    }
}

/// Why the session could not be set up, verified or stored.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No credentials anywhere.
    #[error(
        "no ChatGPT session stored: run `convos auth` (paste the __Secure-next-auth.session-token cookie from chatgpt.com) or `convos auth --from-browser`"
    )]
    NoCredentials,
    /// The stored session is the one that died.
    #[error("session expired: run `convos auth` with a fresh cookie from chatgpt.com")]
    DeadSession,
    /// The exchange refused new credentials, so they were not stored.
    #[error("the session could not be verified, so it was not saved: {0}")]
    NotVerified(ApiError),
    /// Credentials could not be read or written.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The client could not be built.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Blocking work panicked.
    #[error(transparent)]
    Internal(#[from] Panicked),
}

/// The device id sent as `oai-device-id`, generated once and kept.
pub fn device_id(archive: &Archive) -> Result<String, ArchiveError> {
    if let Some(id) = archive.state::<String>(DEVICE_KEY)? {
        return Ok(id);
    }
    let id = uuid::Uuid::new_v4().to_string();
    archive.set_state(DEVICE_KEY, &id)?;
    Ok(id)
}

/// Loads credentials (blocking): the environment's, else the stored file.
pub fn load_credentials(paths: &Paths) -> Result<Option<Credentials>, AuthError> {
    let env = std::env::var("CONVOS_SESSION_TOKEN").ok();
    Credentials::load(&paths.credentials, env.as_deref())
}

/// Whether `creds` are the session the service last declared dead (blocking).
pub fn known_dead(archive: &Archive, creds: &Credentials) -> Result<bool, ArchiveError> {
    Ok(archive
        .state::<CredentialsStatus>(CREDENTIALS_KEY)?
        .is_some_and(|s| s.marks_dead(creds)))
}

/// Builds a client for a sync run (blocking: reads credentials and archive state).
/// Refuses a session already known to be dead, so a dead cookie costs no requests.
pub fn prepare_client(
    config: &Config,
    paths: &Paths,
    archive: &Archive,
) -> Result<Client, SessionError> {
    let creds = load_credentials(paths)?.ok_or(SessionError::NoCredentials)?;
    if known_dead(archive, &creds)? {
        return Err(SessionError::DeadSession);
    }
    client_for(config, paths, archive, creds)
}

/// The request pacer's state, kept in the archive per account so a restart neither
/// forgets a cooldown nor bursts again, and one account's pace is not another's.
struct ArchivePace(Archive);

impl PaceStore for ArchivePace {
    fn load(&self, account: Option<&str>) -> Option<PaceState> {
        let read = |key: &str| match self.0.state::<PaceState>(key) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("could not read the saved request pacing: {e}; starting afresh");
                None
            }
        };
        // An account seen for the first time takes up what was saved before any
        // account was known (by an earlier version, or before the first exchange).
        read(&pace::state_key(account)).or_else(|| account.and_then(|_| read(pace::STATE_KEY)))
    }

    fn save(
        &self,
        account: Option<&str>,
        state: &PaceState,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.set_state(&pace::state_key(account), state)?;
        if let Some(a) = account {
            self.0.set_state(PACE_ACCOUNT_KEY, &a)?;
        }
        Ok(self.0.flush()?)
    }
}

/// State key: the account whose pace was saved last.
pub const PACE_ACCOUNT_KEY: &str = "api_pace_account";

/// The account `creds` were last verified for, when the archive knows it.
fn known_account(archive: &Archive, creds: &Credentials) -> Option<String> {
    archive
        .state::<CredentialsStatus>(CREDENTIALS_KEY)
        .ok()
        .flatten()
        .filter(|s| s.fingerprint.as_deref() == Some(creds.fingerprint().as_str()))
        .and_then(|s| s.account_id)
}

/// Builds a client for given credentials (blocking). The client saves cookies the
/// service rotates to the credentials file itself, unless they came from
/// `CONVOS_SESSION_TOKEN` (which wins over the file anyway, so the file is left alone).
pub fn client_for(
    config: &Config,
    paths: &Paths,
    archive: &Archive,
    creds: Credentials,
) -> Result<Client, SessionError> {
    let device = device_id(archive)?;
    let pacer = pacer_for(config, archive, &creds);
    let file = (!creds.source.starts_with("environment")).then(|| paths.credentials.clone());
    Ok(Client::new(&config.api, creds, device, pacer, file)?)
}

/// The pacer for a client of these credentials (blocking): the state saved for the
/// account they were last verified for, else for the account paced last (a restart
/// before the credentials' state was recorded must not burst again), kept in the
/// archive. The session exchange corrects the account when it names another.
pub fn pacer_for(config: &Config, archive: &Archive, creds: &Credentials) -> Pacer {
    let account = known_account(archive, creds)
        .or_else(|| archive.state::<String>(PACE_ACCOUNT_KEY).ok().flatten());
    Pacer::load(&config.api, Arc::new(ArchivePace(archive.clone())), account)
}

/// The client in use, which owns the credentials file (it saves the cookies the service
/// rotates). At most one client writes the file: a client replaced by one with newer
/// credentials stops writing it first, so the newest cookie stays on disk.
#[derive(Default)]
pub struct ClientSlot(tokio::sync::Mutex<Option<Arc<Client>>>);

impl ClientSlot {
    /// The client in use, if any.
    pub async fn current(&self) -> Option<Arc<Client>> {
        self.0.lock().await.clone()
    }

    /// The client for `creds`: the one in use when it holds the same credentials (its
    /// access token is reused), else a new one, which takes over the credentials file.
    /// Returns the client and whether it is new.
    pub async fn for_credentials(
        &self,
        config: &Config,
        paths: &Paths,
        archive: &Archive,
        creds: Credentials,
    ) -> Result<(Arc<Client>, bool), SessionError> {
        let mut slot = self.0.lock().await;
        // The client's current credentials: after a rotation it saved, they match the file.
        if let Some(c) = slot.as_ref()
            && c.fingerprint().await == creds.fingerprint()
        {
            return Ok((c.clone(), false));
        }
        let (config, paths, archive) = (config.clone(), paths.clone(), archive.clone());
        let built = blocking("building the chatgpt.com client", move || {
            client_for(&config, &paths, &archive, creds)
        })
        .await??;
        let c = Arc::new(built);
        if let Some(old) = slot.replace(c.clone()) {
            // The file changed under it: its rotations must not overwrite the new cookie.
            old.own_credentials_file(false).await;
        }
        Ok((c, true))
    }
}

/// Credentials verified by an exchange and stored.
pub struct Adopted {
    /// The client now in use (holding the stored credentials).
    pub client: Arc<Client>,
    /// What was stored: the client's current credentials, after any rotation.
    pub stored: Credentials,
    /// What the exchange said about the session.
    pub info: SessionInfo,
}

/// Verifies `creds` by an exchange, stores them (0600, recorded as valid, with the
/// browser to re-read them from; `None` for a pasted token) and makes them the client in
/// `slot`. What is stored is the new client's current credentials (a cookie the exchange
/// rotated), and the old client stops writing the file first: the newest cookie stays on
/// disk. Credentials the exchange refuses are not stored. `convos auth` passes an empty
/// slot; the daemon passes the one its jobs use.
pub async fn verify_and_store(
    config: &Config,
    paths: &Paths,
    archive: &Archive,
    creds: Credentials,
    browser: Option<&str>,
    slot: &ClientSlot,
) -> Result<Adopted, SessionError> {
    let (c, p, a) = (config.clone(), paths.clone(), archive.clone());
    let client = blocking("building the chatgpt.com client", move || {
        client_for(&c, &p, &a, creds)
    })
    .await??;
    let info = client
        .refresh_session()
        .await
        .map_err(SessionError::NotVerified)?;
    let client = Arc::new(client);
    let mut current = slot.0.lock().await;
    let old = current.clone();
    if let Some(old) = &old {
        old.own_credentials_file(false).await;
    }
    let stored = match store_verified(paths, archive, &client, &info, browser).await {
        Ok(stored) => stored,
        Err(e) => {
            if let Some(old) = &old {
                old.own_credentials_file(true).await;
            }
            return Err(e);
        }
    };
    *current = Some(client.clone());
    drop(current);
    client.pacer().save().await;
    Ok(Adopted {
        client,
        stored,
        info,
    })
}

/// Stores the credentials `client` has just verified by an exchange (0600) and records
/// them as valid, with the browser to re-read them from (`none` for a pasted token).
/// What is stored is the client's current credentials: when the exchange rotated the
/// cookie, the rotated one (the client writes the file, so the newest write wins).
/// Returns the stored credentials.
pub async fn store_verified(
    paths: &Paths,
    archive: &Archive,
    client: &Client,
    info: &SessionInfo,
    browser: Option<&str>,
) -> Result<Credentials, SessionError> {
    let creds = client.save_credentials(&paths.credentials).await?;
    let (a, status, browser) = (
        archive.clone(),
        CredentialsStatus::verified(&creds, info),
        browser.unwrap_or("none").to_owned(),
    );
    blocking("recording the verified session", move || {
        record_credentials(&a, &status);
        browser::remember_choice(&a, &browser);
    })
    .await?;
    Ok(creds)
}

/// The confirmation `convos auth` prints.
pub fn verified_message(creds: &Credentials, info: &SessionInfo, paths: &Paths) -> String {
    format!(
        "session from {} verified{}; access token valid until {}; saved to {}",
        creds.source,
        info.account_id
            .as_deref()
            .map(|a| format!(" (account {a})"))
            .unwrap_or_default(),
        info.access_token_expires
            .map(rfc3339_secs)
            .unwrap_or_else(|| "an unknown time".into()),
        paths.credentials.display()
    )
}

/// Records the credentials' health for `convos status` (blocking).
pub fn record_credentials(archive: &Archive, status: &CredentialsStatus) {
    if let Err(e) = archive
        .set_state(CREDENTIALS_KEY, status)
        .and_then(|_| archive.flush())
    {
        tracing::warn!("could not record the credentials state: {e}");
    }
}

/// Records the credentials' health after a sync run or an exchange (blocking):
/// `expired` when the service declared the session dead, else valid when the client
/// holds an access token with a known expiry, else unverified.
pub fn record_after_use(paths: &Paths, archive: &Archive, client: &Client, expired: bool) {
    let creds = load_credentials(paths).ok().flatten();
    let info = client.session_info();
    let state = if expired {
        CredentialState::Expired
    } else if info.access_token_expires.is_some() {
        CredentialState::Valid
    } else {
        CredentialState::Unverified
    };
    let status = CredentialsStatus {
        state,
        source: creds.as_ref().map(|c| c.source.clone()),
        fingerprint: creds.as_ref().map(Credentials::fingerprint),
        account_id: info.account_id,
        access_token_expires: info.access_token_expires.map(rfc3339_secs),
        checked_at: Some(now_rfc3339()),
    };
    record_credentials(archive, &status);
}

#[cfg(test)]
mod tests;
