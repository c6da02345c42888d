//! Every route and rejection, through the router, against the local cloud.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Browser, jpeg_with_exif, world};

/// Signs up, confirms and signs in a new user; returns the browser.
async fn signed_in(email: &str, name: &str) -> Browser {
    let w = world();
    let mut b = Browser::new(w.state().await);
    b.get("/signin").await; // gets the CSRF cookie
    let page = b
        .post(
            "/signup",
            &[("email", email), ("name", name), ("password", "Passw0rd!x")],
            true,
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(
        page.location
            .as_deref()
            .unwrap()
            .starts_with("/confirm?email=")
    );
    // The emulator accepts any code (docs/emulator.md); AWS checks it.
    let page = b
        .post("/confirm", &[("email", email), ("code", "123456")], true)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = b
        .post(
            "/signin",
            &[("email", email), ("password", "Passw0rd!x")],
            true,
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/"));
    for cookie in ["ca_id", "ca_access", "ca_refresh"] {
        assert!(b.cookies.contains_key(cookie), "no {cookie} after sign-in");
    }
    b
}

/// Puts `bytes` where the presigned URL would, then finishes the upload.
async fn upload(
    b: &mut Browser,
    bytes: &[u8],
    content_type: &str,
    tags: &str,
    description: &str,
) -> crate::support::Page {
    let grant = b
        .post_json(
            "/photos/uploads",
            &json!({ "content_type": content_type, "size": bytes.len() }),
        )
        .await;
    assert_eq!(grant.status, StatusCode::OK, "{}", grant.body);
    let grant: serde_json::Value = serde_json::from_str(&grant.body).unwrap();
    let url = grant["url"].as_str().unwrap();
    // The presigned URL names one key under the user's staging prefix.
    let key_path = url.split('?').next().unwrap();
    assert!(key_path.contains("/staging/"), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let key = key_path
        .split_once(&format!("/{}/", world().settings.bucket))
        .unwrap()
        .1;
    world()
        .s3()
        .await
        .put_object()
        .bucket(&world().settings.bucket)
        .key(key)
        .content_type(grant["content_type"].as_str().unwrap())
        .body(bytes.to_vec().into())
        .send()
        .await
        .unwrap();
    b.post(
        "/photos",
        &[
            ("id", grant["id"].as_str().unwrap()),
            ("ext", grant["ext"].as_str().unwrap()),
            ("filename", "IMG_0001.jpg"),
            ("tags", tags),
            ("description", description),
        ],
        true,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_requests_go_to_sign_in_and_unknown_routes_are_404() {
    let mut b = Browser::new(world().state().await);
    let page = b.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/signin?next=/"));
    for path in [
        "/photos/new",
        "/map",
        "/search?q=x",
        "/profile",
        "/photos/01JDX5Y3Q7V8W9X0Y1Z2A3B4C5",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            page.location.unwrap().starts_with("/signin?next="),
            "{path}"
        );
    }
    let page = b.get("/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("<html"), "404 is a page");
    assert!(!page.body.contains("panicked"));
    let health = b.get(contract::routes::HEALTH).await;
    assert_eq!(health.status, StatusCode::OK);
    assert!(health.body.contains("\"ok\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn security_headers_and_cookie_flags() {
    let mut b = Browser::new(world().state().await);
    let page = b.get("/signin").await;
    let h = &page.headers;
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains(&world().settings.bucket_origin()), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    // Links to other sites carry no referrer; only the map tiles ask for one
    // (`referrerPolicy` of the tile layer in static/js/map.js).
    assert_eq!(h["referrer-policy"], "same-origin");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    // Plain http on loopback only: anywhere else the cookie is Secure.
    let mut remote = Browser::new(world().state().await);
    remote.host = "abc.execute-api.ap-southeast-1.amazonaws.com";
    let page = remote.get("/signin").await;
    let cookie = page.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.starts_with("__Host-ca_sid="), "{cookie}");
    assert!(!cookie.contains("Domain"), "{cookie}");
    // The page's CSRF token is the one derived from that session id.
    let sid = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(
        page.body
            .contains(&cloudalbum::auth::session::csrf_token(sid)),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_csrf_token_changes_at_sign_in_and_sign_out() {
    let w = world();
    let mut b = Browser::new(w.state().await);
    b.get("/signin").await;
    let anonymous = b.csrf();
    b.post(
        "/signup",
        &[
            ("email", "rotate@example.com"),
            ("name", "Rotate"),
            ("password", "Passw0rd!x"),
        ],
        true,
    )
    .await;
    b.post(
        "/confirm",
        &[("email", "rotate@example.com"), ("code", "123456")],
        true,
    )
    .await;
    let page = b
        .post(
            "/signin",
            &[("email", "rotate@example.com"), ("password", "Passw0rd!x")],
            true,
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let signed_in = b.csrf();
    assert_ne!(anonymous, signed_in, "the CSRF token survived sign-in");
    // The token from before signing in no longer works.
    let page = b
        .post("/profile", &[("name", "X"), ("csrf", &anonymous)], false)
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = b.post("/signout", &[], true).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_ne!(b.csrf(), signed_in, "the CSRF token survived sign-out");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_refreshed_only_on_page_navigations_and_not_in_a_flood() {
    let mut b = signed_in("refresh@example.com", "Refresh").await;
    // The ID token is gone (expired): a form post does not refresh it...
    b.cookies.remove("ca_id");
    let page = b.post("/profile", &[("name", "X")], true).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.location.unwrap().starts_with("/signin"),
        "post refreshed"
    );
    assert!(!b.cookies.contains_key("ca_id"));
    // ...nor does a fetch for something other than a page...
    let request = axum::http::Request::get("/")
        .header("host", b.host)
        .header("sec-fetch-dest", "image")
        .header(
            "cookie",
            b.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(b.send(request).await.status, StatusCode::SEE_OTHER);
    assert!(!b.cookies.contains_key("ca_id"));
    // ...but opening a page does.
    assert_eq!(b.get("/").await.status, StatusCode::OK);
    assert!(b.cookies.contains_key("ca_id"));

    // Made-up refresh cookies: the first is tried (and its cookies cleared),
    // the same one again within the interval is not sent to Cognito at all.
    let mut flood = Browser::new(world().state().await);
    let bogus = [
        ("ca_refresh", "made-up-refresh-token"),
        ("ca_user", "nobody"),
    ];
    let set = |f: &mut Browser| {
        for (k, v) in bogus {
            f.cookies.insert(k.to_owned(), v.to_owned());
        }
    };
    set(&mut flood);
    let first = flood.get("/").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert!(
        !flood.cookies.contains_key("ca_refresh"),
        "a failed refresh clears the cookies"
    );
    set(&mut flood);
    let second = flood.get("/").await;
    assert_eq!(second.status, StatusCode::SEE_OTHER);
    assert!(
        flood.cookies.contains_key("ca_refresh"),
        "the same refresh token was sent to Cognito again within the interval"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changing_requests_need_the_csrf_token() {
    let mut b = signed_in("csrf@example.com", "Csrf").await;
    let page = b.post("/signout", &[], false).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = b.post("/signout", &[("csrf", "forged")], false).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = b.post("/profile", &[("name", "x")], false).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Still signed in: nothing happened.
    assert_eq!(b.get("/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_and_forged_tokens_are_rejected() {
    let mut b = signed_in("tokens@example.com", "Tokens").await;
    let good = b.cookies["ca_id"].clone();
    // Without a refresh token, a tampered ID token means signed out.
    b.cookies.remove("ca_refresh");
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    b.cookies.insert("ca_id".to_owned(), parts.join("."));
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    b.cookies.insert("ca_id".to_owned(), "garbage".to_owned());
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    // An unsigned token claiming to be the user.
    let unsigned = format!("eyJhbGciOiJub25lIn0.{}.", good.split('.').nth(1).unwrap());
    b.cookies.insert("ca_id".to_owned(), unsigned);
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    // The real one still works.
    b.cookies.insert("ca_id".to_owned(), good);
    assert_eq!(b.get("/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_mistakes_are_explained_on_the_form() {
    let mut b = Browser::new(world().state().await);
    b.get("/signin").await;
    let page = b
        .post(
            "/signin",
            &[("email", "nobody@example.com"), ("password", "x")],
            true,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("wrong email or password"),
        "{}",
        page.body
    );
    let page = b
        .post(
            "/signup",
            &[
                ("email", "not-an-email"),
                ("name", "A"),
                ("password", "Passw0rd!x"),
            ],
            true,
        )
        .await;
    assert!(page.body.contains("valid email"), "{}", page.body);
    let page = b
        .post(
            "/signup",
            &[
                ("email", "a@example.com"),
                ("name", &"n".repeat(101)),
                ("password", "Passw0rd!x"),
            ],
            true,
        )
        .await;
    assert!(page.body.contains("too long"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_view_search_edit_delete_and_privacy() {
    let mut ann = signed_in("ann@example.com", "Ann").await;
    let page = ann.get("/").await;
    assert!(page.body.contains("No photos yet"), "{}", page.body);
    assert!(page.body.contains("Hello, Ann"));

    let page = upload(
        &mut ann,
        &jpeg_with_exif(1200, 800),
        "image/jpeg",
        "Beach, Summer",
        "Sunset <b>walk</b>",
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let detail_path = page.location.unwrap();
    let id = detail_path.trim_start_matches("/photos/").to_owned();

    // The album shows the thumbnail, the detail the EXIF values.
    let album = ann.get("/").await;
    assert!(
        album.body.contains(&format!("/photos/{id}")),
        "{}",
        album.body
    );
    assert!(album.body.contains("thumbnails"), "{}", album.body);
    let detail = ann.get(&detail_path).await;
    assert_eq!(detail.status, StatusCode::OK);
    for expected in [
        "Canon",
        "EOS 5D",
        "2024-07-01T18:30:00",
        "1200 × 800",
        "Seoul",
        "Korea",
    ] {
        assert!(
            detail.body.contains(expected),
            "{expected} missing:\n{}",
            detail.body
        );
    }
    // The place names are GeoNames data (CC BY 4.0), credited where shown.
    assert!(
        detail
            .body
            .contains(r#"<a href="https://www.geonames.org/">GeoNames</a>"#)
            && detail.body.contains(
                r#"<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>"#
            ),
        "{}",
        detail.body
    );
    // Escaped, never markup.
    assert!(detail.body.contains("Sunset &lt;b&gt;walk&lt;/b&gt;"));
    assert!(!detail.body.contains("<b>walk</b>"));

    // The objects are where the layout says, and private.
    let s3 = world().s3().await;
    let bucket = &world().settings.bucket;
    let objects = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(contract::prefix::PHOTOS)
        .send()
        .await
        .unwrap();
    // (Other tests share the bucket: only this photo's keys count.)
    let keys: Vec<&str> = objects
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| k.contains(&id))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(&format!("/{id}.jpg"))));
    assert!(
        keys.iter()
            .any(|k| k.ends_with(&format!("/thumbnails/{id}.jpg")))
    );
    let acl = s3
        .get_object_acl()
        .bucket(bucket)
        .key(keys[0])
        .send()
        .await
        .unwrap();
    assert!(!acl.grants().iter().any(|g| {
        g.grantee()
            .and_then(|g| g.uri())
            .is_some_and(|u| u.contains("AllUsers"))
    }));

    // Search: case-insensitive over tags, description and place.
    for query in ["beach", "SUMMER", "sunset", "seoul"] {
        let found = ann.get(&format!("/search?q={query}")).await;
        assert!(found.body.contains(&format!("/photos/{id}")), "{query}");
    }
    let none = ann.get("/search?q=mountain").await;
    assert!(none.body.contains("No photos found"));

    // The map has its marker, as JSON numbers in a data script.
    let map = ann.get("/map").await;
    assert!(map.body.contains("\"lat\":37.5"), "{}", map.body);
    // OpenStreetMap's attribution links to its copyright page.
    assert!(
        map.body
            .contains(r#"<a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>"#),
        "{}",
        map.body
    );
    assert!(
        ann.get(&format!("/photos/{id}/map"))
            .await
            .body
            .contains(&id)
    );

    // Another user sees none of it: 404s, empty album, empty search.
    let mut bob = signed_in("bob@example.com", "Bob").await;
    assert_eq!(bob.get(&detail_path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        bob.get(&format!("{detail_path}/edit")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bob.post(&format!("{detail_path}/delete"), &[], true)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(!bob.get("/").await.body.contains(&id));
    assert!(!bob.get("/search?q=beach").await.body.contains(&id));

    // Edit.
    let page = ann
        .post(
            &format!("{detail_path}/edit"),
            &[
                ("tags", "beach"),
                ("description", "Evening swim"),
                ("lat", "37.5665"),
                ("lng", "126.978"),
            ],
            true,
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(ann.get(&detail_path).await.body.contains("Evening swim"));
    let bad = ann
        .post(
            &format!("{detail_path}/edit"),
            &[("lat", "1;alert(1)"), ("lng", "0")],
            true,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Delete removes both objects and the item.
    let page = ann.post(&format!("{detail_path}/delete"), &[], true).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(ann.get(&detail_path).await.status, StatusCode::NOT_FOUND);
    let left = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(contract::prefix::PHOTOS)
        .send()
        .await
        .unwrap();
    let left: Vec<&str> = left
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| k.contains(&id))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_images_and_oversized_uploads_are_refused_and_leave_nothing() {
    let mut b = signed_in("carol@example.com", "Carol").await;
    // Refused before any URL is given.
    let page = b
        .post_json(
            "/photos/uploads",
            &json!({ "content_type": "text/html", "size": 10 }),
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("only JPEG, PNG and WebP"));
    let page = b
        .post_json(
            "/photos/uploads",
            &json!({ "content_type": "image/jpeg", "size": 3 * 1024 * 1024 }),
        )
        .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.body.contains("the limit is 2 MB"), "{}", page.body);

    // A file that claims to be a JPEG but is not: refused, and removed.
    let fake: &[u8] = b"<html><script>alert(1)</script></html>";
    let page = upload(&mut b, fake, "image/jpeg", "", "").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(
        page.body.contains("not a JPEG, PNG or WebP"),
        "{}",
        page.body
    );
    let album = b.get("/").await;
    assert!(album.body.contains("No photos yet"));
    let objects = world()
        .s3()
        .await
        .list_objects_v2()
        .bucket(&world().settings.bucket)
        .prefix(contract::prefix::PHOTOS)
        .send()
        .await
        .unwrap();
    let fake_len = i64::try_from(fake.len()).unwrap();
    let leftovers: Vec<_> = objects
        .contents()
        .iter()
        .filter(|o| o.size() == Some(fake_len))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the refused upload is still there: {leftovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_edit_and_sign_out() {
    let mut b = signed_in("dave@example.com", "Dave").await;
    let page = b.post("/profile", &[("name", "David")], true).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = b.get("/profile?done=saved").await;
    assert!(
        page.body.contains("David"),
        "the refreshed token carries the new name:\n{}",
        page.body
    );
    let page = b.post("/signout", &[], true).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(!b.cookies.contains_key("ca_id"));
    assert!(!b.cookies.contains_key("ca_refresh"));
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn forgot_and_reset_password() {
    let mut b = signed_in("erin@example.com", "Erin").await;
    let page = b.post("/signout", &[], true).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        b.get("/forgot")
            .await
            .body
            .contains("Forgot your password?")
    );
    let page = b
        .post("/forgot", &[("email", "erin@example.com")], true)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some("/reset?email=erin%40example.com")
    );
    let weak = b
        .post(
            "/reset",
            &[
                ("email", "erin@example.com"),
                ("code", "123456"),
                ("password", "short"),
            ],
            true,
        )
        .await;
    assert!(weak.body.contains("8 to 256 characters"), "{}", weak.body);
    // The emulator accepts any code (docs/emulator.md); AWS checks the emailed one.
    let page = b
        .post(
            "/reset",
            &[
                ("email", "erin@example.com"),
                ("code", "123456"),
                ("password", "N3wPassw0rd!"),
            ],
            true,
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/signin?done=reset"));
    let old = b
        .post(
            "/signin",
            &[("email", "erin@example.com"), ("password", "Passw0rd!x")],
            true,
        )
        .await;
    assert!(old.body.contains("wrong email or password"), "{}", old.body);
    let new = b
        .post(
            "/signin",
            &[("email", "erin@example.com"), ("password", "N3wPassw0rd!")],
            true,
        )
        .await;
    assert_eq!(new.status, StatusCode::SEE_OTHER, "{}", new.body);
}

/// Every page links only to versioned static files that the deploy uploaded,
/// each immutable in the bucket: the manifest the app was given names exactly
/// the files that are there.
#[tokio::test(flavor = "multi_thread")]
async fn pages_link_only_to_versioned_static_files_that_exist() {
    let w = world();
    let settings = &w.settings;
    assert!(!settings.assets.is_empty(), "the deploy gave no manifest");
    let mut anonymous = Browser::new(w.state().await);
    let mut b = signed_in("assets@example.com", "Assets").await;
    let mut pages = vec![anonymous.get("/signin").await];
    for path in ["/", "/map", "/photos/new", "/profile"] {
        pages.push(b.get(path).await);
    }
    let s3 = w.s3().await;
    let mut linked = std::collections::BTreeSet::new();
    for page in &pages {
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let needle = format!("\"{}", settings.static_url);
        let mut found = 0;
        for (i, _) in page.body.match_indices(&needle) {
            let rest = &page.body[i + needle.len()..];
            let published = &rest[..rest.find('"').unwrap()];
            assert!(
                settings.assets.owns(published),
                "`{published}` is not a versioned name of the manifest `{}`",
                settings.assets
            );
            linked.insert(published.to_owned());
            found += 1;
        }
        assert!(found >= 3, "{}", page.body);
    }
    // The map's library is among them, in its versioned folder.
    assert!(
        linked
            .iter()
            .any(|p| p.starts_with("vendor/leaflet.") && p.ends_with("/leaflet.js")),
        "{linked:?}"
    );
    for published in &linked {
        let object = s3
            .head_object()
            .bucket(&settings.bucket)
            .key(format!("{}{published}", contract::prefix::STATIC))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{published} is not in the bucket: {e:?}"));
        assert_eq!(
            object.cache_control(),
            Some(deployer::deploy::static_sync::IMMUTABLE),
            "{published}"
        );
    }
}
