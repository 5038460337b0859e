//! `<rpc-error>` as a value (RFC 6241 §4.3, Appendix A). Every layer has its
//! own `thiserror` enum; they are turned into [`RpcError`] at one boundary,
//! the NETCONF layer, which also renders them as XML.

use std::fmt;

/// error-type (RFC 6241 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Transport,
    Rpc,
    Protocol,
    Application,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Transport => "transport",
            ErrorType::Rpc => "rpc",
            ErrorType::Protocol => "protocol",
            ErrorType::Application => "application",
        }
    }
}

/// error-tag (RFC 6241 Appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorTag {
    InUse,
    InvalidValue,
    TooBig,
    MissingAttribute,
    BadAttribute,
    UnknownAttribute,
    MissingElement,
    BadElement,
    UnknownElement,
    UnknownNamespace,
    AccessDenied,
    LockDenied,
    ResourceDenied,
    RollbackFailed,
    DataExists,
    DataMissing,
    OperationNotSupported,
    OperationFailed,
    MalformedMessage,
}

impl ErrorTag {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorTag::InUse => "in-use",
            ErrorTag::InvalidValue => "invalid-value",
            ErrorTag::TooBig => "too-big",
            ErrorTag::MissingAttribute => "missing-attribute",
            ErrorTag::BadAttribute => "bad-attribute",
            ErrorTag::UnknownAttribute => "unknown-attribute",
            ErrorTag::MissingElement => "missing-element",
            ErrorTag::BadElement => "bad-element",
            ErrorTag::UnknownElement => "unknown-element",
            ErrorTag::UnknownNamespace => "unknown-namespace",
            ErrorTag::AccessDenied => "access-denied",
            ErrorTag::LockDenied => "lock-denied",
            ErrorTag::ResourceDenied => "resource-denied",
            ErrorTag::RollbackFailed => "rollback-failed",
            ErrorTag::DataExists => "data-exists",
            ErrorTag::DataMissing => "data-missing",
            ErrorTag::OperationNotSupported => "operation-not-supported",
            ErrorTag::OperationFailed => "operation-failed",
            ErrorTag::MalformedMessage => "malformed-message",
        }
    }
}

/// One `<rpc-error>`. `path` is a libyang data path
/// (`/app-hosting:app-hosting/app[name='web']/cpu`); the NETCONF layer turns
/// it into a namespace-qualified XPath for `<error-path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub error_type: ErrorType,
    pub tag: ErrorTag,
    pub app_tag: Option<String>,
    pub path: Option<String>,
    pub message: Option<String>,
    /// `<error-info>` children as (element name, text), e.g.
    /// `("bad-element", "cpu")`, `("session-id", "3")`. Elements of the base
    /// namespace (RFC 6241 Appendix A); `("ok-element", ..)` etc. also fit.
    pub info: Vec<(String, String)>,
}

impl RpcError {
    pub fn new(error_type: ErrorType, tag: ErrorTag) -> Self {
        RpcError {
            error_type,
            tag,
            app_tag: None,
            path: None,
            message: None,
            info: Vec::new(),
        }
    }
    /// An application-layer error, the common case for data problems.
    pub fn app(tag: ErrorTag, message: impl Into<String>) -> Self {
        Self::new(ErrorType::Application, tag).with_message(message)
    }
    /// A protocol-layer error (operation-level problems such as locks).
    pub fn protocol(tag: ErrorTag, message: impl Into<String>) -> Self {
        Self::new(ErrorType::Protocol, tag).with_message(message)
    }
    /// An rpc-layer error (malformed request).
    pub fn rpc(tag: ErrorTag, message: impl Into<String>) -> Self {
        Self::new(ErrorType::Rpc, tag).with_message(message)
    }
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
    pub fn with_app_tag(mut self, app_tag: impl Into<String>) -> Self {
        self.app_tag = Some(app_tag.into());
        self
    }
    pub fn with_info(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.info.push((name.into(), value.into()));
        self
    }

    /// Maps a libyang error (value or validation failure) to an
    /// `invalid-value` or `operation-failed` error carrying libyang's message,
    /// data path and app-tag. Callers that know better (e.g. a missing
    /// mandatory node) override the tag.
    pub fn from_yang(err: &yang2::Error) -> Self {
        let tag = match err.errcode {
            yang2::ffi::LY_ERR::LY_EVALID | yang2::ffi::LY_ERR::LY_EINVAL => ErrorTag::InvalidValue,
            yang2::ffi::LY_ERR::LY_EEXIST => ErrorTag::DataExists,
            yang2::ffi::LY_ERR::LY_ENOTFOUND => ErrorTag::DataMissing,
            _ => ErrorTag::OperationFailed,
        };
        let mut e = RpcError::new(ErrorType::Application, tag);
        e.message = err
            .msg
            .clone()
            .or_else(|| Some(format!("libyang error {:?}", err.errcode)));
        e.path = err.path.clone();
        e.app_tag = err.apptag.clone();
        // libyang's app-tags for missing data and uniqueness map to the
        // dedicated NETCONF tags (RFC 7950 §15).
        match e.app_tag.as_deref() {
            Some("data-not-unique") => e.tag = ErrorTag::OperationFailed,
            Some("too-many-elements") | Some("too-few-elements") => {
                e.tag = ErrorTag::OperationFailed
            }
            Some("must-violation") => e.tag = ErrorTag::OperationFailed,
            Some("instance-required") => e.tag = ErrorTag::DataMissing,
            Some("missing-choice") => e.tag = ErrorTag::DataMissing,
            _ => {}
        }
        if e.message
            .as_deref()
            .is_some_and(|m| m.starts_with("Mandatory node"))
        {
            e.tag = ErrorTag::DataMissing;
        }
        e
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.error_type.as_str(), self.tag.as_str())?;
        if let Some(p) = &self.path {
            write!(f, " at {p}")?;
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}
