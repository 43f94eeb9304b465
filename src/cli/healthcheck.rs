//! `cusp healthcheck`: GET a health URL and exit 0 on 2xx, 1 otherwise. The runtime image
//! has no shell or curl, so Docker's `HEALTHCHECK` (and a Kubernetes exec probe) call this.

use std::time::Duration;

use crate::config::DEFAULT_ADDR;

/// The path `cusp healthcheck` asks by default: up while the process is.
pub const DEFAULT_PATH: &str = "/healthz";
/// Shorter than Docker's default healthcheck timeout (30 s), so cusp reports, not Docker.
pub const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(clap::Args, Clone, Debug)]
pub struct HealthcheckArgs {
    /// The URL to GET (default: `/healthz` on the address `cusp serve` listens on, from
    /// `CUSP_ADDR` or `PORT`, with a wildcard host replaced by loopback).
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long, env = "CUSP_ADDR", hide = true)]
    pub addr: Option<String>,
    #[arg(long, env = "PORT", hide = true)]
    pub port: Option<u16>,
}

impl HealthcheckArgs {
    pub fn url(&self) -> String {
        match self.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => url.to_owned(),
            None => default_url(self.addr.as_deref(), self.port),
        }
    }
}

/// `http://<host:port>/healthz` for the address `serve` would listen on; `0.0.0.0` and
/// `[::]` (listen everywhere) become the matching loopback address.
pub fn default_url(addr: Option<&str>, port: Option<u16>) -> String {
    let addr = match (addr.map(str::trim).filter(|a| !a.is_empty()), port) {
        (Some(addr), _) => addr.to_owned(),
        (None, Some(port)) => format!("0.0.0.0:{port}"),
        (None, None) => DEFAULT_ADDR.to_owned(),
    };
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr.as_str(), "3000"));
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "[::]" => "[::1]",
        other => other,
    };
    format!("http://{host}:{port}{DEFAULT_PATH}")
}

/// GETs `url`; `Ok` with the status line on 2xx, `Err` with the reason otherwise.
pub async fn check(url: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("could not build an HTTP client: {e}"))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url} failed: {e}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(format!("GET {url}: {status}"))
    } else {
        Err(format!("GET {url}: {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_url_follows_the_listen_address() {
        assert_eq!(default_url(None, None), "http://127.0.0.1:3000/healthz");
        assert_eq!(
            default_url(None, Some(8080)),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(
            default_url(Some("[::]:3001"), Some(8080)),
            "http://[::1]:3001/healthz"
        );
        assert_eq!(
            default_url(Some("localhost:4000"), None),
            "http://localhost:4000/healthz"
        );
    }
}
