//! Fetching images and documents that clients give as http(s) URLs, for providers that take
//! only inline bytes (Bedrock; Gemini for URLs it cannot fetch itself).
//!
//! A client-supplied URL must not turn the gateway into a way into its own network: the
//! resolver behind these connections refuses loopback, private, link-local (cloud metadata),
//! shared and other non-public addresses unless the config allows them, on every connection
//! (redirects included), so a DNS answer cannot be swapped between check and connect.
//! Bodies are read up to the configured size and no further.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tollgate_core::config::MediaSettings;
use tollgate_core::error::GatewayError;

use tollgate_core::worker;

const MAX_REDIRECTS: usize = 5;

type MediaClient = Client<HttpsConnector<HttpConnector<PublicResolver>>, Empty<Bytes>>;

/// A fetched file: its media type and bytes.
#[derive(Debug)]
pub struct Media {
    pub media_type: String,
    pub bytes: Bytes,
}

pub struct MediaFetcher {
    by_worker: Vec<MediaClient>,
    settings: MediaSettings,
}

impl std::fmt::Debug for MediaFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaFetcher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl MediaFetcher {
    pub(crate) fn new(
        settings: &MediaSettings,
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
        workers: usize,
    ) -> MediaFetcher {
        let resolver = PublicResolver {
            allow_private: settings.allow_private_networks,
        };
        let client = || {
            let mut tcp = HttpConnector::new_with_resolver(resolver.clone());
            tcp.enforce_http(false);
            tcp.set_nodelay(true);
            tcp.set_connect_timeout(Some(connect_timeout));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(tcp);
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .build(https)
        };
        MediaFetcher {
            by_worker: (0..workers.max(1)).map(|_| client()).collect(),
            settings: settings.clone(),
        }
    }

    /// Downloads `url` (http or https), following redirects.
    pub async fn fetch(&self, url: &str) -> Result<Media, GatewayError> {
        tokio::time::timeout(self.settings.timeout, self.fetch_following(url))
            .await
            .map_err(|_| {
                refused(
                    url,
                    format!(
                        "it did not download within {}s",
                        self.settings.timeout.as_secs_f64()
                    ),
                )
            })?
    }

    async fn fetch_following(&self, url: &str) -> Result<Media, GatewayError> {
        let client = &self.by_worker[worker::current() % self.by_worker.len()];
        let mut uri: Uri = url
            .parse()
            .map_err(|_| refused(url, "it is not a valid URL".into()))?;
        for _ in 0..=MAX_REDIRECTS {
            if !matches!(uri.scheme_str(), Some("http" | "https")) {
                return Err(refused(url, "only http and https URLs are fetched".into()));
            }
            // Addresses written as IPs skip the resolver: check them here.
            let host = uri.host().unwrap_or_default();
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = literal.parse::<IpAddr>()
                && !self.settings.allow_private_networks
                && !is_public(ip)
            {
                return Err(refused(
                    url,
                    format!(
                        "`{host}` is a private or reserved address (allow with tollgate_settings.media_allow_private_networks)"
                    ),
                ));
            }
            let mut request = Request::new(Empty::new());
            *request.method_mut() = Method::GET;
            *request.uri_mut() = uri.clone();
            request.headers_mut().insert(
                USER_AGENT,
                HeaderValue::from_static(concat!("tollgate/", env!("CARGO_PKG_VERSION"))),
            );
            let response = client
                .request(request)
                .await
                .map_err(|err| refused(url, crate::root_cause(&err)))?;
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .ok_or_else(|| refused(url, format!("HTTP {status} without a location")))?;
                uri = resolve_location(&uri, next).ok_or_else(|| {
                    refused(url, format!("it redirects to an invalid URL `{next}`"))
                })?;
                continue;
            }
            if status != StatusCode::OK {
                return Err(refused(url, format!("the server answered HTTP {status}")));
            }
            let media_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(|value| {
                    value
                        .split(';')
                        .next()
                        .unwrap_or(value)
                        .trim()
                        .to_ascii_lowercase()
                })
                .filter(|value| !value.is_empty() && value != "application/octet-stream")
                .or_else(|| guess_media_type(uri.path()).map(str::to_owned))
                .ok_or_else(|| refused(url, "its media type is unknown".into()))?;
            let mut body = response.into_body();
            let mut bytes = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|err| refused(url, err.to_string()))?;
                if let Some(data) = frame.data_ref() {
                    if bytes.len() + data.len() > self.settings.max_bytes {
                        return Err(refused(
                            url,
                            format!(
                                "it is larger than the {} MB limit (tollgate_settings.media_max_mb)",
                                self.settings.max_bytes / (1024 * 1024)
                            ),
                        ));
                    }
                    bytes.extend_from_slice(data);
                }
            }
            return Ok(Media {
                media_type,
                bytes: bytes.freeze(),
            });
        }
        Err(refused(url, format!("more than {MAX_REDIRECTS} redirects")))
    }
}

fn refused(url: &str, reason: String) -> GatewayError {
    let shown: String = url.chars().take(200).collect();
    GatewayError::invalid_param(
        "messages",
        format!("The media URL `{shown}` could not be fetched: {reason}."),
    )
    .with_code("invalid_media_url")
}

fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().ok();
    }
    let authority = base.authority()?;
    let scheme = base.scheme_str()?;
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        let directory = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{directory}/{location}")
    };
    format!("{scheme}://{authority}{path}").parse().ok()
}

fn guess_media_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        _ => return None,
    })
}

/// Resolves names with the system resolver, keeping only addresses a client may make the
/// gateway reach.
#[derive(Debug, Clone)]
struct PublicResolver {
    allow_private: bool,
}

impl tower_service::Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addresses
                .iter()
                .copied()
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "`{host}` resolves to a private or reserved address (allow with tollgate_settings.media_allow_private_networks)"
                    ),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

/// Whether an address is on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // Shared address space (carrier-grade NAT), 100.64.0.0/10.
                || (a == 100 && (64..128).contains(&b))
                // Benchmarking, 198.18.0.0/15; reserved, 240.0.0.0/4.
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local fc00::/7 and link-local fe80::/10.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // Documentation 2001:db8::/32.
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_not_public() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(address.parse().unwrap()), "{address}");
        }
        for address in ["8.8.8.8", "151.101.1.69", "2606:4700::1111"] {
            assert!(is_public(address.parse().unwrap()), "{address}");
        }
    }

    #[test]
    fn relative_redirects_resolve_against_the_request() {
        let base: Uri = "https://cdn.example.com/a/b/img.png".parse().unwrap();
        assert_eq!(
            resolve_location(&base, "/c.png").unwrap().to_string(),
            "https://cdn.example.com/c.png"
        );
        assert_eq!(
            resolve_location(&base, "d.png").unwrap().to_string(),
            "https://cdn.example.com/a/b/d.png"
        );
    }
}
