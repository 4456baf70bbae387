use super::*;

const TOKEN: &str = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..secret-session-value-0123456789";

#[test]
fn input_forms() {
    for input in [
        TOKEN.to_owned(),
        format!("{SESSION_COOKIE}={TOKEN}"),
        format!("Cookie: oai-did=abc; {SESSION_COOKIE}={TOKEN}; other=1"),
        format!(
            "{SESSION_COOKIE}.0={}\n{SESSION_COOKIE}.1={}",
            &TOKEN[..30],
            &TOKEN[30..]
        ),
        format!(
            "{SESSION_COOKIE}.1={}; {SESSION_COOKIE}.0={}",
            &TOKEN[30..],
            &TOKEN[..30]
        ),
    ] {
        let c = Credentials::parse_input(&input, "test").expect(&input);
        assert_eq!(
            c.session_value().expect("session").expose_secret(),
            TOKEN,
            "{input}"
        );
    }
    assert!(Credentials::parse_input("", "t").is_err());
    assert!(Credentials::parse_input("hello world", "t").is_err());
    assert!(Credentials::parse_input("foo=bar", "t").is_err());
    let gap = format!(
        "{SESSION_COOKIE}.0=aaaaaaaaaaaaaaaaaaaaaaaa; {SESSION_COOKIE}.2=bbbbbbbbbbbbbbbbbbbbbbbbbb"
    );
    assert!(
        Credentials::parse_input(&gap, "t").is_err(),
        "a missing chunk is not a session"
    );
}

#[test]
fn debug_and_errors_never_show_the_token() {
    let c = Credentials::parse_input(TOKEN, "test").expect("ok");
    let shown = format!("{c:?}");
    assert!(!shown.contains("secret-session-value"), "{shown}");
    let s = Session {
        access_token: SecretString::from("access-secret-xyz".to_owned()),
        expires_at: None,
        account_id: None,
    };
    assert!(!format!("{s:?}").contains("access-secret-xyz"));
}

#[test]
fn file_is_private_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub").join("credentials.json");
    let c = Credentials::parse_input(&format!("oai-did=dev1; {SESSION_COOKIE}={TOKEN}"), "stdin")
        .expect("ok");
    c.save(&path).expect("save");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = Credentials::load(&path, None)
            .expect("load")
            .expect("present");
        assert_eq!(loaded.session_value().expect("s").expose_secret(), TOKEN);
        assert_eq!(loaded.cookie_names(), vec!["oai-did", SESSION_COOKIE]);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = Credentials::load(&path, None).expect_err("too open");
        let msg = err.to_string();
        assert!(
            msg.contains("chmod 600") && !msg.contains("secret-session-value"),
            "{msg}"
        );
    }
    let env = Credentials::load(&path, Some("env-token-value-0123456789abcdef"))
        .expect("env")
        .expect("some");
    assert_eq!(
        env.session_value().expect("s").expose_secret(),
        "env-token-value-0123456789abcdef"
    );
    assert!(
        Credentials::load(&dir.path().join("none.json"), None)
            .expect("ok")
            .is_none()
    );
}

#[test]
fn rotation_replaces_the_family_and_honours_removals() {
    let mut c = Credentials::parse_input(&format!("{SESSION_COOKIE}={TOKEN}"), "t").expect("ok");
    let changed = c.apply_set_cookies(
        [
            "__Secure-next-auth.session-token.0=NEWPART0aaaaaaaaaa; Path=/; HttpOnly; Secure",
            "__Secure-next-auth.session-token.1=NEWPART1bbbbbbbbbb; Path=/; HttpOnly; Secure",
            "__Secure-next-auth.session-token=; Path=/; Max-Age=0",
            "unrelated=1; Path=/",
        ]
        .into_iter(),
    );
    assert!(changed);
    assert_eq!(
        c.session_value().expect("s").expose_secret(),
        "NEWPART0aaaaaaaaaaNEWPART1bbbbbbbbbb"
    );
    // Back to one unchunked cookie: stale chunks must not survive.
    let changed = c.apply_set_cookies(
        [
            "__Secure-next-auth.session-token=SINGLEcccccccccccc; Path=/",
            "__Secure-next-auth.session-token.0=; Max-Age=0",
            "__Secure-next-auth.session-token.1=; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        ]
        .into_iter(),
    );
    assert!(changed);
    assert_eq!(
        c.session_value().expect("s").expose_secret(),
        "SINGLEcccccccccccc"
    );
    assert_eq!(c.cookie_names(), vec![SESSION_COOKIE]);
    assert!(!c.apply_set_cookies(["other=2"].into_iter()));
}

#[test]
fn jwt_and_session_response() {
    use base64::Engine;
    let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let token = format!(
        "{}.{}.{}",
        enc(r#"{"alg":"RS256"}"#),
        enc(r#"{"exp":1900000000,"https://api.openai.com/auth":{"chatgpt_account_id":"acc-1"}}"#),
        enc("sig")
    );
    let claims = jwt_claims(&token).expect("claims");
    assert_eq!(claims.exp, Some(1_900_000_000));
    assert_eq!(claims.account_id.as_deref(), Some("acc-1"));
    let body = format!(
        r#"{{"user":{{"id":"u"}},"expires":"2030-01-01T00:00:00Z","accessToken":"{token}","account":{{"id":"acc-2"}}}}"#
    );
    let s = parse_session(body.as_bytes()).expect("json").expect("live");
    assert_eq!(s.account_id.as_deref(), Some("acc-2"));
    assert_eq!(s.expires_at.map(|t| t.timestamp()), Some(1_900_000_000));
    assert!(parse_session(b"{}").expect("json").is_none());
    assert!(parse_session(b"<html>").is_err());
}

#[test]
fn a_damaged_credentials_file_is_a_clear_error_without_contents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("credentials.json");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path).expect("create");
    f.write_all(b"{\"version\":1,\"cookies\":[[\"__Secure-next-auth.session-token\",\"secret-half")
        .expect("write");
    drop(f);
    let err = Credentials::load(&path, None).expect_err("damaged");
    let msg = err.to_string();
    assert!(matches!(err, AuthError::Corrupt(_)), "{msg}");
    assert!(
        msg.contains("convos auth") && msg.contains("credentials.json"),
        "{msg}"
    );
    assert!(!msg.contains("secret-half"), "{msg}");
}
