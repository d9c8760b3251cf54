//! The service layer's error: a documented API error, or something unexpected.

/// An error the API reports to its caller.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A documented error: HTTP status, error code (e.g. `CPS.0004`) and message.
    #[error("{code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Anything unexpected (storage failure, bug). Reported as a generic server error.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    /// The documented error `code` with its documented status and message.
    pub fn cps(code: &str) -> Self {
        match cph_catalog::error(code) {
            Some(def) => ServiceError::Api {
                status: def.status,
                code: code.to_string(),
                message: def.message.to_string(),
            },
            None => ServiceError::Api {
                status: 400,
                code: code.to_string(),
                message: code.to_string(),
            },
        }
    }

    /// The documented error `code` with its documented status and a more specific message.
    pub fn cps_msg(code: &str, message: impl Into<String>) -> Self {
        let status = cph_catalog::error(code).map(|d| d.status).unwrap_or(400);
        ServiceError::Api {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// An error outside the CPH table (API gateway and IAM style codes).
    pub fn raw(status: u16, code: &str, message: impl Into<String>) -> Self {
        ServiceError::Api {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// The code and message, for batch items that fail inside a 200 response.
    pub fn code_and_message(&self) -> (String, String) {
        match self {
            ServiceError::Api { code, message, .. } => (code.clone(), message.clone()),
            ServiceError::Internal(_) => (
                "CPS.0003".to_string(),
                "Service internal error.".to_string(),
            ),
        }
    }
}

impl From<cph_store::StoreError> for ServiceError {
    fn from(e: cph_store::StoreError) -> Self {
        ServiceError::Internal(anyhow::Error::new(e))
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
