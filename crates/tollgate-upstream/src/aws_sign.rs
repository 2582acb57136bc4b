//! AWS Signature Version 4 for Bedrock: each request is signed over its method, URL, content
//! type, host and exact body bytes, with the deployment's credentials (static, or temporary
//! ones from `aws_credentials`), at send time.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::Request;
use secrecy::ExposeSecret;
use tollgate_core::config::{AwsCredentialSource, AwsCredentials};
use tollgate_core::error::GatewayError;

use crate::aws_credentials::TemporaryCredentials;
use crate::client::ClientPool;

/// The SigV4 service name of Bedrock's runtime API.
const BEDROCK: &str = "bedrock";

pub(crate) struct AwsSigner {
    credentials: SigningKeys,
    region: String,
    /// The SigV4 service name: `bedrock`, or `sts` for an `AssumeRole` call.
    service: &'static str,
}

enum SigningKeys {
    /// Keys known at load.
    Static(Identity),
    /// Keys fetched, cached and refreshed at run time.
    Temporary(Box<TemporaryCredentials>),
}

impl std::fmt::Debug for AwsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSigner")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsSigner {
    /// A signer for `region` with the keys `source` gives. Errors are reasons, for the caller
    /// to attach to the config field.
    pub(crate) fn new(
        source: &AwsCredentialSource,
        region: &str,
        pool: &ClientPool,
        connect_timeout: Option<Duration>,
    ) -> Result<AwsSigner, String> {
        AwsSigner::for_service(source, region, BEDROCK, pool, connect_timeout)
    }

    /// A signer for another AWS service (STS).
    pub(crate) fn for_service(
        source: &AwsCredentialSource,
        region: &str,
        service: &'static str,
        pool: &ClientPool,
        connect_timeout: Option<Duration>,
    ) -> Result<AwsSigner, String> {
        let credentials = match source {
            AwsCredentialSource::Static { keys, .. } => SigningKeys::Static(static_identity(keys)),
            temporary => {
                let temporary = TemporaryCredentials::new(temporary, pool, connect_timeout)?;
                SigningKeys::Temporary(Box::new(temporary))
            }
        };
        Ok(AwsSigner {
            credentials,
            region: region.to_owned(),
            service,
        })
    }

    /// Adds `x-amz-date`, `authorization` (and `x-amz-security-token`) to `request`.
    /// The keys are fetched first when they are temporary and due.
    pub(crate) async fn sign<B>(
        &self,
        request: &mut Request<B>,
        body: &[u8],
    ) -> Result<(), GatewayError> {
        let fetched;
        let identity = match &self.credentials {
            SigningKeys::Static(identity) => identity,
            SigningKeys::Temporary(temporary) => {
                fetched = temporary.identity().await?;
                &fetched
            }
        };
        let failed = |err: &dyn std::fmt::Display| {
            GatewayError::internal(format!(
                "Signing the {} request failed: {err}.",
                self.service
            ))
        };
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name(self.service)
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

fn static_identity(keys: &AwsCredentials) -> Identity {
    Credentials::new(
        keys.access_key_id.clone(),
        keys.secret_access_key.expose_secret().to_owned(),
        keys.session_token
            .as_ref()
            .map(|token| token.expose_secret().to_owned()),
        None,
        "tollgate-config",
    )
    .into()
}
