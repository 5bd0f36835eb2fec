//! Headless Chromium against the real binary, through the harness of
//! tests/common/browser.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, Viewport, fragment_params, query_params};
use common::*;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// An issuer no default could produce, so finding it proves the page is ours.
const ISSUER: &str = "https://browser-harness.example";

#[tokio::test]
async fn chromium_reads_oauthds_pages_fills_a_form_and_takes_screenshots() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--issuer", ISSUER]);
    let browser = Browser::start().await;

    let discovery = server.url("/.well-known/oauth-authorization-server");
    browser.open(&discovery).await;
    assert_eq!(browser.current_url().await, discovery);
    let text = browser.text().await;
    assert!(
        text.contains(&format!("\"issuer\":\"{ISSUER}\"")),
        "the discovery document as Chromium shows it:\n{text}"
    );

    // What the login and consent pages will ask of the harness: type into a
    // field, press a named button, and land on a URL whose query says what
    // was sent. Here the form is a page of the test's own, sent to oauthd.
    let form = format!(
        "<form method=get action=\"{discovery}\">\
         <input name=username value=\"typed over\">\
         <button name=decision value=deny>Deny</button>\
         <button name=decision value=allow>Allow</button></form>"
    );
    browser
        .open(&format!(
            "data:text/html,{}",
            utf8_percent_encode(&form, NON_ALPHANUMERIC)
        ))
        .await;
    browser.fill("username", "dora & co").await;
    browser.click("button[name=decision][value=allow]").await;
    let landed = browser.wait_for_url(&discovery).await;
    let sent = query_params(&landed);
    assert_eq!(sent["username"], "dora & co");
    assert_eq!(sent["decision"], "allow");
    assert!(browser.text().await.contains(ISSUER));

    // The implicit grant answers in the fragment, which the browser keeps.
    let with_fragment = format!("{discovery}#access_token=a%2Bb&state=xyz");
    browser.open(&with_fragment).await;
    let landed = browser.current_url().await;
    assert_eq!(landed, with_fragment);
    let fragment = fragment_params(&landed);
    assert_eq!(fragment["access_token"], "a+b");
    assert_eq!(fragment["state"], "xyz");

    let dir = tempfile::tempdir().unwrap();
    let desktop = dir.path().join("shots/discovery.png");
    browser.screenshot(&desktop).await;
    assert_eq!(png_size(&desktop), (1280, 800));

    let phone = Browser::start_with(Viewport::Phone).await;
    phone.open(&discovery).await;
    let small = dir.path().join("discovery-phone.png");
    phone.screenshot(&small).await;
    assert_eq!(png_size(&small), (780, 1688));
}

/// The width and height of a PNG file, which must be one: the signature, then
/// the IHDR chunk.
fn png_size(path: &std::path::Path) -> (u32, u32) {
    let png = std::fs::read(path).unwrap();
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "{} is not a PNG ({} bytes)",
        path.display(),
        png.len()
    );
    let number = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (number(16), number(20))
}
