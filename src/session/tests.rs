use super::*;

/// `CredentialsStatus` exactly as versions before the enum wrote it: `state` a string.
#[derive(Serialize)]
struct WrittenBefore {
    state: String,
    source: Option<String>,
    fingerprint: Option<String>,
    account_id: Option<String>,
    access_token_expires: Option<String>,
    checked_at: Option<String>,
}

#[test]
fn credential_states_read_and_write_as_the_words_stored_before() {
    let archive = Archive::temporary().expect("archive");
    for (word, state) in [
        ("valid", CredentialState::Valid),
        ("expired", CredentialState::Expired),
        ("missing", CredentialState::Missing),
        ("unverified", CredentialState::Unverified),
    ] {
        let old = WrittenBefore {
            state: word.into(),
            source: Some("terminal".into()),
            fingerprint: Some("0123456789abcdef".into()),
            account_id: None,
            access_token_expires: Some("2026-01-02T03:04:05Z".into()),
            checked_at: Some("2026-01-01T00:00:00Z".into()),
        };
        archive.set_state(CREDENTIALS_KEY, &old).expect("write");
        let read: CredentialsStatus = archive
            .state(CREDENTIALS_KEY)
            .expect("read")
            .expect("present");
        assert_eq!(read.state, state, "{word}");
        assert_eq!(read.fingerprint.as_deref(), Some("0123456789abcdef"));
        assert_eq!(state.to_string(), word);
        let written = serde_json::to_value(&read).expect("json");
        assert_eq!(written["state"], word, "{written}");
    }
}

#[test]
fn a_dead_session_is_known_by_its_fingerprint() {
    let archive = Archive::temporary().expect("archive");
    let dead =
        Credentials::parse_input("dead-session-token-0123456789", "terminal").expect("creds");
    let fresh =
        Credentials::parse_input("fresh-session-token-0123456789", "terminal").expect("creds");
    assert!(!known_dead(&archive, &dead).expect("read"));
    record_credentials(
        &archive,
        &CredentialsStatus {
            state: CredentialState::Expired,
            fingerprint: Some(dead.fingerprint()),
            ..CredentialsStatus::default()
        },
    );
    assert!(known_dead(&archive, &dead).expect("read"));
    assert!(!known_dead(&archive, &fresh).expect("read"));
    // Valid credentials with that fingerprint are not dead.
    record_credentials(
        &archive,
        &CredentialsStatus {
            state: CredentialState::Valid,
            fingerprint: Some(dead.fingerprint()),
            ..CredentialsStatus::default()
        },
    );
    assert!(!known_dead(&archive, &dead).expect("read"));
}

#[test]
fn the_pacing_state_survives_in_the_archive_per_account() {
    let archive = Archive::temporary().expect("archive");
    let store = ArchivePace(archive.clone());
    assert_eq!(store.load(None), None);
    assert_eq!(store.load(Some("acct-1")), None);
    let state = PaceState {
        tokens: 3.5,
        at: 1_700_000_000.0,
        cooldown_until: Some(1_700_000_600.0),
        consecutive_429: 2,
        rate_per_sec: Some(0.02),
        threshold_per_sec: Some(0.01),
    };
    store.save(Some("acct-1"), &state).expect("save");
    assert_eq!(
        ArchivePace(archive.clone()).load(Some("acct-1")),
        Some(state.clone())
    );
    assert_eq!(
        store.load(Some("acct-2")),
        None,
        "another account starts afresh"
    );
    // What was saved before any account was known is taken up by the first account.
    let unknown = PaceState {
        tokens: 1.0,
        ..state.clone()
    };
    store.save(None, &unknown).expect("save");
    assert_eq!(store.load(Some("acct-2")), Some(unknown));
    assert_eq!(store.load(Some("acct-1")), Some(state));
}

#[test]
fn a_client_starts_from_the_pace_of_the_account_its_credentials_were_verified_for() {
    let archive = Archive::temporary().expect("archive");
    let creds = Credentials::parse_input("sess-abcdefghijklmnopqrstuvwxyz0123456789", "test")
        .expect("creds");
    let slow = PaceState {
        tokens: 0.0,
        at: crate::model::time::now_secs(),
        cooldown_until: None,
        consecutive_429: 0,
        rate_per_sec: Some(1.0 / 120.0),
        threshold_per_sec: None,
    };
    let config0 = Config::default();
    let fresh = pacer_for(&config0, &archive, &creds);
    assert_eq!(fresh.account(), None, "nothing known: a fresh pacer");
    assert!((fresh.rate_per_minute() - 1.0).abs() < 1e-9);
    ArchivePace(archive.clone())
        .save(Some("acct-9"), &slow)
        .expect("save");
    let config = Config::default();
    // Not verified yet: the pace of the account paced last applies (a restart killed
    // before it recorded the credentials must not burst again).
    let last = pacer_for(&config, &archive, &creds);
    assert_eq!(last.account().as_deref(), Some("acct-9"));
    assert!((last.rate_per_minute() - 0.5).abs() < 1e-9);
    ArchivePace(archive.clone())
        .save(Some("acct-10"), &PaceState::default())
        .expect("save");
    assert_eq!(
        pacer_for(&config, &archive, &creds).account().as_deref(),
        Some("acct-10")
    );
    // Verified for acct-9: that one's, whatever was paced last.
    record_credentials(
        &archive,
        &CredentialsStatus {
            state: CredentialState::Valid,
            fingerprint: Some(creds.fingerprint()),
            account_id: Some("acct-9".into()),
            ..CredentialsStatus::default()
        },
    );
    let known = pacer_for(&config, &archive, &creds);
    assert_eq!(known.account().as_deref(), Some("acct-9"));
    assert!((known.rate_per_minute() - 0.5).abs() < 1e-9);
    assert!(known.wait_hint() > std::time::Duration::from_secs(100));
}
