//! `convos run`: the daemon in the foreground, on its own runtime, until SIGTERM or
//! SIGINT.

use super::AppError;
use crate::config::{Loaded, PlatformDirs};

/// `convos run`: the daemon in the foreground until SIGTERM or SIGINT.
pub(super) fn run(loaded: Loaded, platform: PlatformDirs) -> Result<(), AppError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let token = tokio_util::sync::CancellationToken::new();
        let t = token.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                signal(SignalKind::hangup()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            loop {
                tokio::select! {
                    _ = term.recv() => { tracing::info!("SIGTERM received"); t.cancel(); }
                    _ = int.recv() => { tracing::info!("SIGINT received"); t.cancel(); }
                    _ = hup.recv() => tracing::info!(
                        "SIGHUP received: configuration changes take effect after a restart \
                         (systemctl --user restart convos)"
                    ),
                }
            }
        });
        crate::daemon::run(loaded, platform, token).await
    });
    // Blocking work still running (an import at a safe point) must not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result.map_err(AppError::from)
}
