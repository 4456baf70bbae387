//! `convos service install|uninstall|status`.

use super::AppError;
use crate::cli::ServiceArgs;

/// Installs, removes or reports the user service.
pub(super) fn run(args: &ServiceArgs, flags_given: bool) -> Result<(), AppError> {
    if flags_given {
        // The service starts `convos run` without flags or CONVOS_* variables.
        eprintln!(
            "convos: note: --config/--data-dir (or CONVOS_CONFIG/CONVOS_DATA_DIR) apply \
             to this command only; the service reads the default config file, so set \
             data_dir there if you need another location"
        );
    }
    let report = crate::service::run(args.action, args.dry_run)?;
    print!("{report}");
    Ok(())
}
