//! A secret read at cold start (the HS256 token secret), from Secrets Manager or from an SSM
//! `SecureString` parameter, named by its ARN, so that it never sits in a function's
//! environment.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use wspush_ports::{RemoteDocument, RemoteError, RemoteProblem};

/// A Secrets Manager secret (its `SecretString`) or an SSM parameter (decrypted).
pub enum AwsSecret {
    /// `GetSecretValue` of this secret.
    SecretsManager {
        /// The client.
        client: aws_sdk_secretsmanager::Client,
        /// The secret's ARN.
        arn: String,
    },
    /// `GetParameter` (with decryption) of this parameter.
    Parameter {
        /// The client.
        client: aws_sdk_ssm::Client,
        /// The parameter's ARN.
        arn: String,
    },
}

impl AwsSecret {
    /// The secret an ARN names: `arn:<partition>:secretsmanager:...:secret:...` or
    /// `arn:<partition>:ssm:...:parameter/...`; `None` for any other ARN.
    pub fn from_arn(sdk: &SdkConfig, arn: &str) -> Option<Self> {
        let service = arn.split(':').nth(2)?;
        match service {
            "secretsmanager" if arn.contains(":secret:") => Some(Self::SecretsManager {
                client: aws_sdk_secretsmanager::Client::new(sdk),
                arn: arn.to_owned(),
            }),
            "ssm" if arn.contains(":parameter/") => Some(Self::Parameter {
                client: aws_sdk_ssm::Client::new(sdk),
                arn: arn.to_owned(),
            }),
            _ => None,
        }
    }

    fn arn(&self) -> &str {
        match self {
            Self::SecretsManager { arn, .. } | Self::Parameter { arn, .. } => arn,
        }
    }
}

/// The service's code and message, without the secret (which an error never holds).
fn service_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    arn: &str,
    error: aws_sdk_secretsmanager::error::SdkError<
        E,
        aws_sdk_secretsmanager::config::http::HttpResponse,
    >,
) -> RemoteError {
    let problem = match error.code() {
        Some(code) => RemoteProblem::Refused {
            code: code.to_owned(),
            message: error.message().unwrap_or_default().to_owned(),
        },
        None => RemoteProblem::Unreachable,
    };
    RemoteError::new(arn, problem).caused_by(error)
}

#[async_trait]
impl RemoteDocument for AwsSecret {
    async fn fetch(&self) -> Result<String, RemoteError> {
        match self {
            Self::SecretsManager { client, arn } => client
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|error| service_error(arn, error))?
                .secret_string
                .ok_or_else(|| {
                    RemoteError::new(
                        arn,
                        RemoteProblem::Missing(
                            "the secret has no SecretString (a binary secret is not read)",
                        ),
                    )
                }),
            Self::Parameter { client, arn } => client
                .get_parameter()
                .name(arn)
                .with_decryption(true)
                .send()
                .await
                .map_err(|error| service_error(arn, error))?
                .parameter
                .and_then(|parameter| parameter.value)
                .ok_or_else(|| {
                    RemoteError::new(arn, RemoteProblem::Missing("the parameter has no value"))
                }),
        }
    }

    fn location(&self) -> String {
        self.arn().to_owned()
    }
}
