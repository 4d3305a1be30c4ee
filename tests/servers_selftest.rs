//! The test infrastructure proves itself: the fault-injecting reverse proxy
//! (`tests/support/fault_proxy.py`) does what each rule claims in front of the real oidc-provider,
//! and django-oauth-toolkit (`tests/support/dot_server.py`) rotates, detects reuse and honours its
//! reuse grace period exactly as documented there. The product's tests build on both; if one of
//! these fails, theirs prove nothing.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A refresh at `token_url` with the oidc-provider's basic-auth client, as the product sends it.
fn refresh_at(
    c: &reqwest::blocking::Client,
    token_url: &str,
    token: &str,
) -> reqwest::Result<reqwest::blocking::Response> {
    c.post(token_url)
        .basic_auth(BASIC_ID, Some(BASIC_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
}

/// The log entries for one path.
fn entries(proxy: &FaultProxy, path: &str) -> Vec<Value> {
    proxy.requests().into_iter().filter(|e| e["path"] == path).collect()
}

/// One HTTP/1.1 exchange on an existing connection: (status, headers lower-cased, body). Reads
/// exactly Content-Length bytes, so the connection can carry the next request.
fn exchange(r: &mut BufReader<TcpStream>, request: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    r.get_mut().write_all(request.as_bytes()).unwrap();
    let (status, headers) = read_head(r);
    let len: usize = header(&headers, "content-length").expect("content-length").parse().unwrap();
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status, headers, body)
}

fn read_head(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap_or_else(|| panic!("no status line: {line:?}")).parse().unwrap();
    let mut headers = vec![];
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn connect(url: &str) -> BufReader<TcpStream> {
    let addr = url.strip_prefix("http://").unwrap();
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    BufReader::new(s)
}

fn basic(id: &str, secret: &str) -> String {
    // RFC 7617 by hand (no base64 crate among the dev-dependencies).
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{id}:{secret}").into_bytes();
    let mut out = String::new();
    for c in raw.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn refresh_request(host: &str, token: &str) -> String {
    let body = format!("grant_type=refresh_token&refresh_token={token}");
    format!(
        "POST /token HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        basic(BASIC_ID, BASIC_SECRET),
        body.len()
    )
}

// ---------------------------------------------------------------------------------------------
// The fault proxy in front of oidc-provider

#[test]
fn proxy_forwards_everything_and_keeps_the_connection_alive_across_faults() {
    let oauth = OAuth::start();
    let proxy = FaultProxy::start(&oauth.url);
    let host = proxy.url.strip_prefix("http://").unwrap().to_owned();
    let r1 = oauth.mint(BASIC_ID);
    proxy.fault(json!({ "method": "GET", "path": "^/teapot$", "status": 418, "body": { "error": "teapot" } }));

    let mut conn = connect(&proxy.url);
    // 1. a GET with a query, forwarded
    let (status, _, body) =
        exchange(&mut conn, &format!("GET /.well-known/openid-configuration?x=1 HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["issuer"], oauth.url.as_str(), "the upstream's own discovery document");
    // 2. a POST with a body and an Authorization header, forwarded: the upstream rotates
    let (status, _, body) = exchange(&mut conn, &refresh_request(&host, &r1));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let tokens: Value = serde_json::from_slice(&body).unwrap();
    let r2 = tokens["refresh_token"].as_str().unwrap();
    assert_ne!(r2, r1);
    // 3. a faulted request answered by the proxy, on the same connection
    let (status, _, body) = exchange(&mut conn, &format!("GET /teapot HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    assert_eq!(status, 418);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), json!({ "error": "teapot" }));
    // 4. and the connection still carries a forwarded request after it
    let (status, _, _) =
        exchange(&mut conn, &format!("GET /.well-known/openid-configuration HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    assert_eq!(status, 200);
    // 5. a HEAD keeps the upstream's length and sends no body (the next answer would be garbled)
    conn.get_mut()
        .write_all(format!("HEAD /.well-known/openid-configuration HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    let (status, head) = read_head(&mut conn);
    assert_eq!(status, 200);
    assert!(header(&head, "content-length").unwrap().parse::<usize>().unwrap() > 100, "{head:?}");
    // 6. a chunked request body is decoded and forwarded with its length
    let form = format!("grant_type=refresh_token&refresh_token={r2}");
    let (a, b) = form.split_at(10);
    let chunked = format!(
        "POST /token HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        basic(BASIC_ID, BASIC_SECRET),
        a.len(),
        b.len()
    );
    let (status, _, body) = exchange(&mut conn, &chunked);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let r3 = serde_json::from_slice::<Value>(&body).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    // 7. Connection: close is honoured
    let (status, head, _) = exchange(
        &mut conn,
        &format!("GET /.well-known/openid-configuration HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!((status, header(&head, "connection")), (200, Some("close")));
    let mut rest = vec![];
    conn.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "closed after the answer");

    assert!(!oauth.active(&r1) && !oauth.active(r2), "the upstream rotated R1, then R2");
    assert!(oauth.active(&r3), "R3 is the live token");
    let log = proxy.requests();
    let forwarded: Vec<_> = log
        .iter()
        .map(|e| (e["method"].as_str().unwrap(), e["path"].as_str().unwrap(), e["forwarded"].as_bool().unwrap()))
        .collect();
    let discovery = "/.well-known/openid-configuration";
    assert_eq!(
        forwarded,
        [
            ("GET", discovery, true),
            ("POST", "/token", true),
            ("GET", "/teapot", false),
            ("GET", discovery, true),
            ("HEAD", discovery, true),
            ("POST", "/token", true),
            ("GET", discovery, true),
        ]
    );
    assert_eq!(log[5]["form_fields"], json!(["grant_type", "refresh_token"]));
    assert_eq!(log[5]["upstream_status"], 200);
    assert_eq!(log[0]["query_fields"], json!(["x"]));
    assert_eq!(log[1]["upstream_status"], 200);
    assert_eq!(log[1]["form_fields"], json!(["grant_type", "refresh_token"]));
    assert_eq!(log[2]["answer"], 418);
    assert!(log[2]["upstream_status"].is_null());
}

#[test]
fn after_drop_loses_the_answer_although_the_upstream_rotated() {
    let oauth = OAuth::start();
    let proxy = FaultProxy::start(&oauth.url);
    let r1 = oauth.mint(BASIC_ID);
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "when": "after", "drop": true }));

    let err = refresh_at(&client(Duration::from_secs(20)), &proxy.token_url(), &r1)
        .expect_err("the client must get no answer at all");
    assert!(!err.is_timeout(), "a dropped connection, not a time-out: {err:?}");

    // The upstream acted: R1 is consumed, and the R2 it issued reached nobody.
    assert!(!oauth.active(&r1), "oidc-provider rotated R1 although the client never heard back");
    let log = entries(&proxy, "/token");
    assert_eq!(log.len(), 1);
    let e = &log[0];
    assert_eq!(e["forwarded"], true);
    assert_eq!(e["upstream_status"], 200, "the upstream answered with the new tokens");
    assert_eq!(e["answer"], "drop");
    assert_eq!(e["fault"], json!({ "rule": 0, "when": "after", "actions": ["drop"] }));
    assert_eq!(e["form_fields"], json!(["grant_type", "refresh_token"]));
    // Names only: no token and no credential in the log.
    let text = serde_json::to_string(&proxy.requests()).unwrap();
    assert!(!text.contains(&r1) && !text.contains(BASIC_SECRET) && !text.contains(&basic(BASIC_ID, BASIC_SECRET)));

    // A client that retries with R1 trips oidc-provider's reuse detection: the lost response is
    // unrecoverable against a server without a grace period.
    let retry = oauth.refresh(&r1);
    assert_eq!(retry["error"], "invalid_grant", "{retry}");
    // The rule was used up: the next request passes.
    let r = oauth.mint(BASIC_ID);
    let ok = refresh_at(&client(Duration::from_secs(20)), &proxy.token_url(), &r).unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(proxy.faults()[0]["count"], 0);
}

#[test]
fn before_503_never_reaches_the_upstream() {
    let oauth = OAuth::start();
    // The inner proxy has no rules: its request log is the upstream's.
    let inner = FaultProxy::start(&oauth.url);
    let outer = FaultProxy::start(&inner.url);
    let r1 = oauth.mint(BASIC_ID);
    outer.fault(json!({
        "method": "POST", "path": "^/token$", "when": "before", "status": 503,
        "body": { "error": "temporarily_unavailable" }, "headers": { "Retry-After": "7" },
    }));

    let c = client(Duration::from_secs(20));
    let r = refresh_at(&c, &outer.token_url(), &r1).unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(r.json::<Value>().unwrap(), json!({ "error": "temporarily_unavailable" }));
    assert!(inner.requests().is_empty(), "the upstream saw nothing: {:?}", inner.requests());
    assert!(oauth.active(&r1), "R1 is untouched");
    let e = &entries(&outer, "/token")[0];
    assert_eq!(
        (e["forwarded"].clone(), e["upstream_status"].clone(), e["answer"].clone()),
        (json!(false), json!(null), json!(503))
    );

    // The same request again (the rule's count was 1) goes through both proxies and rotates.
    let r = refresh_at(&c, &outer.token_url(), &r1).unwrap();
    assert_eq!(r.status(), 200);
    let r2 = r.json::<Value>().unwrap()["refresh_token"].as_str().unwrap().to_owned();
    assert!(!oauth.active(&r1) && oauth.active(&r2));
    let seen = inner.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0]["method"].clone(), seen[0]["upstream_status"].clone()), (json!("POST"), json!(200)));
}

#[test]
fn truncate_sends_the_original_length_and_cuts_the_body() {
    let oauth = OAuth::start();
    let proxy = FaultProxy::start(&oauth.url);
    let host = proxy.url.strip_prefix("http://").unwrap().to_owned();
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "when": "after", "truncate": 10, "count": 2 }));

    // On the wire: the upstream's status and headers, its full Content-Length, 10 bytes, EOF.
    let r1 = oauth.mint(BASIC_ID);
    let mut conn = connect(&proxy.url);
    conn.get_mut().write_all(refresh_request(&host, &r1).as_bytes()).unwrap();
    let (status, headers) = read_head(&mut conn);
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").unwrap().starts_with("application/json"));
    let declared: usize = header(&headers, "content-length").unwrap().parse().unwrap();
    let mut rest = vec![];
    conn.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), 10, "10 bytes then the connection closed");
    assert!(declared > 100, "the declared length is the whole token response's: {declared}");
    assert_eq!(&rest, &b"{\"access_t"[..], "the start of the upstream's real answer");
    assert!(!oauth.active(&r1), "the upstream rotated");

    // A client sees the headers, then an error reading the body.
    let r1 = oauth.mint(BASIC_ID);
    let r = refresh_at(&client(Duration::from_secs(20)), &proxy.token_url(), &r1).unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().is_err(), "a truncated body is an error");
    assert!(!oauth.active(&r1));
    let log = entries(&proxy, "/token");
    assert!(log.iter().all(|e| e["answer"] == "truncated" && e["upstream_status"] == 200), "{log:?}");
}

#[test]
fn oversize_sends_two_mib_of_json() {
    let oauth = OAuth::start();
    let proxy = FaultProxy::start(&oauth.url);
    let r1 = oauth.mint(BASIC_ID);
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "oversize": true }));

    let r = refresh_at(&client(Duration::from_secs(20)), &proxy.token_url(), &r1).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], (2 << 20).to_string().as_str());
    let body = r.bytes().unwrap();
    assert_eq!(body.len(), 2 << 20);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["access_token"], "oversize");
    assert!(oauth.active(&r1), "when=before: not forwarded");
    assert_eq!(entries(&proxy, "/token")[0]["forwarded"], false);
}

#[test]
fn redirect_points_to_another_origin() {
    let oauth = OAuth::start();
    let proxy = FaultProxy::start(&oauth.url);
    let r1 = oauth.mint(BASIC_ID);
    let elsewhere = "http://127.0.0.2:9/steal-the-token";
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "redirect": true, "location": elsewhere }));

    let r = refresh_at(&client(Duration::from_secs(20)), &proxy.token_url(), &r1).unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], elsewhere);
    assert_eq!(r.headers()["content-length"], "0");
    assert!(oauth.active(&r1));
}

#[test]
fn delay_makes_the_client_time_out_before_or_after_the_upstream_acted() {
    let oauth = OAuth::start();
    let proxy = FaultProxy::start(&oauth.url);
    let c = client(Duration::from_secs(1));

    // after: forwarded at once, the answer held back: the client times out, the upstream rotated.
    let r1 = oauth.mint(BASIC_ID);
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "when": "after", "delay": 4 }));
    let start = Instant::now();
    let err = refresh_at(&c, &proxy.token_url(), &r1).expect_err("the client times out");
    assert!(err.is_timeout(), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "the client's timeout, not the proxy's delay, ended it");
    assert!(!oauth.active(&r1), "the upstream rotated before the client gave up");
    let e = &entries(&proxy, "/token")[0];
    assert_eq!((e["forwarded"].clone(), e["upstream_status"].clone()), (json!(true), json!(200)));

    // before, delay alone: a slow way in; the client gives up, the request still arrives late.
    let r1 = oauth.mint(BASIC_ID);
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "delay": 3 }));
    let err = refresh_at(&c, &proxy.token_url(), &r1).expect_err("the client times out");
    assert!(err.is_timeout(), "{err:?}");
    assert!(oauth.active(&r1), "not forwarded yet");
    let start = Instant::now();
    while oauth.active(&r1) {
        assert!(start.elapsed() < Duration::from_secs(15), "the delayed request never reached the upstream");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(entries(&proxy, "/token")[1]["upstream_status"], 200);

    // before + status: the client times out and the upstream never saw the request.
    let r1 = oauth.mint(BASIC_ID);
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "delay": 4, "status": 503 }));
    let err = refresh_at(&c, &proxy.token_url(), &r1).expect_err("the client times out");
    assert!(err.is_timeout(), "{err:?}");
    assert!(oauth.active(&r1), "not forwarded");
    assert_eq!(entries(&proxy, "/token")[2]["forwarded"], false);
}

#[test]
fn proxy_bugs_and_bad_rules_are_loud() {
    let oauth = OAuth::start();
    let proxy = FaultProxy::start(&oauth.url);
    let c = client(Duration::from_secs(20));
    for bad in [
        json!({ "path": "^/token$", "stauts": 500 }),
        json!({ "path": "(", "status": 500 }),
        json!({ "path": "^/token$" }),
        json!({ "path": "^/token$", "drop": true, "status": 500 }),
        json!({ "path": "^/token$", "truncate": 5 }),
        json!({ "path": "^/token$", "when": "later", "drop": true }),
    ] {
        let r = c.post(format!("{}/_proxy/faults", proxy.url)).json(&json!({ "rules": [bad] })).send().unwrap();
        assert_eq!(r.status(), 400, "refused: {bad}");
        assert!(r.json::<Value>().unwrap()["error"].as_str().unwrap().starts_with("rule 0"));
    }
    assert!(proxy.faults().is_empty());

    proxy.fault(json!({ "path": "^/token$", "raise": "boom" }));
    let r = refresh_at(&c, &proxy.token_url(), &oauth.mint(BASIC_ID)).unwrap();
    assert_eq!(r.status(), 599);
    assert!(r.text().unwrap().starts_with("FAULT PROXY BUG"));
    let errors = proxy.take_errors();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["traceback"].as_str().unwrap().contains("induced by a fault rule: boom"));
}

#[test]
#[should_panic(expected = "FAULT PROXY BUG: the fault proxy raised 1 exception(s)")]
fn a_proxy_bug_left_unread_fails_the_test() {
    let oauth = OAuth::start();
    let proxy = FaultProxy::start(&oauth.url);
    proxy.fault(json!({ "path": "^/token$", "raise": "boom" }));
    let r = client(Duration::from_secs(20)).post(proxy.token_url()).send().unwrap();
    assert_eq!(r.status(), 599);
    // dropping `proxy` panics
}

// ---------------------------------------------------------------------------------------------
// django-oauth-toolkit

#[test]
fn dot_rotates_refresh_tokens_and_checks_the_client() {
    let dot = Dot::start(0);
    let r1 = dot.mint();
    assert!(dot.live(&r1));
    let (status, t) = dot.refresh(&r1);
    assert_eq!(status, 200, "{t}");
    let r2 = t["refresh_token"].as_str().unwrap();
    assert_ne!(r2, r1);
    let s1 = dot.state(&r1);
    assert_eq!((s1["revoked"].clone(), s1["superseded"].clone()), (json!(true), json!(true)), "{s1}");
    assert!(dot.live(r2));
    assert_eq!(dot.state(r2)["family"], s1["family"], "one family");

    // RFC 7662 for the access token (django-oauth-toolkit introspects access tokens only).
    let c = client(Duration::from_secs(20));
    let intro: Value = c
        .post(format!("{}/introspect", dot.url))
        .basic_auth(DOT_ID, Some(DOT_SECRET))
        .form(&[("token", t["access_token"].as_str().unwrap())])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!((intro["active"].clone(), intro["client_id"].clone()), (json!(true), json!(DOT_ID)), "{intro}");

    let wrong = c
        .post(dot.token_url())
        .basic_auth(DOT_ID, Some("not-the-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", r2)])
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().unwrap()["error"], "invalid_client");
    assert!(dot.live(r2), "a refused client consumes nothing");
    let (status, t3) = dot.refresh(r2);
    assert_eq!(status, 200);
    assert_ne!(t3["refresh_token"], r2);
}

#[test]
fn dot_grace_replay_returns_the_same_new_token_until_that_one_is_rotated() {
    let dot = Dot::start(60);
    let r1 = dot.mint();
    let start = Instant::now();
    let (status, first) = dot.refresh(&r1);
    assert_eq!(status, 200);
    let (r2, a2) = (first["refresh_token"].as_str().unwrap(), first["access_token"].as_str().unwrap());

    // Within the grace period, replaying R1 gives the SAME R2 and access token: no R3 is made.
    for _ in 0..2 {
        let (status, again) = dot.refresh(&r1);
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["refresh_token"], r2, "the same new refresh token, not a fresh one");
        assert_eq!(again["access_token"], a2, "and the same access token");
    }
    assert!(dot.live(r2), "R2 stays valid");
    let s2 = dot.state(r2);
    assert_eq!((s2["family_size"].clone(), s2["family_live"].clone()), (json!(2), json!(1)), "no R3 was issued: {s2}");

    // Once R2 itself is rotated, R1 no longer counts as just superseded: its replay, still inside
    // the grace period, is reuse, and revokes the family (R3 too).
    let (status, third) = dot.refresh(r2);
    assert_eq!(status, 200);
    let r3 = third["refresh_token"].as_str().unwrap();
    assert_ne!(r3, r2);
    let (status, reuse) = dot.refresh(&r1);
    assert_eq!((status, reuse["error"].as_str()), (400, Some("invalid_grant")), "{reuse}");
    assert!(start.elapsed() < Duration::from_secs(60), "all of it inside the grace period");
    let s3 = dot.state(r3);
    assert_eq!((s3["revoked"].clone(), s3["family_live"].clone()), (json!(true), json!(0)), "{s3}");
    assert_eq!(dot.refresh(r3).1["error"], "invalid_grant");
}

#[test]
fn dot_replay_after_the_grace_period_is_invalid_grant_and_revokes_the_family() {
    let dot = Dot::start(2);
    let r1 = dot.mint();
    let (status, t) = dot.refresh(&r1);
    assert_eq!(status, 200);
    let r2 = t["refresh_token"].as_str().unwrap().to_owned();
    // R1 was revoked before that answer was sent: 3 s from now is past its 2 s window.
    std::thread::sleep(Duration::from_secs(3));
    assert!(dot.live(&r2));
    let (status, reuse) = dot.refresh(&r1);
    assert_eq!((status, reuse["error"].as_str()), (400, Some("invalid_grant")), "{reuse}");
    let s2 = dot.state(&r2);
    assert_eq!((s2["revoked"].clone(), s2["access_token_valid"].clone()), (json!(true), json!(false)), "{s2}");
    assert_eq!(dot.refresh(&r2).1["error"], "invalid_grant", "the whole family is dead");
}

#[test]
fn dot_without_grace_detects_reuse_at_once() {
    let dot = Dot::start(0);
    let r1 = dot.mint();
    let (_, t) = dot.refresh(&r1);
    let r2 = t["refresh_token"].as_str().unwrap();
    let (status, reuse) = dot.refresh(&r1);
    assert_eq!((status, reuse["error"].as_str()), (400, Some("invalid_grant")), "{reuse}");
    assert!(!dot.live(r2));
    assert_eq!(dot.refresh(r2).1["error"], "invalid_grant");
}

#[test]
fn dot_lost_response_then_a_retry_within_grace_recovers_the_issued_token() {
    // The case a `reuse_grace` feature is for: the answer carrying R2 is lost after the server
    // rotated; retrying with R1 inside the window hands back that very R2.
    let dot = Dot::start(60);
    let proxy = FaultProxy::start(&dot.url);
    let r1 = dot.mint();
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "when": "after", "drop": true }));
    let c = client(Duration::from_secs(20));
    let send = |token: &str| {
        c.post(proxy.token_url())
            .basic_auth(DOT_ID, Some(DOT_SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .send()
    };
    send(&r1).expect_err("the answer is lost");
    let s1 = dot.state(&r1);
    assert_eq!((s1["revoked"].clone(), s1["superseded"].clone()), (json!(true), json!(true)), "rotated: {s1}");

    let r = send(&r1).unwrap();
    assert_eq!(r.status(), 200);
    let r2 = r.json::<Value>().unwrap()["refresh_token"].as_str().unwrap().to_owned();
    assert!(dot.live(&r2));
    let s2 = dot.state(&r2);
    assert_eq!((s2["family_size"].clone(), s2["family_live"].clone()), (json!(2), json!(1)), "R1 and R2 only: {s2}");
    assert_eq!(entries(&proxy, "/token").iter().map(|e| e["upstream_status"].clone()).collect::<Vec<_>>(), [200, 200]);
}
