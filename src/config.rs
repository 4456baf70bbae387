//! Typed configuration. Precedence: command-line flags > `CONVOS_*` environment
//! variables > the config file (`--config`, `CONVOS_CONFIG`, else the platform config
//! dir) > built-in defaults, so no config file is needed.

pub mod schedule;

pub use crate::mirror::Modes;
pub use schedule::{Zone, parse_schedule};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the archive, credentials and state live (default: the platform data dir).
    pub data_dir: Option<PathBuf>,
    /// Logging.
    pub log: LogConfig,
    /// Export import limits.
    pub import: ImportConfig,
    /// chatgpt.com client.
    pub api: ApiConfig,
    /// Sync behaviour and schedule.
    pub sync: SyncConfig,
    /// The folder watcher.
    pub watch: WatchConfig,
    /// Session credentials.
    pub auth: AuthConfig,
    /// The local web viewer.
    pub web: WebConfig,
    /// The Markdown mirror.
    pub mirror: MirrorConfig,
}

/// `[log]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Level for convos' own messages (`error`, `warn`, `info`, `debug`, `trace`); `RUST_LOG` overrides.
    pub level: String,
    /// `auto` (human-readable), `human`, or `json` (one JSON object per line).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Auto,
    /// Human-readable.
    Human,
    /// JSON lines.
    Json,
}

/// `[import]`: limits that stop hostile or broken ZIPs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    /// Most entries a ZIP may have.
    pub max_entries: u64,
    /// Most bytes all members of one ZIP may inflate to, counted as they are inflated.
    pub max_total_bytes: u64,
    /// Highest inflated:compressed ratio a member may reach (once past `ratio_grace_bytes`).
    pub max_ratio: u64,
    /// Bytes a member may inflate to before the ratio limit applies.
    pub ratio_grace_bytes: u64,
}

impl Default for ImportConfig {
    fn default() -> Self {
        Self {
            max_entries: 500_000,
            max_total_bytes: 64 * 1024 * 1024 * 1024,
            max_ratio: 100,
            ratio_grace_bytes: 16 * 1024 * 1024,
        }
    }
}

/// `[api]`: the chatgpt.com client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Base URL of the service.
    pub base_url: String,
    /// How requests are paced: `adaptive` (learn the service's rate) or `fixed` (a
    /// token bucket of `burst` refilled at `refill_per_minute`).
    pub pacing: Pacing,
    /// The most requests a second in either mode, however much budget there is.
    pub max_per_second: f64,
    /// Requests that may go out before pacing starts (fixed mode's bucket; the adaptive
    /// mode's starting budget).
    pub burst: u32,
    /// Requests added back to the bucket per minute (fixed mode's rate; the adaptive
    /// mode's starting rate).
    pub refill_per_minute: f64,
    /// Requests in flight at once in fixed mode (adaptive pacing keeps one).
    pub max_in_flight: u32,
    /// Connect timeout, seconds.
    pub connect_timeout_secs: u64,
    /// Whole-request timeout, seconds.
    pub request_timeout_secs: u64,
    /// Retries of a request that failed with 5xx, a transport error or a broken body.
    pub retries: u32,
    /// First retry delay for those failures, seconds (doubles each time).
    pub retry_base_secs: f64,
    /// First wait after a 429 without `Retry-After`, seconds (doubles on each 429 in a
    /// row).
    pub rate_limit_base_secs: u64,
    /// Longest wait after a 429, seconds.
    pub rate_limit_max_secs: u64,
    /// The browser User-Agent sent with every request.
    pub user_agent: String,
    /// Download attachment bytes of synced conversations.
    pub download_attachments: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://chatgpt.com".into(),
            pacing: Pacing::Adaptive,
            max_per_second: 2.0,
            burst: 200,
            refill_per_minute: 1.0,
            max_in_flight: 1,
            connect_timeout_secs: 15,
            request_timeout_secs: 120,
            retries: 3,
            retry_base_secs: 2.0,
            rate_limit_base_secs: 5,
            rate_limit_max_secs: 900,
            user_agent: DEFAULT_USER_AGENT.into(),
            download_attachments: true,
        }
    }
}

/// How requests to chatgpt.com are paced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pacing {
    /// Learn the rate the service allows: start with the burst, raise the rate while
    /// requests succeed, halve it on a 429.
    #[default]
    Adaptive,
    /// A token bucket of `burst` refilled at `refill_per_minute`, whatever the service
    /// allows.
    Fixed,
}

impl Pacing {
    /// `adaptive` or `fixed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pacing::Adaptive => "adaptive",
            Pacing::Fixed => "fixed",
        }
    }
}

/// A current desktop browser User-Agent (chatgpt.com rejects obvious bots).
pub const DEFAULT_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36";

/// `[sync]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// When the daemon syncs: cron with seconds (`sec min hour day month weekday`), in
    /// `timezone`.
    pub schedule: String,
    /// When the daemon runs a full sync, which also notices conversations deleted on
    /// chatgpt.com (what `convos sync --full` does); cron with seconds, in `timezone`.
    pub reconcile_schedule: String,
    /// The time zone schedules are read in: `local` (the machine's), `UTC` or an IANA
    /// name (`Europe/Paris`).
    pub timezone: String,
    /// List items re-checked past the stored frontier (offsets shift while paging).
    pub overlap: u32,
    /// Seconds a listing's update time may differ from an export's for the same version.
    pub time_tolerance_secs: f64,
    /// Also walk archived conversations.
    pub archived: bool,
    /// Also walk project conversations.
    pub projects: bool,
    /// Files imported before each sync and when the daemon starts.
    pub import_paths: Vec<PathBuf>,
}

impl SyncConfig {
    /// The zone schedules are read in (validated when the configuration was loaded;
    /// local time otherwise).
    pub fn zone(&self) -> Zone {
        Zone::parse(&self.timezone).unwrap_or(Zone::Local)
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            schedule: "0 */30 * * * *".into(),
            reconcile_schedule: "0 0 4 * * Sun".into(),
            timezone: "local".into(),
            overlap: 20,
            time_tolerance_secs: 5.0,
            archived: true,
            projects: true,
            import_paths: Vec::new(),
        }
    }
}

/// `[watch]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Watch folders for new exports at all.
    pub enabled: bool,
    /// Folders to watch (default: the user's Downloads folder).
    pub dirs: Option<Vec<PathBuf>>,
    /// Seconds a file's size must stay unchanged before it is imported.
    pub settle_secs: f64,
    /// Seconds between full rescans that back up missed events.
    pub rescan_secs: u64,
    /// `keep` the file where it is, or `move` it into `processed_dir` after import.
    pub after_import: AfterImport,
    /// Where `move` puts imported files (default: `<watch dir>/convos-imported`).
    pub processed_dir: Option<PathBuf>,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dirs: None,
            settle_secs: 2.0,
            rescan_secs: 300,
            after_import: AfterImport::Keep,
            processed_dir: None,
        }
    }
}

/// What the watcher does with a file after importing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterImport {
    /// Leave it.
    Keep,
    /// Move it into the processed folder.
    Move,
}

/// `[auth]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Browser to re-read the session cookie from when the session dies: `none`,
    /// `auto`, or a browser name.
    pub browser: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            browser: "none".into(),
        }
    }
}

/// `[mirror]`: the Markdown mirror, a folder of notes the daemon keeps current.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MirrorConfig {
    /// The mirror folder (absolute, or starting with `~/`); no mirror when unset.
    pub dir: Option<PathBuf>,
}

/// `[web]`: the local web viewer the daemon serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Serve the viewer at all.
    pub enabled: bool,
    /// The address (`IP:PORT`) it listens on; port 0 picks a free one.
    pub listen: std::net::SocketAddr,
    /// Allow a listen address other machines can reach (plain HTTP, token-protected).
    pub allow_remote: bool,
}

/// The viewer's default address: loopback only.
pub const DEFAULT_WEB_LISTEN: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8642),
);

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_WEB_LISTEN,
            allow_remote: false,
        }
    }
}

/// A configuration problem, naming where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file or environment variable.
    pub source: String,
    /// Line in the file, when known.
    pub line: Option<usize>,
    /// The key, when known (`api.burst`).
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad configuration in {}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Command-line values that override everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

/// Where the platform keeps things for convos.
#[derive(Clone, Debug)]
pub struct PlatformDirs {
    /// Default config file.
    pub config_file: Option<PathBuf>,
    /// Default data dir.
    pub data_dir: Option<PathBuf>,
    /// The user's Downloads folder: the platform's, else `~/Downloads`.
    pub downloads: Option<PathBuf>,
    /// The home folder (for `~` expansion).
    pub home: Option<PathBuf>,
}

impl PlatformDirs {
    /// The real platform directories (from the `directories` crate).
    pub fn system() -> Self {
        let proj = directories::ProjectDirs::from("", "", "convos");
        let user = directories::UserDirs::new();
        let base = directories::BaseDirs::new();
        let home = base.as_ref().map(|b| b.home_dir().to_path_buf());
        Self {
            config_file: proj.as_ref().map(|p| p.config_dir().join("config.toml")),
            data_dir: proj.as_ref().map(|p| p.data_dir().to_path_buf()),
            downloads: downloads_dir(
                user.as_ref()
                    .and_then(|u| u.download_dir().map(Path::to_path_buf)),
                home.as_deref(),
            ),
            home,
        }
    }
}

/// The Downloads folder to watch by default: the one the platform names, else
/// `~/Downloads`. On Linux `directories` names one only when `~/.config/user-dirs.dirs`
/// does (servers, containers, minimal desktops and fresh accounts have none), although
/// browsers still download into `~/Downloads` there. The fallback is used even when it
/// does not exist yet: the watcher picks it up once it is created.
pub fn downloads_dir(platform: Option<PathBuf>, home: Option<&Path>) -> Option<PathBuf> {
    platform.or_else(|| home.map(|h| h.join("Downloads")))
}

/// A loaded configuration and where it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Resolved paths.
    pub paths: Paths,
    /// Permissions for what convos writes for the user to use (the mirror's notes),
    /// from the umask the process started with: the binary sets its own (077) for the
    /// archive's sake and puts the user's here.
    pub user_modes: Modes,
}

/// Resolved file locations.
#[derive(Clone, Debug, PartialEq)]
pub struct Paths {
    /// Data dir.
    pub data_dir: PathBuf,
    /// The archive (sled db and blobs).
    pub archive_dir: PathBuf,
    /// Session credentials (0600).
    pub credentials: PathBuf,
    /// The daemon's exclusive lock file.
    pub lock_file: PathBuf,
    /// The daemon's control socket.
    pub socket: PathBuf,
    /// Folders the daemon watches.
    pub watch_dirs: Vec<PathBuf>,
    /// The Markdown mirror's folder, when one is configured.
    pub mirror_dir: Option<PathBuf>,
}

impl Config {
    /// Loads the configuration: `overrides` from flags, `env` to read variables.
    pub fn load(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
        platform: &PlatformDirs,
    ) -> Result<Loaded, ConfigError> {
        let (file, explicit) = match overrides.config.clone().or_else(|| {
            env("CONVOS_CONFIG")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        }) {
            Some(p) => (Some(p), true),
            None => (platform.config_file.clone(), false),
        };
        let mut config = Config::default();
        let mut file_read = None;
        if let Some(path) = file {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    config = Self::parse(&text, &path)?;
                    file_read = Some(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
                Err(e) => {
                    return Err(ConfigError {
                        source: path.display().to_string(),
                        line: None,
                        key: None,
                        message: format!("cannot read the config file: {e}"),
                    });
                }
            }
        }
        config.apply_env(env, platform)?;
        if let Some(d) = &overrides.data_dir {
            config.data_dir = Some(d.clone());
        }
        let source = file_read
            .as_ref()
            .map_or_else(|| "the environment".to_owned(), |p| p.display().to_string());
        config.validate(&source, file_read.as_deref())?;
        let paths = config.paths(platform, env)?;
        if let Some(mirror) = &paths.mirror_dir {
            let from_env = env("CONVOS_MIRROR_DIR").filter(|v| !v.trim().is_empty());
            let file = file_read.as_deref().filter(|_| from_env.is_none());
            check_mirror_dir(mirror, &paths.data_dir, from_env.as_deref(), &source, file)?;
        }
        Ok(Loaded {
            config,
            file: file_read,
            paths,
            user_modes: Modes::default(),
        })
    }

    /// Parses TOML text, turning errors into ones that name the file, line and key.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => locate(text, span.start),
                None => (None, None),
            };
            let key = unknown_field(e.message()).map_or(key, |k| {
                Some(match section_at(text, e.span().map_or(0, |s| s.start)) {
                    Some(sec) => format!("{sec}.{k}"),
                    None => k,
                })
            });
            ConfigError {
                source: path.display().to_string(),
                line,
                key,
                message: e.message().trim().to_owned(),
            }
        })
    }

    fn apply_env(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
        platform: &PlatformDirs,
    ) -> Result<(), ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let bad = |name: &str, value: &str, why: &str| ConfigError {
            source: format!("environment variable {name}={value:?}"),
            line: None,
            key: None,
            message: why.to_owned(),
        };
        if let Some(v) = get("CONVOS_DATA_DIR") {
            self.data_dir = Some(expand_tilde(Path::new(&v), platform.home.as_deref()));
        }
        if let Some(v) = get("CONVOS_API_BASE_URL") {
            self.api.base_url = v;
        }
        if let Some(v) = get("CONVOS_SYNC_SCHEDULE") {
            self.sync.schedule = v;
        }
        if let Some(v) = get("CONVOS_SYNC_RECONCILE_SCHEDULE") {
            self.sync.reconcile_schedule = v;
        }
        if let Some(v) = get("CONVOS_API_BURST") {
            self.api.burst = v
                .trim()
                .parse()
                .map_err(|_| bad("CONVOS_API_BURST", &v, "expected a whole number"))?;
        }
        if let Some(v) = get("CONVOS_API_REFILL_PER_MINUTE") {
            self.api.refill_per_minute = v
                .trim()
                .parse()
                .map_err(|_| bad("CONVOS_API_REFILL_PER_MINUTE", &v, "expected a number"))?;
        }
        if let Some(v) = get("CONVOS_API_PACING") {
            self.api.pacing = match v.trim() {
                "adaptive" => Pacing::Adaptive,
                "fixed" => Pacing::Fixed,
                _ => return Err(bad("CONVOS_API_PACING", &v, "use adaptive or fixed")),
            };
        }
        if let Some(v) = get("CONVOS_API_MAX_PER_SECOND") {
            self.api.max_per_second = v
                .trim()
                .parse()
                .map_err(|_| bad("CONVOS_API_MAX_PER_SECOND", &v, "expected a number"))?;
        }
        if let Some(v) = env("CONVOS_WATCH_DIRS") {
            self.watch.dirs = Some(
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect(),
            );
        }
        if let Some(v) = get("CONVOS_MIRROR_DIR") {
            self.mirror.dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("CONVOS_WEB_LISTEN") {
            self.web.listen = v.trim().parse().map_err(|_| {
                bad(
                    "CONVOS_WEB_LISTEN",
                    &v,
                    "expected IP:PORT, such as 127.0.0.1:8642 or [::1]:8642",
                )
            })?;
        }
        if let Some(v) = get("CONVOS_IMPORT_PATHS") {
            self.sync.import_paths = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        Ok(())
    }

    fn validate(&self, source: &str, file: Option<&Path>) -> Result<(), ConfigError> {
        let text = file.and_then(|p| std::fs::read_to_string(p).ok());
        let err = |key: &str, message: String| ConfigError {
            source: source.to_owned(),
            line: text.as_deref().and_then(|t| line_of_key(t, key)),
            key: Some(key.to_owned()),
            message,
        };
        if tracing_subscriber::EnvFilter::builder()
            .parse(format!("convos={}", self.log.level))
            .is_err()
        {
            return Err(err(
                "log.level",
                format!(
                    "unknown level {:?}: use error, warn, info, debug or trace",
                    self.log.level
                ),
            ));
        }
        if let Err(e) = parse_schedule(&self.sync.schedule) {
            return Err(err("sync.schedule", e));
        }
        if let Err(e) = parse_schedule(&self.sync.reconcile_schedule) {
            return Err(err("sync.reconcile_schedule", e));
        }
        if let Err(e) = Zone::parse(&self.sync.timezone) {
            return Err(err("sync.timezone", e));
        }
        match reqwest::Url::parse(&self.api.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(err(
                    "api.base_url",
                    format!("{:?} is not an http(s) URL", self.api.base_url),
                ));
            }
        }
        if self.api.burst == 0 {
            return Err(err("api.burst", "must be at least 1".into()));
        }
        if !(self.api.refill_per_minute.is_finite() && self.api.refill_per_minute > 0.0) {
            return Err(err(
                "api.refill_per_minute",
                "must be a positive number".into(),
            ));
        }
        if !(self.api.max_per_second.is_finite() && self.api.max_per_second > 0.0) {
            return Err(err(
                "api.max_per_second",
                "must be a positive number".into(),
            ));
        }
        if self.api.max_in_flight == 0 {
            return Err(err("api.max_in_flight", "must be at least 1".into()));
        }
        if self.import.max_ratio == 0 {
            return Err(err("import.max_ratio", "must be at least 1".into()));
        }
        if !matches!(
            self.auth.browser.as_str(),
            "none" | "auto" | "firefox" | "chrome" | "chromium" | "brave" | "edge" | "safari"
        ) {
            return Err(err(
                "auth.browser",
                format!(
                    "unknown browser {:?}: use none, auto, firefox, chrome, chromium, brave, edge or safari",
                    self.auth.browser
                ),
            ));
        }
        if !(self.watch.settle_secs.is_finite() && self.watch.settle_secs >= 0.0) {
            return Err(err("watch.settle_secs", "must be zero or more".into()));
        }
        if self.web.enabled && !self.web.listen.ip().is_loopback() && !self.web.allow_remote {
            return Err(err(
                "web.listen",
                format!(
                    "{} is not a loopback address, so other machines could reach the viewer; \
                     listen on 127.0.0.1 or [::1], or set `allow_remote = true` under [web] \
                     (web.allow_remote) if that is what you want",
                    self.web.listen
                ),
            ));
        }
        Ok(())
    }

    fn paths(
        &self,
        platform: &PlatformDirs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Paths, ConfigError> {
        let data_dir = match &self.data_dir {
            Some(d) => expand_tilde(d, platform.home.as_deref()),
            None => platform.data_dir.clone().ok_or_else(|| ConfigError {
                source: "the platform".into(),
                line: None,
                key: Some("data_dir".into()),
                message: "no home directory found: set data_dir or CONVOS_DATA_DIR".into(),
            })?,
        };
        let watch_dirs = match &self.watch.dirs {
            Some(d) => d
                .iter()
                .map(|p| expand_tilde(p, platform.home.as_deref()))
                .collect(),
            None => platform.downloads.iter().cloned().collect(),
        };
        let socket = socket_path(&data_dir, env("XDG_RUNTIME_DIR").map(PathBuf::from));
        let mirror_dir = self
            .mirror
            .dir
            .as_ref()
            .map(|d| expand_tilde(d, platform.home.as_deref()));
        Ok(Paths {
            archive_dir: data_dir.join("archive"),
            credentials: data_dir.join("credentials.json"),
            lock_file: data_dir.join("convos.lock"),
            socket,
            watch_dirs,
            mirror_dir,
            data_dir,
        })
    }

    /// Import paths with `~` expanded.
    pub fn import_paths(&self, platform: &PlatformDirs) -> Vec<PathBuf> {
        self.sync
            .import_paths
            .iter()
            .map(|p| expand_tilde(p, platform.home.as_deref()))
            .collect()
    }
}

/// Refuses a mirror folder that is relative (the daemon's working folder is not the
/// user's) or that overlaps the data dir (the mirror is the user's notes, the data dir
/// convos' private archive). `from_env` is `CONVOS_MIRROR_DIR` when it set the folder,
/// else `file` the config file that did (if any).
fn check_mirror_dir(
    mirror: &Path,
    data_dir: &Path,
    from_env: Option<&str>,
    source: &str,
    file: Option<&Path>,
) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError {
        source: match from_env {
            Some(v) => format!("environment variable CONVOS_MIRROR_DIR={v:?}"),
            None => source.to_owned(),
        },
        line: file
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| line_of_key(&t, "mirror.dir")),
        key: from_env.is_none().then(|| "mirror.dir".to_owned()),
        message,
    };
    if !mirror.is_absolute() {
        return Err(err(format!(
            "the mirror folder {} is a relative path: give an absolute one, or one \
             starting with ~/",
            mirror.display()
        )));
    }
    crate::mirror::check_location(mirror, [data_dir]).map_err(|e| err(e.to_string()))
}

/// The control socket: under `$XDG_RUNTIME_DIR` (named for the data dir, so several
/// archives can run side by side), else in the data dir.
fn socket_path(data_dir: &Path, runtime_dir: Option<PathBuf>) -> PathBuf {
    match runtime_dir.filter(|d| d.is_absolute() && d.is_dir()) {
        Some(rt) => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
            let tag = crate::util::hex(&digest[..6]);
            rt.join("convos").join(format!("{tag}.sock"))
        }
        None => data_dir.join("control.sock"),
    }
}

/// Expands a leading `~` to the home directory.
pub fn expand_tilde(p: &Path, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => p.to_path_buf(),
    }
}

/// The 1-based line of a byte offset, and the `key = …` (with its table) on that line.
fn locate(text: &str, offset: usize) -> (Option<usize>, Option<String>) {
    let offset = offset.min(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('['))
        .map(|k| match section_at(text, offset) {
            Some(sec) => format!("{sec}.{k}"),
            None => k,
        });
    (Some(line_no), key)
}

/// The `[table]` in effect at a byte offset.
fn section_at(text: &str, offset: usize) -> Option<String> {
    text[..offset.min(text.len())].lines().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && l.ends_with(']'))
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
    })
}

/// The field named in toml's "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_owned())
}

/// The line where `section.key` is set in a TOML text.
fn line_of_key(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') && l.ends_with(']') {
            current = l.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
        } else if current == section
            && l.split_once('=')
                .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests;
