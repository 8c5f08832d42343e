//! The HTTP transport under the JSON-RPC client: reqwest, with no tracing span or error that
//! carries the URL.

use std::{task, time::Duration};

use alloy_json_rpc::{RequestPacket, ResponsePacket};
use alloy_transport::{TransportError, TransportErrorKind, TransportFut};

/// The HTTP transport: reqwest, with no tracing span or error that carries the URL.
#[derive(Clone)]
pub(crate) struct HttpTransport {
    pub(crate) client: reqwest::Client,
    pub(crate) url: url::Url,
}

impl tower::Service<RequestPacket> for HttpTransport {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _cx: &mut task::Context<'_>) -> task::Poll<Result<(), Self::Error>> {
        task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let body = serde_json::to_vec(&req).map_err(TransportError::ser_err)?;
            let resp = this
                .client
                .post(this.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| TransportErrorKind::custom(e.without_url()))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) if !status.is_success() => {
                    return Err(TransportErrorKind::http_error_with_retry_after(
                        status.as_u16(),
                        format!("<failed to read the body: {}>", e.without_url()),
                        retry_after,
                    ));
                }
                Err(e) => return Err(TransportErrorKind::custom(e.without_url())),
            };
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body);
                return Err(TransportErrorKind::http_error_with_retry_after(
                    status.as_u16(),
                    truncate(&text, 300),
                    retry_after,
                ));
            }
            serde_json::from_slice(&body)
                .map_err(|e| TransportError::deser_err(e, String::from_utf8_lossy(&body)))
        })
    }
}

/// `s` trimmed and cut to at most `n` bytes (on a char boundary), with `…` when cut.
pub(crate) fn truncate(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
