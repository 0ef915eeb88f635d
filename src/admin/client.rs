//! The `httpdns admin ...` commands: a thin client of the admin API.

use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot reach the admin API at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{status}: {body}")]
    Refused { status: u16, body: String },
}

/// Where the admin API is and how to authenticate.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(base: &str, token: Option<String>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(ClientError::Refused { status, body });
        }
        Ok(serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }

    pub async fn drain(
        &self,
        zone: &str,
        weight: f64,
        reason: &str,
        over: Option<&str>,
        domains: &[String],
    ) -> Result<Value, ClientError> {
        let mut body = serde_json::json!({"weight": weight, "reason": reason});
        if let Some(over) = over {
            body["over"] = over.into();
        }
        if !domains.is_empty() {
            body["domains"] = domains.into();
        }
        let url = format!("{}/admin/zones/{zone}/drain", self.base);
        self.send(self.http.post(url).json(&body)).await
    }

    pub async fn undrain(
        &self,
        zone: &str,
        over: Option<&str>,
        reason: &str,
    ) -> Result<Value, ClientError> {
        let url = format!("{}/admin/zones/{zone}/drain", self.base);
        let mut query = vec![("reason", reason.to_string())];
        if let Some(over) = over {
            query.push(("over", over.to_string()));
        }
        self.send(self.http.delete(url).query(&query)).await
    }

    pub async fn zones(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/admin/zones", self.base)))
            .await
    }

    pub async fn explain(&self, host: &str, ip: &str) -> Result<Value, ClientError> {
        let url = format!("{}/admin/explain", self.base);
        self.send(self.http.get(url).query(&[("host", host), ("ip", ip)]))
            .await
    }

    pub async fn cluster(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/admin/cluster", self.base)))
            .await
    }

    pub async fn reload(&self) -> Result<Value, ClientError> {
        self.send(self.http.post(format!("{}/admin/reload", self.base)))
            .await
    }
}
