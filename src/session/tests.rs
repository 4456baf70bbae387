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
fn the_pacing_state_survives_in_the_archive() {
    let archive = Archive::temporary().expect("archive");
    let store = ArchivePace(archive.clone());
    assert_eq!(store.load(), None);
    let state = PaceState {
        tokens: 3.5,
        at: 1_700_000_000.0,
        cooldown_until: Some(1_700_000_600.0),
        consecutive_429: 2,
    };
    store.save(&state).expect("save");
    assert_eq!(ArchivePace(archive).load(), Some(state));
}
