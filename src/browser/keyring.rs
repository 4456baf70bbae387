//! The real password lookups behind [`super::BrowserEnv::system`]: the Secret Service
//! via `secret-tool` on Linux and the Keychain via `security` on macOS.
//!
//! Both run as child processes so no keyring library (and its D-Bus/Security framework
//! bindings) is linked in; any failure simply means "no password".

use std::process::{Command, Stdio};

use secrecy::SecretString;
use secrecy::zeroize::Zeroizing;

use super::{Browser, Os};

/// The `application` attribute Chromium-family browsers store their password under on Linux.
pub(crate) fn linux_application(browser: Browser) -> &'static str {
    match browser {
        Browser::Chromium => "chromium",
        Browser::Brave => "brave",
        Browser::Edge => "microsoft-edge",
        _ => "chrome",
    }
}

/// The Keychain service name of a Chromium-family browser's cookie password on macOS.
pub(crate) fn mac_service(browser: Browser) -> &'static str {
    match browser {
        Browser::Chromium => "Chromium Safe Storage",
        Browser::Brave => "Brave Safe Storage",
        Browser::Edge => "Microsoft Edge Safe Storage",
        _ => "Chrome Safe Storage",
    }
}

/// Asks the system keyring for `browser`'s cookie password.
pub(crate) fn system_password(os: Os, browser: Browser) -> Option<SecretString> {
    if matches!(browser, Browser::Firefox | Browser::Safari) {
        return None;
    }
    let mut cmd = match os {
        Os::Linux => {
            let mut c = Command::new("secret-tool");
            c.args(["lookup", "application", linux_application(browser)]);
            c
        }
        Os::MacOs => {
            let mut c = Command::new("security");
            c.args(["find-generic-password", "-w", "-s", mac_service(browser)]);
            c
        }
    };
    tracing::debug!(%browser, program = ?cmd.get_program(), "asking the keyring for the cookie password");
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .inspect_err(|e| tracing::debug!(error = %e, "keyring lookup could not run"))
        .ok()?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        tracing::debug!(status = %out.status, "keyring lookup found no password");
        return None;
    }
    password_from_output(&stdout)
}

/// The password printed by `secret-tool`/`security`, without the trailing newline.
fn password_from_output(stdout: &[u8]) -> Option<SecretString> {
    let text = std::str::from_utf8(stdout).ok()?;
    let pw = text.strip_suffix('\n').unwrap_or(text);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    (!pw.is_empty()).then(|| SecretString::from(pw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn output_parsing() {
        assert_eq!(
            password_from_output(b"abc==\n").unwrap().expose_secret(),
            "abc=="
        );
        assert_eq!(password_from_output(b"abc").unwrap().expose_secret(), "abc");
        assert!(password_from_output(b"\n").is_none());
        assert!(password_from_output(b"").is_none());
    }

    #[test]
    fn names() {
        assert_eq!(linux_application(Browser::Chrome), "chrome");
        assert_eq!(linux_application(Browser::Edge), "microsoft-edge");
        assert_eq!(mac_service(Browser::Brave), "Brave Safe Storage");
    }
}
