//! Self-test of the fake chatgpt.com: pins the behaviour other integration tests rely on.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::fake_server::{
    ConvOpts, FakeChatGpt, Fault, ImageAttachment, IsoFlavour, Route, RouteKind, SESSION_COOKIE,
    conversation_detail, image_conversation_detail,
};

fn client() -> reqwest::Client {
    // reqwest is built with rustls-no-provider; building a client needs a provider even for
    // plain http, so install one (a second install is harmless and ignored).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .build()
        .expect("build reqwest client")
}

async fn get(url: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut req = client().get(url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("request to fake server")
}

async fn get_json(url: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let resp = get(url, bearer).await;
    let status = resp.status();
    let body = resp.json().await.expect("JSON body");
    (status, body)
}

async fn exchange(fake: &FakeChatGpt, cookie: &str) -> reqwest::Response {
    client()
        .get(format!("{}/api/auth/session", fake.base_url()))
        .header("cookie", cookie)
        .send()
        .await
        .expect("session request")
}

fn jwt_payload(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
        .expect("payload is JSON")
}

fn ids(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .expect("items array")
        .iter()
        .map(|i| i["id"].as_str().expect("item id"))
        .collect()
}

#[tokio::test]
async fn session_exchange_plain_chunked_and_unknown() {
    let fake = FakeChatGpt::start().await;
    fake.add_session("abcdef");

    let resp = exchange(&fake, &format!("{SESSION_COOKIE}=abcdef")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["account"]["id"], json!(fake.account_id()));
    assert_eq!(body["authProvider"], "auth0");
    assert!(body["expires"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["user"]["groups"], json!([]));
    let token1 = body["accessToken"].as_str().unwrap().to_owned();

    // The chunked form joins in index order, whatever order the cookies come in.
    let chunked = format!("{SESSION_COOKIE}.1=def; other=x; {SESSION_COOKIE}.0=abc");
    let body: Value = exchange(&fake, &chunked).await.json().await.unwrap();
    let token2 = body["accessToken"].as_str().unwrap();
    assert_ne!(token1, token2, "every exchange mints a fresh token");

    let unknown: Value = exchange(&fake, &format!("{SESSION_COOKIE}=nope"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unknown, json!({}));
    let (status, none) = get_json(&format!("{}/api/auth/session", fake.base_url()), None).await;
    assert_eq!((status, none), (StatusCode::OK, json!({})));

    fake.revoke_session("abcdef");
    let revoked: Value = exchange(&fake, &format!("{SESSION_COOKIE}=abcdef"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revoked, json!({}));

    let recorded = fake.requests();
    assert_eq!(recorded.len(), 5);
    assert_eq!(recorded[1].header("Cookie"), Some(chunked.as_str()));
    assert!(recorded.iter().all(|r| r.kind == RouteKind::Session));
    assert_eq!(fake.count(RouteKind::Session), 5);
}

#[tokio::test]
async fn jwt_carries_exp_and_account_and_ttl_is_configurable() {
    let fake = FakeChatGpt::start().await;
    fake.add_session("s");
    let body: Value = exchange(&fake, &format!("{SESSION_COOKIE}=s"))
        .await
        .json()
        .await
        .unwrap();
    let claims = jwt_payload(body["accessToken"].as_str().unwrap());
    let (exp, iat) = (
        claims["exp"].as_i64().unwrap(),
        claims["iat"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 10 * 24 * 3600);
    let auth = &claims["https://api.openai.com/auth"];
    assert_eq!(auth["chatgpt_account_id"], json!(fake.account_id()));
    assert!(auth["user_id"].as_str().unwrap().starts_with("user-"));

    fake.set_access_token_ttl(60);
    let claims = jwt_payload(&fake.mint_access_token());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
}

#[tokio::test]
async fn backend_requires_a_live_bearer() {
    let fake = FakeChatGpt::start().await;
    let list = format!(
        "{}/backend-api/conversations?offset=0&limit=20",
        fake.base_url()
    );

    let (status, body) = get_json(&list, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"]["code"], "token_expired");
    assert_eq!(body["detail"]["param"], Value::Null);
    assert_eq!(get(&list, Some("forged.token.x")).await.status(), 401);

    let token = fake.mint_access_token();
    assert_eq!(get(&list, Some(&token)).await.status(), 200);
    fake.expire_access_tokens();
    assert_eq!(get(&list, Some(&token)).await.status(), 401);
    let fresh = fake.mint_access_token();
    assert_eq!(get(&list, Some(&fresh)).await.status(), 200);

    fake.set_access_token_ttl(0);
    let dead_on_arrival = fake.mint_access_token();
    assert_eq!(get(&list, Some(&dead_on_arrival)).await.status(), 401);
}

#[tokio::test]
async fn list_pages_orders_and_filters() {
    let fake = FakeChatGpt::start().await;
    let token = fake.mint_access_token();
    let base = fake.base_url();
    for i in 0..5 {
        let t = 1_700_000_000.0 + f64::from(i) * 100.0;
        fake.put_conversation(
            conversation_detail(&format!("c{i}"), &format!("Chat {i}"), t, t + 10.5),
            ConvOpts::default(),
        );
    }
    fake.put_conversation(
        conversation_detail("arch", "Archived", 1_700_000_000.0, 1_800_000_000.0),
        ConvOpts {
            archived: true,
            ..ConvOpts::default()
        },
    );
    fake.put_conversation(
        conversation_detail("proj", "In project", 1_700_000_000.0, 1_900_000_000.0),
        ConvOpts {
            project: Some("g-p-aaa".into()),
            ..ConvOpts::default()
        },
    );

    let (_, page1) = get_json(
        &format!("{base}/backend-api/conversations?offset=0&limit=2&order=updated"),
        Some(&token),
    )
    .await;
    assert_eq!(ids(&page1), ["c4", "c3"]);
    assert_eq!(page1["total"], 5);
    assert_eq!(page1["limit"], 2);
    assert_eq!(page1["has_missing_conversations"], false);
    let item = &page1["items"][0];
    assert_eq!(item["update_time"], "2023-11-14T22:20:10.500000Z");
    assert_eq!(item["mapping"], Value::Null);
    assert_eq!(item["gizmo_id"], Value::Null);
    assert_eq!(item["safe_urls"], json!([]));

    let (_, page3) = get_json(
        &format!("{base}/backend-api/conversations?offset=4&limit=2&order=updated"),
        Some(&token),
    )
    .await;
    assert_eq!(ids(&page3), ["c0"]);

    let (_, archived) = get_json(
        &format!("{base}/backend-api/conversations?offset=0&limit=20&is_archived=true"),
        Some(&token),
    )
    .await;
    assert_eq!(ids(&archived), ["arch"]);
    assert_eq!(archived["items"][0]["is_archived"], true);

    let (_, with_projects) = get_json(
        &format!("{base}/backend-api/conversations?offset=0&limit=3&hide_snorlax=false"),
        Some(&token),
    )
    .await;
    assert_eq!(ids(&with_projects), ["proj", "c4", "c3"]);
    assert_eq!(with_projects["items"][0]["gizmo_id"], "g-p-aaa");

    let (status, err) = get_json(
        &format!("{base}/backend-api/conversations?offset=0&limit=101"),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["detail"][0]["loc"], json!(["query", "limit"]));
    let (status, _) = get_json(
        &format!("{base}/backend-api/conversations?offset=x"),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Archive/star toggles keep update_time; skew and ISO flavour change only the list view.
    fake.set_starred("c4", true);
    fake.set_list_time_skew(-2.0);
    fake.set_iso_flavour(IsoFlavour::Naive);
    let (_, naive) = get_json(
        &format!("{base}/backend-api/conversations?limit=1"),
        Some(&token),
    )
    .await;
    assert_eq!(naive["items"][0]["is_starred"], true);
    assert_eq!(naive["items"][0]["update_time"], "2023-11-14T22:20:08");
    assert_eq!(
        naive["items"][0]["create_time"],
        "2023-11-14T22:20:00.000000"
    );
    fake.set_iso_flavour(IsoFlavour::PlusZero);
    let (_, plus) = get_json(
        &format!("{base}/backend-api/conversations?limit=1"),
        Some(&token),
    )
    .await;
    assert_eq!(
        plus["items"][0]["update_time"],
        "2023-11-14T22:20:08.500000+00:00"
    );

    let first = &fake.requests()[0];
    assert_eq!(first.query_param("order").as_deref(), Some("updated"));
    assert_eq!(
        first.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(fake.count(RouteKind::List), 7);
    assert_eq!(fake.count(RouteKind::ArchivedList), 1);
    fake.reset_counts();
    assert_eq!(fake.count(RouteKind::List), 0);
}

#[tokio::test]
async fn detail_touch_omit_nulls_and_delete() {
    let fake = FakeChatGpt::start().await;
    let token = fake.mint_access_token();
    let url = format!("{}/backend-api/conversation/c1", fake.base_url());
    fake.put_conversation(
        conversation_detail("c1", "One", 1_700_000_000.25, 1_700_000_100.5),
        ConvOpts::default(),
    );

    let (status, detail) = get_json(&url, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(detail["update_time"], json!(1_700_000_100.5));
    assert_eq!(
        detail["mapping"]["client-created-root"]["message"],
        Value::Null
    );
    let current = detail["current_node"].as_str().unwrap();
    assert_eq!(
        detail["mapping"][current]["message"]["metadata"]["model_slug"],
        "gpt-5"
    );

    fake.touch("c1", 1_700_000_500.0);
    let (_, touched) = get_json(&url, Some(&token)).await;
    assert_eq!(touched["update_time"], json!(1_700_000_500.0));
    let new_current = touched["current_node"].as_str().unwrap();
    assert_ne!(new_current, current);
    assert_eq!(touched["mapping"].as_object().unwrap().len(), 6);
    let user = touched["mapping"][new_current]["parent"].as_str().unwrap();
    assert_eq!(touched["mapping"][user]["parent"], json!(current));

    fake.set_omit_null_keys(true);
    let (_, stripped) = get_json(&url, Some(&token)).await;
    assert!(
        stripped["mapping"]["client-created-root"]
            .get("message")
            .is_none()
    );
    assert!(stripped.get("plugin_ids").is_none());

    fake.delete("c1");
    let (status, gone) = get_json(&url, Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(gone, json!({"detail": "Can't load conversation c1"}));
    assert_eq!(fake.detail_count("c1"), 4);
    assert_eq!(fake.count(RouteKind::Detail), 4);
}

#[tokio::test]
async fn faults_fire_once_in_order_then_service_resumes() {
    let fake = FakeChatGpt::start().await;
    let token = fake.mint_access_token();
    let base = fake.base_url();
    fake.put_conversation(
        conversation_detail("c1", "One", 1.0, 2.0),
        ConvOpts::default(),
    );
    let detail = format!("{base}/backend-api/conversation/c1");

    fake.push_fault(Route::Detail("c1".into()), Fault::Status(502));
    fake.push_fault(
        Route::AnyDetail,
        Fault::RateLimited {
            retry_after: Some(7),
        },
    );
    let resp = get(&detail, Some(&token)).await;
    assert_eq!(resp.status(), 502);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("<h1>502 Bad Gateway</h1>")
    );
    let resp = get(&detail, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(get(&detail, Some(&token)).await.status(), 200);

    fake.push_fault(Route::List, Fault::Challenge);
    let resp = get(&format!("{base}/backend-api/conversations"), Some(&token)).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["cf-mitigated"], "challenge");
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("/cdn-cgi/challenge-platform/")
    );

    fake.push_fault(Route::List, Fault::TruncatedJson);
    let resp = get(&format!("{base}/backend-api/conversations"), Some(&token)).await;
    assert_eq!(resp.status(), 200);
    assert!(serde_json::from_slice::<Value>(&resp.bytes().await.unwrap()).is_err());

    fake.fail_always(Route::Session, Fault::Status(500));
    for _ in 0..2 {
        let (status, body) = get_json(&format!("{base}/api/auth/session"), None).await;
        assert_eq!(status, 500);
        assert_eq!(body, json!({"detail": "Internal server error"}));
    }
    fake.clear_faults();
    assert_eq!(
        get(&format!("{base}/api/auth/session"), None)
            .await
            .status(),
        200
    );

    let statuses: Vec<Option<u16>> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses[..3], [Some(502), Some(429), Some(200)]);
}

#[tokio::test]
async fn token_bucket_throttles_backend_requests() {
    let fake = FakeChatGpt::start().await;
    let token = fake.mint_access_token();
    fake.set_rate_limit(2, 0.0);
    let url = format!("{}/backend-api/conversations", fake.base_url());
    assert_eq!(get(&url, Some(&token)).await.status(), 200);
    assert_eq!(get(&url, Some(&token)).await.status(), 200);
    let resp = get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_none());
    fake.clear_rate_limit();
    assert_eq!(get(&url, Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn rotation_sets_cookies_and_new_session_works() {
    let fake = FakeChatGpt::start().await;
    fake.add_session("old-token");
    fake.rotate_session_on_next_exchange("new-unchunked", false);
    let resp = exchange(&fake, &format!("{SESSION_COOKIE}=old-token")).await;
    let cookies: Vec<&str> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0].starts_with(&format!("{SESSION_COOKIE}=new-unchunked; Path=/; Expires=")));
    assert!(cookies[0].ends_with("HttpOnly; Secure; SameSite=Lax"));
    assert!(!fake.rotation_pending());

    fake.rotate_session_on_next_exchange_revoking_old("0123456789", true);
    let resp = exchange(&fake, &format!("{SESSION_COOKIE}=new-unchunked")).await;
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(cookies[0].starts_with(&format!("{SESSION_COOKIE}.0=01234;")));
    assert!(cookies[1].starts_with(&format!("{SESSION_COOKIE}.1=56789;")));
    assert!(cookies[2].starts_with(&format!("{SESSION_COOKIE}=; Path=/; Max-Age=0")));

    let body: Value = exchange(
        &fake,
        &format!("{SESSION_COOKIE}.0=01234; {SESSION_COOKIE}.1=56789"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(body["accessToken"].is_string());
    let revoked: Value = exchange(&fake, &format!("{SESSION_COOKIE}=new-unchunked"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revoked, json!({}));
    // The first rotation kept its old session alive.
    let still: Value = exchange(&fake, &format!("{SESSION_COOKIE}=old-token"))
        .await
        .json()
        .await
        .unwrap();
    assert!(still["accessToken"].is_string());
}

#[tokio::test]
async fn rotating_on_every_exchange_leaves_only_the_newest_cookie_alive() {
    let fake = FakeChatGpt::start().await;
    fake.add_session("first-token");
    fake.rotate_on_every_exchange(true);
    let mut current = "first-token".to_owned();
    for _ in 0..3 {
        let resp = exchange(&fake, &format!("{SESSION_COOKIE}={current}")).await;
        let set: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let body: Value = resp.json().await.unwrap();
        assert!(body["accessToken"].is_string());
        assert_eq!(set.len(), 1, "{set:?}");
        let next = set[0]
            .strip_prefix(&format!("{SESSION_COOKIE}="))
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_owned();
        assert_ne!(next, current);
        assert!(!fake.session_alive(&current), "the sent cookie died");
        assert!(fake.session_alive(&next));
        current = next;
    }
    assert!(!fake.session_alive("first-token"));
    assert!(!fake.rotation_pending(), "no one-shot rotation is queued");
}

#[tokio::test]
async fn list_rows_can_be_replaced_or_lose_keys_and_faults_can_answer_200_json() {
    let fake = FakeChatGpt::start().await;
    let token = fake.mint_access_token();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        fake.put_conversation(
            conversation_detail(id, id, 1.7e9, 1.7e9 + i as f64),
            ConvOpts::default(),
        );
    }
    let url = format!(
        "{}/backend-api/conversations?offset=0&limit=10&order=updated",
        fake.base_url()
    );
    fake.override_list_row("b", json!({"odd": true}));
    let (_, list) = get_json(&url, Some(&token)).await;
    let rows = list["items"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["id"], "c");
    assert_eq!(rows[1], json!({"odd": true}), "in b's place");
    assert_eq!(rows[2]["id"], "a");
    assert!(rows[2].as_object().unwrap().contains_key("gizmo_id"));
    fake.omit_list_key("gizmo_id");
    let (_, list) = get_json(&url, Some(&token)).await;
    assert!(
        !list["items"][2]
            .as_object()
            .unwrap()
            .contains_key("gizmo_id")
    );
    assert_eq!(list["items"][2]["id"], "a");
    // The detail is untouched by either.
    let (status, detail) = get_json(
        &format!("{}/backend-api/conversation/b", fake.base_url()),
        Some(&token),
    )
    .await;
    assert_eq!(
        (status, detail["title"].as_str()),
        (StatusCode::OK, Some("b"))
    );

    fake.push_fault(Route::Sidebar, Fault::OkJson(json!({"moved": "elsewhere"})));
    let (status, body) = get_json(
        &format!("{}/backend-api/gizmos/snorlax/sidebar", fake.base_url()),
        Some(&token),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"moved": "elsewhere"}))
    );
}

#[tokio::test]
async fn sidebar_and_project_conversations_page_by_cursor() {
    let fake = FakeChatGpt::start().await;
    let token = fake.mint_access_token();
    let base = fake.base_url();
    for (id, name) in [("g-p-1", "One"), ("g-p-2", "Two"), ("g-p-3", "Three")] {
        fake.add_project(id, name);
    }
    for i in 0..3 {
        let t = 1_700_000_000.0 + f64::from(i);
        fake.put_conversation(
            conversation_detail(&format!("p{i}"), "P", t, t),
            ConvOpts {
                project: Some("g-p-1".into()),
                ..ConvOpts::default()
            },
        );
    }

    let sidebar = format!("{base}/backend-api/gizmos/snorlax/sidebar?conversations_per_gizmo=0");
    let (_, page1) = get_json(&sidebar, Some(&token)).await;
    let names: Vec<&str> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["gizmo"]["gizmo"]["display"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["One", "Two"]);
    assert_eq!(page1["items"][0]["gizmo"]["gizmo"]["id"], "g-p-1");
    assert_eq!(page1["items"][0]["conversations"]["items"], json!([]));
    let cursor = page1["cursor"].as_str().unwrap();
    assert!(cursor.chars().all(|c| c.is_ascii_alphanumeric()));
    let (_, page2) = get_json(&format!("{sidebar}&cursor={cursor}"), Some(&token)).await;
    assert_eq!(page2["items"][0]["gizmo"]["gizmo"]["id"], "g-p-3");
    assert_eq!(page2["cursor"], Value::Null);

    let convs = format!("{base}/backend-api/gizmos/g-p-1/conversations");
    let (_, first) = get_json(&format!("{convs}?cursor=0&limit=2"), Some(&token)).await;
    assert_eq!(ids(&first), ["p2", "p1"]);
    assert_eq!(first["items"][0]["gizmo_id"], "g-p-1");
    let cursor = first["cursor"].as_str().unwrap();
    let (_, rest) = get_json(&format!("{convs}?cursor={cursor}&limit=2"), Some(&token)).await;
    assert_eq!(ids(&rest), ["p0"]);
    assert_eq!(rest["cursor"], Value::Null);
    let (status, _) = get_json(&format!("{convs}?cursor=zz"), Some(&token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(fake.count(RouteKind::Sidebar), 2);
    assert_eq!(fake.count(RouteKind::GizmoConversations), 3);
}

#[tokio::test]
async fn files_download_through_signed_url() {
    let fake = FakeChatGpt::start().await;
    let token = fake.mint_access_token();
    let base = fake.base_url();
    let png = b"\x89PNG\r\n\x1a\nfake".to_vec();
    fake.put_file("file_abc", png.clone(), "cat.png", "image/png");
    let detail = image_conversation_detail(
        "img",
        "Cat",
        1.0,
        2.0,
        &ImageAttachment {
            file_id: "file_abc",
            name: "cat.png",
            mime: "image/png",
            size: png.len() as u64,
        },
    );
    let user = &detail["mapping"]["img-user"]["message"];
    assert_eq!(
        user["content"]["parts"][0]["asset_pointer"],
        "sediment://file_abc"
    );
    assert_eq!(user["metadata"]["attachments"][0]["id"], "file_abc");

    let (_, meta) = get_json(
        &format!("{base}/backend-api/files/download/file_abc?conversation_id=img&inline=false"),
        Some(&token),
    )
    .await;
    assert_eq!(meta["status"], "success");
    assert_eq!(meta["file_size_bytes"], png.len());
    let url = meta["download_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{base}/backend-api/estuary/content?id=file_abc&")));
    let resp = get(url, None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), png.as_slice());
    let forged = format!("{base}/backend-api/estuary/content?id=file_abc&sig=bad");
    assert_eq!(get(&forged, None).await.status(), 403);

    let (status, missing) = get_json(
        &format!("{base}/backend-api/files/download/file_nope"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(missing["error_code"], "file_not_found");
    assert_eq!(fake.count(RouteKind::FileDownload), 2);
    assert_eq!(fake.count(RouteKind::FileBytes), 2);
}

#[test]
fn background_server_serves_sync_callers_and_stops_on_drop() {
    let fake = FakeChatGpt::start_background();
    fake.add_session("bg");
    let addr = fake.addr();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body: Value = runtime.block_on(async {
        exchange(&fake, &format!("{SESSION_COOKIE}=bg"))
            .await
            .json()
            .await
            .unwrap()
    });
    assert!(body["accessToken"].is_string());
    drop(fake);
    // The port is free now. Another test's server may take it at once, so a connection
    // alone proves nothing: whoever answers must not know our session.
    if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
        use std::io::{Read, Write};
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let request = format!(
            "GET /api/auth/session HTTP/1.1\r\nHost: {addr}\r\nCookie: {SESSION_COOKIE}=bg\r\nConnection: close\r\n\r\n"
        );
        let mut answer = String::new();
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_string(&mut answer);
        }
        assert!(
            !answer.contains("accessToken"),
            "the dropped server still answered: {answer}"
        );
    }
}
