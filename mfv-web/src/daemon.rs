//! The host daemon, as this server reaches it: one request per connection over its socket,
//! each with a deadline. Config mode and the API ask it for everything privileged.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use mfv_api::{Request as DaemonRequest, Response as DaemonResponse};

/// Why the host daemon gave no answer to use.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The daemon refused the request.
    #[error("{}", .0.message)]
    Refused(mfv_api::ApiError),
    /// The daemon could not be asked.
    #[error("the host daemon could not be asked: {0}")]
    Unreachable(String),
}

/// How this server reaches the host daemon, which does the privileged work.
pub trait DaemonLink: Send + Sync + 'static {
    /// Sends `request` and waits at most `within` for its answer.
    fn ask(
        &self,
        request: DaemonRequest,
        within: Duration,
    ) -> impl Future<Output = Result<DaemonResponse, DaemonError>> + Send;
}

/// The host daemon on its socket: one connection per request.
#[derive(Debug, Clone)]
pub struct DaemonSocket {
    /// The daemon's socket.
    pub socket: PathBuf,
}

impl DaemonLink for DaemonSocket {
    async fn ask(
        &self,
        request: DaemonRequest,
        within: Duration,
    ) -> Result<DaemonResponse, DaemonError> {
        let ask = async {
            let mut client = mfv_api::AsyncClient::connect_as(&self.socket, "mfv-web").await?;
            client.request(&request).await
        };
        match tokio::time::timeout(within, ask).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(mfv_api::ClientError::Api(error))) => Err(DaemonError::Refused(error)),
            Ok(Err(error)) => Err(DaemonError::Unreachable(mfv_linux::error_chain(&error))),
            Err(_) => Err(DaemonError::Unreachable(format!(
                "no answer within {} s",
                within.as_secs()
            ))),
        }
    }
}
