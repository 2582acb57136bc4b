//! AWS Signature Version 4 for Bedrock: each request is signed over its method, URL, content
//! type, host and exact body bytes, with the deployment's credentials, at send time.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::Request;
use secrecy::ExposeSecret;
use tollgate_core::config::AwsCredentials;
use tollgate_core::error::GatewayError;

/// The SigV4 service name of Bedrock's runtime API.
const SERVICE: &str = "bedrock";

pub(crate) struct AwsSigner {
    identity: Identity,
    region: String,
}

impl std::fmt::Debug for AwsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSigner")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsSigner {
    pub(crate) fn new(credentials: &AwsCredentials, region: &str) -> AwsSigner {
        let credentials = Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.expose_secret().to_owned(),
            credentials
                .session_token
                .as_ref()
                .map(|token| token.expose_secret().to_owned()),
            None,
            "tollgate-config",
        );
        AwsSigner {
            identity: credentials.into(),
            region: region.to_owned(),
        }
    }

    /// Adds `x-amz-date`, `authorization` (and `x-amz-security-token`) to `request`.
    pub(crate) fn sign<B>(
        &self,
        request: &mut Request<B>,
        body: &[u8],
    ) -> Result<(), GatewayError> {
        let failed = |err: &dyn std::fmt::Display| {
            GatewayError::internal(format!("Signing the Bedrock request failed: {err}."))
        };
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| failed(&err))?
            .into();
        let uri = request.uri().to_string();
        let headers = request
            .headers()
            .iter()
            .filter(|(name, _)| *name == http::header::CONTENT_TYPE)
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri.as_str(),
            headers,
            SignableBody::Bytes(body),
        )
        .map_err(|err| failed(&err))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|err| failed(&err))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}
