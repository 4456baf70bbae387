//! Every exit code convos ends with, in one place (principle 5 of the design): 0 ok,
//! 1 failure, 2 usage, 78 bad configuration (EX_CONFIG, which the service files tell
//! systemd and launchd not to restart on). Below the application, errors carry a
//! [`FailureKind`]; only here does it become a number.

use crate::control::FailureKind;

/// The command did what it was asked.
pub const SUCCESS: u8 = 0;
/// The command ran and failed.
pub const FAILURE: u8 = 1;
/// The command line asked for something that cannot work (clap exits 2 for its own
/// parse errors too).
pub const USAGE: u8 = 2;
/// The configuration is wrong (EX_CONFIG).
pub const CONFIG: u8 = 78;

/// The exit code of a kind of failure.
pub fn code(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::Failed => FAILURE,
        FailureKind::Usage => USAGE,
        FailureKind::Config => CONFIG,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_code() {
        assert_eq!(code(FailureKind::Failed), 1);
        assert_eq!(code(FailureKind::Usage), 2);
        assert_eq!(code(FailureKind::Config), 78);
        assert_eq!(SUCCESS, 0);
    }
}
