//! RPC URLs without their credentials.
//!
//! Archive node URLs often carry secrets: `https://user:password@host/`, an API key as a path
//! segment (`https://eth-mainnet.example.com/v2/<key>`) or in the query (`?apikey=<key>`).
//! Only [`RpcUrl::display`] (scheme, host and port) may reach the manifest, logs or reports;
//! [`RpcUrl::scrub`] removes every secret part from a text that might quote the URL (an error
//! of the HTTP stack, a node's error message).

use url::Url;

/// A parsed RPC endpoint: the full URL for requests, a redacted form for everything else.
#[derive(Clone)]
pub struct RpcUrl {
    url: Url,
    display: String,
    secrets: Vec<String>,
}

impl std::fmt::Debug for RpcUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RpcUrl").field(&self.display).finish()
    }
}

impl std::fmt::Display for RpcUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// Secrets shorter than this are not scrubbed from free text (they would garble it); the
/// redacted display never contains any part of the userinfo, path or query, whatever its size.
const MIN_SCRUB_LEN: usize = 3;

impl RpcUrl {
    /// Parses an `http://` or `https://` URL. The error never quotes the URL.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::parse_schemes(raw, &["http", "https"])
    }

    /// Parses an `http(s)://` or a `ws(s)://` URL (a WebSocket endpoint, for `eth_subscribe`;
    /// see [`HeadSubscription`](crate::HeadSubscription)). The error never quotes the URL.
    pub fn parse_any(raw: &str) -> Result<Self, String> {
        Self::parse_schemes(raw, &["http", "https", "ws", "wss"])
    }

    fn parse_schemes(raw: &str, schemes: &[&str]) -> Result<Self, String> {
        let raw = raw.trim();
        let url = Url::parse(raw).map_err(|e| format!("--rpc-url is not a valid URL ({e})"))?;
        if !schemes.contains(&url.scheme()) {
            let want = schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(format!(
                "--rpc-url scheme {:?} is not supported here: use {want}",
                url.scheme()
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| "--rpc-url has no host".to_string())?;
        let mut display = format!("{}://{host}", url.scheme());
        if let Some(p) = url.port() {
            display.push_str(&format!(":{p}"));
        }
        let has_path = !matches!(url.path(), "" | "/");
        if has_path || url.query().is_some() || url.fragment().is_some() {
            display.push_str("/<redacted>");
        }

        let mut secrets = vec![raw.to_string(), url.as_str().to_string()];
        let mut add = |s: &str| {
            for v in [s.to_string(), percent_decode(s)] {
                if v.len() >= MIN_SCRUB_LEN && !secrets.contains(&v) {
                    secrets.push(v);
                }
            }
        };
        add(url.username());
        if let Some(p) = url.password() {
            add(p);
            add(&format!("{}:{p}", url.username()));
        }
        if has_path {
            add(url.path());
            for seg in url.path().split('/') {
                add(seg);
            }
        }
        if let Some(q) = url.query() {
            add(q);
            for pair in q.split('&') {
                add(pair);
                if let Some((_, v)) = pair.split_once('=') {
                    add(v);
                }
            }
        }
        if let Some(f) = url.fragment() {
            add(f);
        }
        // longest first, so a secret containing another is removed whole
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(Self {
            url,
            display,
            secrets,
        })
    }

    /// The full URL, credentials included: only for the HTTP client.
    pub(crate) const fn url(&self) -> &Url {
        &self.url
    }

    /// Whether this is a WebSocket endpoint (`ws://` or `wss://`).
    pub fn is_ws(&self) -> bool {
        matches!(self.url.scheme(), "ws" | "wss")
    }

    /// The HTTP endpoint at the same address: `ws://` becomes `http://`, `wss://` becomes
    /// `https://`, with the same credentials, host, port, path and query (a node that serves
    /// JSON-RPC over both on one port, as anvil, geth and reth can). An HTTP URL is itself.
    pub fn http_twin(&self) -> Self {
        let mut url = self.url.clone();
        let scheme = match url.scheme() {
            "ws" => "http",
            "wss" => "https",
            _ => return self.clone(),
        };
        // ws and wss are special schemes like http and https: the change cannot fail
        let _ = url.set_scheme(scheme);
        let display = self.display.replacen(self.url.scheme(), scheme, 1);
        let mut secrets = self.secrets.clone();
        secrets.push(url.as_str().to_string());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            url,
            display,
            secrets,
        }
    }

    /// Scheme, host and port; `/<redacted>` stands for a path or query.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Whether the URL carries anything that was redacted (userinfo, path, query).
    pub fn had_secrets(&self) -> bool {
        !self.url.username().is_empty()
            || self.url.password().is_some()
            || self.display.ends_with("/<redacted>")
    }

    /// Removes every secret part of the URL from `text`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
        out
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_url_is_kept() {
        let u = RpcUrl::parse("http://127.0.0.1:8545").unwrap();
        assert_eq!(u.display(), "http://127.0.0.1:8545");
        assert!(!u.had_secrets());
        let u = RpcUrl::parse("https://node.example.com/").unwrap();
        assert_eq!(u.display(), "https://node.example.com");
    }

    #[test]
    fn credentials_are_removed() {
        let raw =
            "https://alice:s3cr%40t@eth.example.com:8443/v2/KEY123abc?apikey=QUERYSECRET&x=1#frag";
        let u = RpcUrl::parse(raw).unwrap();
        assert_eq!(u.display(), "https://eth.example.com:8443/<redacted>");
        assert!(u.had_secrets());
        for s in ["alice", "s3cr", "KEY123abc", "QUERYSECRET", "frag"] {
            assert!(!u.display().contains(s), "{s}");
        }
        let msg = format!(
            "error sending request for url ({raw}): alice s3cr@t KEY123abc QUERYSECRET {}",
            u.url()
        );
        let clean = u.scrub(&msg);
        for s in ["alice", "s3cr", "KEY123abc", "QUERYSECRET", "apikey="] {
            assert!(!clean.contains(s), "{s} in {clean}");
        }
        assert!(clean.contains("error sending request"));
    }

    #[test]
    fn a_websocket_url_has_an_http_twin_and_keeps_its_secrets() {
        assert!(RpcUrl::parse("ws://127.0.0.1:8545").is_err());
        let u = RpcUrl::parse_any("wss://bob:pw123@eth.example.com/ws/v3/KEY123abc").unwrap();
        assert!(u.is_ws());
        assert_eq!(u.display(), "wss://eth.example.com/<redacted>");
        let h = u.http_twin();
        assert!(!h.is_ws());
        assert_eq!(h.display(), "https://eth.example.com/<redacted>");
        assert_eq!(
            h.url().as_str(),
            "https://bob:pw123@eth.example.com/ws/v3/KEY123abc"
        );
        let clean = h.scrub(&format!("{} {}", u.url(), h.url()));
        for s in ["bob", "pw123", "KEY123abc"] {
            assert!(!clean.contains(s), "{s} in {clean}");
        }
        let p = RpcUrl::parse_any("ws://127.0.0.1:8545").unwrap();
        assert_eq!(p.http_twin().display(), "http://127.0.0.1:8545");
        let e = RpcUrl::parse_any("ftp://user:pw@host").unwrap_err();
        assert!(!e.contains("pw") && e.contains("ws://"), "{e}");
    }

    #[test]
    fn bad_urls_are_not_quoted() {
        let e = RpcUrl::parse("ws://user:pw@host").unwrap_err();
        assert!(!e.contains("pw"));
        let e = RpcUrl::parse("not a url secretvalue").unwrap_err();
        assert!(!e.contains("secretvalue"));
    }
}
