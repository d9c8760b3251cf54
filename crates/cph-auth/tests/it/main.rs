//! Integration tests of `cph-auth`. All of them build into this one binary: add a module here
//! rather than a new file under `tests/`.

mod secret;
mod sign;
mod token;
mod vectors;

use cph_auth::SignedRequest;

/// An owned request, so tests can edit one field and sign or verify again.
#[derive(Debug, Clone)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn new(method: &str, path_and_query: &str) -> OwnedRequest {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (path_and_query, None),
        };
        OwnedRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> OwnedRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: &[u8]) -> OwnedRequest {
        self.body = body.to_vec();
        self
    }

    /// Replaces the value of every header named `name` (case-insensitive).
    pub fn set_header(&mut self, name: &str, value: &str) {
        for (key, val) in &mut self.headers {
            if key.eq_ignore_ascii_case(name) {
                *val = value.to_owned();
            }
        }
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers
            .retain(|(key, _)| !key.eq_ignore_ascii_case(name));
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn with<R>(&self, f: impl FnOnce(&SignedRequest<'_>) -> R) -> R {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let req = SignedRequest {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &headers,
            body: &self.body,
        };
        f(&req)
    }
}
