//! Verification failures, canonicalisation rules and sign/verify round trips.

use chrono::TimeDelta;
use cph_auth::{
    AuthError, UNSIGNED_PAYLOAD, canonical_query, canonical_request, canonical_uri,
    format_sdk_date, parse_authorization, parse_sdk_date, sign, sign_request, string_to_sign,
    verify,
};

use crate::OwnedRequest;
use crate::vectors::{Vector, load, signing_time, skew};

const AK: &str = "HPUAEXAMPLEAK0000001";
const SK: &str = "ExampleSecretKey0123456789abcdefghijklmno";
const PROJECT: &str = "0123456789abcdef0123456789abcdef";

fn vector(name: &str) -> Vector {
    load().vectors.into_iter().find(|v| v.name == name).unwrap()
}

fn check(request: &OwnedRequest) -> Result<(), AuthError> {
    request.with(|req| verify(req, SK, signing_time(), skew()))
}

/// Adds the headers `sign_request` returns, as a client would.
fn signed(mut request: OwnedRequest) -> OwnedRequest {
    let added = request.with(|req| sign_request(req, AK, SK, signing_time()));
    for (name, value) in added {
        request = request.header(&name, &value);
    }
    request
}

fn sdk_like(method: &str, path_and_query: &str) -> OwnedRequest {
    OwnedRequest::new(method, path_and_query)
        .header("Content-Type", "application/json")
        .header("Host", "127.0.0.1:8080")
        .header("User-Agent", "huaweicloud-usdk-python/3.0; sdk-study")
        .header("X-Project-Id", PROJECT)
}

// ---- Authorization header parsing ----

#[test]
fn parse_authorization_reads_the_three_fields() {
    let parsed = parse_authorization(
        "SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK0000001, SignedHeaders=content-type;host;x-sdk-date, \
         Signature=A71F3ED6346A91B71DBF682669C5C5B3FDB532BD2EC0ACBF5373A53D985CBC5E",
    )
    .unwrap();
    assert_eq!(parsed.access_key, AK);
    assert_eq!(
        parsed.signed_headers,
        ["content-type", "host", "x-sdk-date"]
    );
    assert_eq!(
        parsed.signature,
        "a71f3ed6346a91b71dbf682669c5c5b3fdb532bd2ec0acbf5373a53d985cbc5e"
    );
}

#[test]
fn parse_authorization_accepts_any_parameter_order_and_spacing() {
    let sig = "0".repeat(64);
    let parsed = parse_authorization(&format!(
        "SDK-HMAC-SHA256 Signature={sig},SignedHeaders=host ,  Access=AK"
    ))
    .unwrap();
    assert_eq!(parsed.access_key, "AK");
    assert_eq!(parsed.signed_headers, ["host"]);
}

#[test]
fn parse_authorization_classifies_errors() {
    let sig = "0".repeat(64);
    let cases = [
        ("", AuthError::MissingAuthorization),
        ("   ", AuthError::MissingAuthorization),
        ("Bearer abc", AuthError::UnsupportedAlgorithm),
        (
            "SDK-HMAC-SM3 Access=AK, SignedHeaders=host, Signature=00",
            AuthError::UnsupportedAlgorithm,
        ),
        (
            "V11-HMAC-SHA256 Credential=AK/20231024/r/s, SignedHeaders=host, Signature=00",
            AuthError::UnsupportedAlgorithm,
        ),
        ("SDK-HMAC-SHA256", AuthError::MalformedAuthorization),
        (
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host",
            AuthError::MalformedAuthorization,
        ),
        (
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=abc",
            AuthError::MalformedAuthorization,
        ),
        (
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=zz",
            AuthError::MalformedAuthorization,
        ),
        (
            "SDK-HMAC-SHA256 Access=, SignedHeaders=host, Signature=SIG",
            AuthError::MalformedAuthorization,
        ),
        (
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=, Signature=SIG",
            AuthError::MalformedAuthorization,
        ),
        (
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;;x-sdk-date, Signature=SIG",
            AuthError::MalformedAuthorization,
        ),
        (
            "SDK-HMAC-SHA256 Access=AK, Access=AK, SignedHeaders=host, Signature=SIG",
            AuthError::MalformedAuthorization,
        ),
        (
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=SIG, Extra=1",
            AuthError::MalformedAuthorization,
        ),
    ];
    for (value, expected) in cases {
        let value = value.replace("SIG", &sig);
        assert_eq!(parse_authorization(&value), Err(expected), "{value:?}");
    }
}

// ---- X-Sdk-Date ----

#[test]
fn sdk_date_round_trips_and_is_strict() {
    assert_eq!(format_sdk_date(signing_time()), "20231024T120000Z");
    assert_eq!(parse_sdk_date("20231024T120000Z"), Ok(signing_time()));
    for bad in [
        "",
        "2023-10-24T12:00:00Z",
        "20231024T120000",
        "20231024 120000Z",
        "20231324T120000Z",
        "20231024T250000Z",
        "+2023102T120000Z",
        "20231024T120000z",
        "Tue, 24 Oct 2023 12:00:00 GMT",
    ] {
        assert_eq!(
            parse_sdk_date(bad),
            Err(AuthError::MalformedDate),
            "{bad:?}"
        );
    }
}

#[test]
fn date_outside_the_skew_is_clock_skew() {
    let v = vector("client-list_cloud_phones");
    let verify_at = |offset: TimeDelta| {
        v.request
            .with(|req| verify(req, SK, signing_time() + offset, skew()))
    };
    assert_eq!(verify_at(TimeDelta::minutes(15)), Ok(()));
    assert_eq!(verify_at(TimeDelta::minutes(-15)), Ok(()));
    assert_eq!(
        verify_at(TimeDelta::minutes(15) + TimeDelta::seconds(1)),
        Err(AuthError::ClockSkew)
    );
    assert_eq!(
        verify_at(TimeDelta::minutes(-16)),
        Err(AuthError::ClockSkew)
    );
    assert_eq!(verify_at(TimeDelta::days(365)), Err(AuthError::ClockSkew));
}

#[test]
fn missing_or_malformed_date_is_reported() {
    let v = vector("min-get");
    let mut request = v.request.clone();
    request.remove_header("X-Sdk-Date");
    assert_eq!(check(&request), Err(AuthError::MissingDate));

    let mut request = v.request.clone();
    request.set_header("X-Sdk-Date", "2023-10-24T12:00:00Z");
    assert_eq!(check(&request), Err(AuthError::MalformedDate));

    let request = v.request.clone().header("x-sdk-date", "20231024T120000Z");
    assert_eq!(check(&request), Err(AuthError::MalformedDate));
}

// ---- Authorization problems during verify ----

#[test]
fn missing_authorization_is_reported() {
    let mut request = vector("min-get").request;
    request.remove_header("Authorization");
    assert_eq!(check(&request), Err(AuthError::MissingAuthorization));
}

#[test]
fn duplicate_authorization_is_malformed() {
    let v = vector("min-get");
    let value = v.request.get_header("Authorization").unwrap().to_owned();
    let request = v.request.clone().header("authorization", &value);
    assert_eq!(check(&request), Err(AuthError::MalformedAuthorization));
}

// ---- Tampering ----

#[test]
fn a_flipped_body_byte_is_a_mismatch() {
    let mut request = vector("client-restart_cloud_phone").request;
    let last = request.body.len() - 3;
    request.body[last] ^= 0x01;
    assert_eq!(check(&request), Err(AuthError::SignatureMismatch));
}

#[test]
fn a_dropped_body_is_a_mismatch() {
    let mut request = vector("min-post").request;
    request.body.clear();
    assert_eq!(check(&request), Err(AuthError::SignatureMismatch));
}

#[test]
fn a_changed_query_is_a_mismatch() {
    let v = vector("client-list_scheduled_events");
    for query in [
        "limit=6&state=executing&state=inquiring",
        "limit=5&state=executing",
        "limit=5&state=executing&state=inquiring&state=inquiring",
        "limit=5&state=executing&state=inquirinh",
    ] {
        let mut request = v.request.clone();
        request.query = Some(query.to_owned());
        assert_eq!(
            check(&request),
            Err(AuthError::SignatureMismatch),
            "{query}"
        );
    }
}

#[test]
fn a_reordered_or_reencoded_query_still_verifies() {
    let v = vector("client-list_cloud_phones");
    for query in [
        "phone_name=my%20phone%2F%E6%89%8B%E6%9C%BA~x&offset=0&limit=10",
        "limit=10&offset=0&phone_name=my%20phone/%e6%89%8b%e6%9c%ba%7Ex",
        "limit=10&offset=0&phone_name=my%20phone%2F手机~x",
    ] {
        let mut request = v.request.clone();
        request.query = Some(query.to_owned());
        assert_eq!(check(&request), Ok(()), "{query}");
    }
}

#[test]
fn a_changed_path_is_a_mismatch() {
    let v = vector("client-show_cloud_phone_detail");
    let mut request = v.request.clone();
    request.path = request.path.replace("odd%20id", "odd%20ie");
    assert_eq!(check(&request), Err(AuthError::SignatureMismatch));

    // The same decoded path, encoded differently, is the same request.
    let mut request = v.request.clone();
    request.path = request.path.replace("with~slash", "with%7Eslash");
    assert_eq!(check(&request), Ok(()));
}

#[test]
fn a_changed_method_is_a_mismatch() {
    let mut request = vector("min-get").request;
    request.method = "DELETE".to_owned();
    assert_eq!(check(&request), Err(AuthError::SignatureMismatch));
    request.method = "get".to_owned();
    assert_eq!(check(&request), Ok(()));
}

#[test]
fn a_changed_signed_header_is_a_mismatch() {
    let v = vector("client-list_cloud_phones");
    for (name, value) in [
        ("X-Project-Id", "0123456789abcdef0123456789abcdee"),
        ("Host", "127.0.0.1:8081"),
        ("User-Agent", "huaweicloud-usdk-python/3.0; sdk-studz"),
        ("Content-Type", "application/json; charset=utf-8"),
    ] {
        let mut request = v.request.clone();
        request.set_header(name, value);
        assert_eq!(check(&request), Err(AuthError::SignatureMismatch), "{name}");
    }
}

#[test]
fn header_values_are_trimmed() {
    let mut request = vector("client-list_cloud_phones").request;
    request.set_header("User-Agent", "  huaweicloud-usdk-python/3.0; sdk-study\t");
    assert_eq!(check(&request), Ok(()));
}

#[test]
fn a_changed_date_is_a_mismatch() {
    let mut request = vector("min-get").request;
    request.set_header("X-Sdk-Date", "20231024T120001Z");
    assert_eq!(check(&request), Err(AuthError::SignatureMismatch));
}

#[test]
fn a_flipped_signature_digit_is_a_mismatch() {
    let v = vector("min-get");
    let authorization = v.request.get_header("Authorization").unwrap();
    for idx in [0, 31, 63] {
        let (head, sig) = authorization.split_once("Signature=").unwrap();
        let mut sig = sig.as_bytes().to_vec();
        sig[idx] = if sig[idx] == b'0' { b'1' } else { b'0' };
        let tampered = format!("{head}Signature={}", String::from_utf8(sig).unwrap());
        let mut request = v.request.clone();
        request.set_header("Authorization", &tampered);
        assert_eq!(check(&request), Err(AuthError::SignatureMismatch), "{idx}");
    }
}

#[test]
fn upper_case_signature_hex_is_accepted() {
    let v = vector("min-get");
    let authorization = v.request.get_header("Authorization").unwrap();
    let (head, sig) = authorization.split_once("Signature=").unwrap();
    let mut request = v.request.clone();
    request.set_header(
        "Authorization",
        &format!("{head}Signature={}", sig.to_ascii_uppercase()),
    );
    assert_eq!(check(&request), Ok(()));
}

#[test]
fn the_access_key_is_not_signed() {
    let v = vector("min-get");
    let authorization = v.request.get_header("Authorization").unwrap();
    let mut request = v.request.clone();
    request.set_header(
        "Authorization",
        &authorization.replace(AK, "ANOTHERACCESSKEY0001"),
    );
    assert_eq!(check(&request), Ok(()));
}

#[test]
fn a_shortened_signed_headers_list_is_a_mismatch() {
    let v = vector("client-list_cloud_phones");
    let authorization = v.request.get_header("Authorization").unwrap();
    let mut request = v.request.clone();
    request.set_header("Authorization", &authorization.replace("user-agent;", ""));
    assert_eq!(check(&request), Err(AuthError::SignatureMismatch));
}

// ---- Signed headers presence ----

#[test]
fn a_missing_signed_header_is_named() {
    let v = vector("client-list_cloud_phones");
    let mut request = v.request.clone();
    request.remove_header("User-Agent");
    assert_eq!(
        check(&request),
        Err(AuthError::MissingSignedHeader("user-agent".to_owned()))
    );

    let mut request = v.request.clone();
    request.remove_header("Host");
    let auth = parse_authorization(request.get_header("Authorization").unwrap()).unwrap();
    assert_eq!(
        request.with(|req| canonical_request(req, &auth.signed_headers)),
        Err(AuthError::MissingSignedHeader("host".to_owned()))
    );
}

#[test]
fn a_repeated_signed_header_is_rejected() {
    let request = vector("client-list_cloud_phones")
        .request
        .header("x-project-id", "ffffffffffffffffffffffffffffffff");
    assert_eq!(
        check(&request),
        Err(AuthError::DuplicateHeader("x-project-id".to_owned()))
    );
}

#[test]
fn the_received_signed_headers_list_is_followed() {
    // A client that signs a custom header and leaves out Content-Type.
    let request = OwnedRequest::new("GET", "/v1/p/cloud-phone/servers")
        .header("Host", "cph.example")
        .header("Content-Type", "application/json")
        .header("X-Auth-Token", "tok");
    let date = format_sdk_date(signing_time());
    let request = request.header("X-Sdk-Date", &date);
    let signed_headers: Vec<String> = ["x-sdk-date", "x-auth-token", "host"]
        .map(str::to_owned)
        .to_vec();
    let canonical = request
        .with(|req| canonical_request(req, &signed_headers))
        .unwrap();
    assert_eq!(
        canonical,
        format!(
            "GET\n/v1/p/cloud-phone/servers/\n\nx-sdk-date:{date}\nx-auth-token:tok\nhost:cph.example\n\n\
             x-sdk-date;x-auth-token;host\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
    );
    let signature = sign(SK, &string_to_sign(&canonical, &date));
    let mut request = request.header(
        "Authorization",
        &format!(
            "SDK-HMAC-SHA256 Access={AK}, SignedHeaders=x-sdk-date;x-auth-token;host, Signature={signature}"
        ),
    );
    assert_eq!(check(&request), Ok(()));
    // Content-Type is not signed, so changing it does not matter; the token is, so it does.
    request.set_header("Content-Type", "text/plain");
    assert_eq!(check(&request), Ok(()));
    request.set_header("X-Auth-Token", "tol");
    assert_eq!(check(&request), Err(AuthError::SignatureMismatch));
}

// ---- Canonicalisation rules ----

#[test]
fn canonical_uri_decodes_splits_and_reencodes() {
    let cases = [
        ("/", "/"),
        ("", "/"),
        ("/v1/servers", "/v1/servers/"),
        ("/v1/servers/", "/v1/servers/"),
        (
            "/v1/p/phones/odd%20id%2Fwith~slash",
            "/v1/p/phones/odd%20id/with~slash/",
        ),
        ("/v1/a%2fb", "/v1/a/b/"),
        ("/v1/%E6%89%8B%E6%9C%BA", "/v1/%E6%89%8B%E6%9C%BA/"),
        ("/v1/%e6%89%8b%e6%9c%ba", "/v1/%E6%89%8B%E6%9C%BA/"),
        ("/v1/手机", "/v1/%E6%89%8B%E6%9C%BA/"),
        ("/v1/caf%C3%A9", "/v1/caf%C3%A9/"),
        ("/v1/a+b", "/v1/a%2Bb/"),
        ("/v1/a%2Bb", "/v1/a%2Bb/"),
        ("/v1/%7Bproject_id%7D/x", "/v1/%7Bproject_id%7D/x/"),
        ("/v1/A-Z_a.z~0", "/v1/A-Z_a.z~0/"),
        ("/v1/%7e%2D%5f%2e", "/v1/~-_./"),
        ("/v1/a%25b", "/v1/a%25b/"),
        ("/v1/100%", "/v1/100%25/"),
        ("/v1/%zz", "/v1/%25zz/"),
        ("/v1/%FF", "/v1/%EF%BF%BD/"),
        ("/v1//x", "/v1//x/"),
        ("/v1/a;b=c:d@e", "/v1/a%3Bb%3Dc%3Ad%40e/"),
    ];
    for (path, expected) in cases {
        assert_eq!(canonical_uri(path), expected, "{path:?}");
    }
}

#[test]
fn canonical_query_sorts_decoded_pairs_and_reencodes() {
    let cases = [
        ("", ""),
        ("limit=10&offset=0", "limit=10&offset=0"),
        ("offset=0&limit=10", "limit=10&offset=0"),
        // Repeated names stay repeated, sorted by value.
        (
            "state=inquiring&limit=5&state=executing",
            "limit=5&state=executing&state=inquiring",
        ),
        ("a=2&a=10&a=1", "a=1&a=10&a=2"),
        // Spaces: `%20` stays, `+` is a literal plus.
        ("q=a%20b", "q=a%20b"),
        ("q=a+b", "q=a%2Bb"),
        ("q=a%2Bb", "q=a%2Bb"),
        // Unicode, encoded or raw, and lower-case hex.
        ("n=%E6%89%8B%E6%9C%BA", "n=%E6%89%8B%E6%9C%BA"),
        ("n=%e6%89%8b%e6%9c%ba", "n=%E6%89%8B%E6%9C%BA"),
        ("n=手机", "n=%E6%89%8B%E6%9C%BA"),
        (
            "n=my%20phone%2F%E6%89%8B%E6%9C%BA~x",
            "n=my%20phone%2F%E6%89%8B%E6%9C%BA~x",
        ),
        ("n=my phone/手机%7Ex", "n=my%20phone%2F%E6%89%8B%E6%9C%BA~x"),
        // Sorted by decoded value: '~' (U+007E) sorts before 'é' (U+00E9), though `%` < `~`.
        ("v=%C3%A9&v=%7E", "v=~&v=%C3%A9"),
        // A name without `=` has an empty value; empty items are dropped.
        ("flag&a=1", "a=1&flag="),
        ("a=1&&b=2&", "a=1&b=2"),
        ("a=", "a="),
        // Only the first `=` splits.
        ("expr=a=b", "expr=a%3Db"),
        // Encoded names.
        ("%61=1", "a=1"),
        ("x%20y=1", "x%20y=1"),
        // Reserved characters are always encoded.
        ("ids=a,b,c", "ids=a%2Cb%2Cc"),
        ("t=1:2;3@4", "t=1%3A2%3B3%404"),
        ("u=A-Z_a.z~0", "u=A-Z_a.z~0"),
    ];
    for (query, expected) in cases {
        assert_eq!(canonical_query(query), expected, "{query:?}");
    }
}

// ---- Payload hash ----

#[test]
fn unsigned_payload_leaves_the_body_out() {
    let mut request = sdk_like("POST", "/v1/p/cloud-phone/phones/upload");
    request.set_header("Content-Type", "application/octet-stream");
    let request = request
        .header("X-Sdk-Content-Sha256", UNSIGNED_PAYLOAD)
        .body(b"\x00\x01binary");
    let mut request = signed(request);
    let auth = parse_authorization(request.get_header("Authorization").unwrap()).unwrap();
    assert!(
        auth.signed_headers
            .contains(&"x-sdk-content-sha256".to_owned())
    );
    let canonical = request
        .with(|req| canonical_request(req, &auth.signed_headers))
        .unwrap();
    assert!(canonical.ends_with("\nUNSIGNED-PAYLOAD"), "{canonical}");
    assert_eq!(check(&request), Ok(()));
    request.body = b"something else".to_vec();
    assert_eq!(check(&request), Ok(()));
}

#[test]
fn a_declared_payload_hash_must_match_the_body() {
    let body = br#"{"phone_ids": ["p1"]}"#;
    let declared = "f1da5b48d1e6777b80f9fbec4827b4381e5b91aecc0e6f453cefa0e59e759185";
    let request = sdk_like("POST", "/v1/p/cloud-phone/phones/batch-stop")
        .header("X-Sdk-Content-Sha256", declared)
        .body(body);
    let mut request = signed(request);
    assert_eq!(check(&request), Ok(()));
    request.body = br#"{"phone_ids": ["p2"]}"#.to_vec();
    assert_eq!(check(&request), Err(AuthError::SignatureMismatch));
}

#[test]
fn empty_body_with_declared_hash_accepts_both_sdk_readings() {
    let date = format_sdk_date(signing_time());
    let request = sdk_like("GET", "/v1/p/cloud-phone/servers")
        .header("X-Sdk-Content-Sha256", UNSIGNED_PAYLOAD)
        .header("X-Sdk-Date", &date);
    let auth = request.with(|req| sign_request(req, AK, SK, signing_time()));
    let signed_headers =
        "content-type;host;user-agent;x-project-id;x-sdk-content-sha256;x-sdk-date";
    assert!(auth[0].1.contains(signed_headers));

    // Python: an empty body always hashes as the empty string.
    let python = request.clone().header(&auth[0].0, &auth[0].1);
    assert_eq!(check(&python), Ok(()));

    // Go: the declared value is used whenever present.
    let names: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    let canonical = request.with(|req| canonical_request(req, &names)).unwrap();
    let (head, _) = canonical.rsplit_once('\n').unwrap();
    let go_canonical = format!("{head}\n{UNSIGNED_PAYLOAD}");
    let signature = sign(SK, &string_to_sign(&go_canonical, &date));
    let go = request.clone().header(
        "Authorization",
        &format!(
            "SDK-HMAC-SHA256 Access={AK}, SignedHeaders={signed_headers}, Signature={signature}"
        ),
    );
    assert_eq!(check(&go), Ok(()));
}

// ---- Round trips ----

#[test]
fn sign_request_adds_date_and_authorization() {
    let request = sdk_like("GET", "/v1/p/cloud-phone/servers?limit=10&offset=0");
    let added = request.with(|req| sign_request(req, AK, SK, signing_time()));
    assert_eq!(added.len(), 2);
    assert_eq!(
        added[0],
        ("X-Sdk-Date".to_owned(), "20231024T120000Z".to_owned())
    );
    assert_eq!(added[1].0, "Authorization");
    let auth = parse_authorization(&added[1].1).unwrap();
    assert_eq!(auth.access_key, AK);
    assert_eq!(
        auth.signed_headers,
        [
            "content-type",
            "host",
            "user-agent",
            "x-project-id",
            "x-sdk-date"
        ]
    );
}

#[test]
fn sign_request_skips_underscore_and_authorization_headers() {
    let request = sdk_like("GET", "/v1/p/cloud-phone/servers")
        .header("X_Custom_Header", "unsigned")
        .header("Authorization", "stale")
        .header("X-Auth-Token", "tok");
    let added = request.with(|req| sign_request(req, AK, SK, signing_time()));
    let auth = parse_authorization(&added[1].1).unwrap();
    assert_eq!(
        auth.signed_headers,
        [
            "content-type",
            "host",
            "user-agent",
            "x-auth-token",
            "x-project-id",
            "x-sdk-date"
        ]
    );
}

#[test]
fn round_trip_with_awkward_paths_and_queries() {
    let cases = [
        ("GET", "/v1/p/cloud-phone/servers", &b""[..]),
        (
            "GET",
            "/v1/p/cloud-phone/phones?limit=10&offset=0&phone_name=my%20phone%2F%E6%89%8B%E6%9C%BA~x",
            b"",
        ),
        (
            "GET",
            "/v1/p/cloud-phone/scheduled-events?state=inquiring&state=executing&limit=5",
            b"",
        ),
        (
            "GET",
            "/v1/p/cloud-phone/phones?phone_name=a+b&x=a%20b&x=a%2Bb&flag",
            b"",
        ),
        (
            "GET",
            "/v1/p/cloud-phone/phones?name=手机&name=%C3%A9&name=~",
            b"",
        ),
        ("GET", "/v1/p/cloud-phone/phones/odd%20id%2Fwith~slash", b""),
        (
            "GET",
            "/v1/p/cloud-phone/phones/%E6%89%8B%E6%9C%BA/detail",
            b"",
        ),
        ("GET", "/v1/p/cloud-phone/phones/手机", b""),
        (
            "DELETE",
            "/v2/p/cloud-phone/servers",
            br#"{"server_ids": ["s1"]}"#,
        ),
        (
            "POST",
            "/v1/p/cloud-phone/phones/commands?x=1",
            "{\"command\": \"shell\", \"content\": \"echo 手机\"}".as_bytes(),
        ),
        (
            "PUT",
            "/v1/p/cloud-phone/phones/batch-update-property",
            b"\x00\xff\xfe not utf-8",
        ),
    ];
    for (method, path_and_query, body) in cases {
        let request = signed(sdk_like(method, path_and_query).body(body));
        assert_eq!(check(&request), Ok(()), "{method} {path_and_query}");

        let mut tampered = request.clone();
        tampered.body.push(b' ');
        assert_eq!(
            check(&tampered),
            Err(AuthError::SignatureMismatch),
            "{method} {path_and_query} body"
        );

        let mut tampered = request.clone();
        tampered.query = Some(format!(
            "{}&extra=1",
            request.query.as_deref().unwrap_or("")
        ));
        assert_eq!(
            check(&tampered),
            Err(AuthError::SignatureMismatch),
            "{method} {path_and_query} query"
        );
    }
}

#[test]
fn sign_request_keeps_a_caller_supplied_date() {
    let request =
        sdk_like("GET", "/v1/p/cloud-phone/servers").header("x-sdk-date", "20231024T115959Z");
    let later = signing_time() + TimeDelta::hours(3);
    let added = request.with(|req| sign_request(req, AK, SK, later));
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].0, "Authorization");
    let request = request.header(&added[0].0, &added[0].1);
    assert_eq!(check(&request), Ok(()));
}

#[test]
fn verify_uses_the_given_secret_key() {
    let request = signed(sdk_like("GET", "/v1/p/cloud-phone/servers"));
    assert_eq!(
        request.with(|req| verify(req, "another-secret", signing_time(), skew())),
        Err(AuthError::SignatureMismatch)
    );
    assert_eq!(
        request.with(|req| verify(req, "", signing_time(), skew())),
        Err(AuthError::SignatureMismatch)
    );
}
