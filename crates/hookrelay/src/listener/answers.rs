//! The answers the connection layer writes itself, where no handler runs: to a connection past
//! the cap, and in place of hyper's bodiless answers to a head it could not parse. Rendered
//! once per server by [`ApiError`], so they are the same problems the handlers answer.

use bytes::Bytes;

use crate::api::problem::ApiError;

#[derive(Debug, Clone)]
pub struct Answers {
    malformed: Bytes,
    too_large: Bytes,
    uri_too_long: Bytes,
    pub full: Bytes,
    pub per_address: Bytes,
}

impl Answers {
    pub fn new(max_header_bytes: usize) -> Self {
        let render = |e: ApiError| Bytes::from(e.http1_closing());
        Answers {
            malformed: render(ApiError::BadRequest(
                "the request line or a header is malformed: a header appears with an invalid \
                 name, or a value holding NUL, CR, LF or another control character"
                    .into(),
            )),
            too_large: render(ApiError::HeadersTooLarge(max_header_bytes)),
            uri_too_long: render(ApiError::UriTooLong),
            full: render(ApiError::TooManyConnections("on this server")),
            per_address: render(ApiError::TooManyConnections("from this client address")),
        }
    }

    /// The problem to write instead of `written`, if `written` is one of hyper's automatic
    /// answers to a malformed head: a whole head, no body, status 400, 414 or 431.
    pub fn for_hyper_head(&self, written: &[u8]) -> Option<Bytes> {
        let status = written.strip_prefix(b"HTTP/1.1 ")?.get(..4)?;
        let answer = match status {
            b"400 " => &self.malformed,
            b"414 " => &self.uri_too_long,
            b"431 " => &self.too_large,
            _ => return None,
        };
        let bodiless = written.ends_with(b"\r\n\r\n")
            && written
                .windows(21)
                .any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-length: 0\r\n"));
        bodiless.then(|| answer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_hyper_s_bodiless_error_heads() {
        let answers = Answers::new(65_536);
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\
                          date: Wed, 02 Dec 2026 13:00:00 GMT\r\n\r\n";
        let replaced = answers.for_hyper_head(hyper_431).unwrap();
        let text = String::from_utf8_lossy(&replaced);
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(text.contains("content-type: application/problem+json"));
        assert!(text.contains("65536"), "{text}");
        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert!(answers.for_hyper_head(hyper_400).is_some());
        // Our own answers have bodies, and other statuses are never touched.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\n\
                     content-length: 120\r\n\r\n";
        assert!(answers.for_hyper_head(ours).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(answers.for_hyper_head(ok).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}";
        assert!(answers.for_hyper_head(with_body).is_none());
    }
}
