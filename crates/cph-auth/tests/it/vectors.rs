//! The six signatures produced by the official Python SDK (`huaweicloudsdkcore` 3.1.219).

use chrono::{DateTime, TimeDelta, Utc};
use cph_auth::{
    AuthError, canonical_request, parse_authorization, sign, sign_request, string_to_sign, verify,
};
use serde_json::Value;

use crate::OwnedRequest;

const VECTORS: &str = include_str!("../data/sdk-sign-vectors.json");

pub struct Vector {
    pub name: String,
    pub request: OwnedRequest,
    pub canonical_request: String,
    pub string_to_sign: String,
}

pub struct VectorFile {
    pub ak: String,
    pub sk: String,
    pub date: String,
    pub vectors: Vec<Vector>,
}

pub fn load() -> VectorFile {
    let file: Value = serde_json::from_str(VECTORS).unwrap();
    let text = |v: &Value, key: &str| v[key].as_str().unwrap().to_owned();
    let vectors = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let url = text(v, "url");
            let after_scheme = url.split_once("://").unwrap().1;
            let path_and_query = &after_scheme[after_scheme.find('/').unwrap()..];
            let mut request = OwnedRequest::new(&text(v, "method"), path_and_query);
            for (name, value) in v["headers"].as_object().unwrap() {
                request = request.header(name, value.as_str().unwrap());
            }
            request = request.body(text(v, "body").as_bytes());
            Vector {
                name: text(v, "name"),
                request,
                canonical_request: text(v, "canonical_request"),
                string_to_sign: text(v, "string_to_sign"),
            }
        })
        .collect();
    VectorFile {
        ak: text(&file, "ak"),
        sk: text(&file, "sk"),
        date: text(&file, "x_sdk_date"),
        vectors,
    }
}

/// The instant of the vectors' `X-Sdk-Date`.
pub fn signing_time() -> DateTime<Utc> {
    "2023-10-24T12:00:00Z".parse().unwrap()
}

pub fn skew() -> TimeDelta {
    TimeDelta::minutes(15)
}

#[test]
fn there_are_six_vectors() {
    assert_eq!(load().vectors.len(), 6);
}

#[test]
fn canonical_request_string_to_sign_and_signature_match_the_sdk() {
    let file = load();
    for v in &file.vectors {
        let auth = parse_authorization(v.request.get_header("Authorization").unwrap()).unwrap();
        assert_eq!(auth.access_key, file.ak, "{}", v.name);
        let canonical = v
            .request
            .with(|req| canonical_request(req, &auth.signed_headers))
            .unwrap();
        assert_eq!(canonical, v.canonical_request, "{}", v.name);
        let sts = string_to_sign(&canonical, &file.date);
        assert_eq!(sts, v.string_to_sign, "{}", v.name);
        assert_eq!(sign(&file.sk, &sts), auth.signature, "{}", v.name);
    }
}

#[test]
fn every_vector_verifies() {
    let file = load();
    for v in &file.vectors {
        let result = v
            .request
            .with(|req| verify(req, &file.sk, signing_time(), skew()));
        assert_eq!(result, Ok(()), "{}", v.name);
    }
}

#[test]
fn every_vector_verifies_with_lower_case_header_names() {
    let file = load();
    for v in &file.vectors {
        let mut request = v.request.clone();
        for (name, _) in &mut request.headers {
            *name = name.to_ascii_lowercase();
        }
        let result = request.with(|req| verify(req, &file.sk, signing_time(), skew()));
        assert_eq!(result, Ok(()), "{}", v.name);
    }
}

#[test]
fn every_vector_verifies_with_unsigned_headers_added() {
    let file = load();
    for v in &file.vectors {
        let request = v
            .request
            .clone()
            .header("Accept", "*/*")
            .header("Accept-Encoding", "gzip, deflate")
            .header("Connection", "keep-alive")
            .header("Content-Length", &v.request.body.len().to_string());
        let result = request.with(|req| verify(req, &file.sk, signing_time(), skew()));
        assert_eq!(result, Ok(()), "{}", v.name);
    }
}

#[test]
fn every_vector_fails_with_another_secret_key() {
    let file = load();
    for v in &file.vectors {
        let result = v.request.with(|req| {
            verify(
                req,
                "ExampleSecretKey0123456789abcdefghijklmnp",
                signing_time(),
                skew(),
            )
        });
        assert_eq!(result, Err(AuthError::SignatureMismatch), "{}", v.name);
    }
}

#[test]
fn sign_request_reproduces_the_sdk_authorization() {
    let file = load();
    for v in &file.vectors {
        let mut request = v.request.clone();
        let expected = request.get_header("Authorization").unwrap().to_owned();
        request.remove_header("Authorization");
        let added = request.with(|req| sign_request(req, &file.ak, &file.sk, signing_time()));
        // The vectors carry their own X-Sdk-Date, so only Authorization is added.
        assert_eq!(
            added,
            vec![("Authorization".to_owned(), expected)],
            "{}",
            v.name
        );
    }
}
