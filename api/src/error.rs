//! One error shape for every failure, `{"error": {"code": "…", "message": "…"}}`, and
//! the one table of error codes with the HTTP status each is answered with.
//!
//! The node answers an error only through `ErrorCode::http_status`; the client decides
//! its exit status from the same code. A code's status never depends on the route.

use serde::{Deserialize, Serialize};

/// Every error code the node answers. Stable: clients and scripts branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not JSON, or a multipart body cannot be read.
    MalformedBody,
    /// 422: JSON of the wrong shape: an unknown or missing field, a wrong type, an
    /// unknown reason.
    InvalidBody,
    /// 415: a JSON route without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 413: over the route's body limit.
    BodyTooLarge,
    /// 413: more licences in one batch than the node's `batch_licences_max`.
    BatchTooLarge,
    /// 400: `{id}` is not a licence id.
    BadLicenceId,
    /// 400: `licence_type` is not a valid type code.
    BadLicenceType,
    /// 400: a time is not RFC 3339.
    BadTime,
    /// 400: a multipart verify request without a part named `image`.
    MissingImage,
    /// 400: the query string is not what the route takes (an unknown parameter, a value
    /// out of range, a cursor this node did not hand out).
    BadQuery,
    /// 401: no bearer token, or an unknown one.
    Unauthorized,
    /// 403: a department request to an observer node.
    ObserverNode,
    /// 403: the token's scope does not cover the route.
    InsufficientScope,
    /// 403: the licence belongs to another department.
    OtherDepartment,
    /// 403: genesis does not grant this licence type to this department.
    TypeNotGranted,
    /// 403: a record about a licence of another department (a ledger rule).
    ForeignLicence,
    /// 404: the licence is not on this node's ledger, or was not issued by this node.
    LicenceNotFound,
    /// 404: no such route.
    NotFound,
    /// 405: a wrong method on an existing path.
    MethodNotAllowed,
    /// 409: suspend of a licence that is not active, reinstate of one not suspended.
    WrongStatus,
    /// 409: any change to a revoked licence.
    AlreadyRevoked,
    /// 409: the licence id is already issued.
    DuplicateIssue,
    /// 409: no card for a suspended licence.
    LicenceSuspended,
    /// 409: no card for a revoked licence.
    LicenceRevoked,
    /// 409: no card for an expired licence.
    LicenceExpired,
    /// 422: the request breaks the licence type's rules in genesis or the credential's
    /// bounds (type not defined, a required holder field missing, a bad field).
    InvalidLicence,
    /// 422: `valid_until` not after `valid_from`, or longer than the type allows.
    BadValidity,
    /// 422: the credential is too long for a QR that fits the card at a printable size.
    CardQrTooDense,
    /// 429: the client address has used up its public requests.
    RateLimited,
    /// 500: a storage or internal failure; the detail is in the node's log only.
    Internal,
    /// 503: the block producer's queue is full, or the node is stopping.
    Unavailable,
    /// 503: the node does not yet know how far its own chain went; it signs nothing
    /// until it has caught up.
    CatchingUp,
    /// 503: issuing stopped after a failed flush (the state on disk is unknown); restart
    /// the node and run `huren-node check`.
    ProducerStopped,
    /// 503: the node's clock reads earlier than its own chain's newest block (set back,
    /// or it ran ahead before); it signs nothing until the clock has caught up.
    ClockBehind,
    /// 400: a submitted governance block is not hex, or not a governance block.
    BadGovBlock,
    /// 409: the governance record does not apply; `reason` says why (`no_quorum`,
    /// `not_on_head`, `not_a_voter`, `bad_signature`, `retired`…).
    GovRefused,
    /// 409: a different record with a quorum at a governance height held: the
    /// departments that signed both are proven to have equivocated (evidence kept).
    GovEquivocation,
    /// 403: this node's department has retired (a governance record): it issues and
    /// changes nothing any more; its successor, if any, acts for its licences.
    DepartmentRetired,
    /// 409: any change to a licence transferred out (it lives on under its new id).
    AlreadyTransferred,
    /// 409: the transfer does not match: a target in the same region or not granted the type, an origin not transferred to this department (as this node holds its chain), or already transferred in.
    BadTransfer,
    /// 409: nothing to annul: the licence is not revoked or suspended by a record this department can annul.
    AnnulMismatch,
    /// 422: a suspension's `until` is not after now.
    BadSuspension,
    /// 409: renew, reissue and amend start from the credential in force, which this node does not hold (the licence was issued elsewhere).
    NoCredential,
    /// 503: the network runs a newer protocol version than this node: upgrade it; it signs nothing until then.
    ProtocolTooOld,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 44] = [
        Self::MalformedBody,
        Self::InvalidBody,
        Self::UnsupportedMediaType,
        Self::BodyTooLarge,
        Self::BatchTooLarge,
        Self::BadLicenceId,
        Self::BadLicenceType,
        Self::BadTime,
        Self::MissingImage,
        Self::BadQuery,
        Self::Unauthorized,
        Self::ObserverNode,
        Self::InsufficientScope,
        Self::OtherDepartment,
        Self::TypeNotGranted,
        Self::ForeignLicence,
        Self::LicenceNotFound,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::WrongStatus,
        Self::AlreadyRevoked,
        Self::DuplicateIssue,
        Self::LicenceSuspended,
        Self::LicenceRevoked,
        Self::LicenceExpired,
        Self::InvalidLicence,
        Self::BadValidity,
        Self::CardQrTooDense,
        Self::RateLimited,
        Self::Internal,
        Self::Unavailable,
        Self::CatchingUp,
        Self::ProducerStopped,
        Self::ClockBehind,
        Self::BadGovBlock,
        Self::GovRefused,
        Self::GovEquivocation,
        Self::DepartmentRetired,
        Self::AlreadyTransferred,
        Self::BadTransfer,
        Self::AnnulMismatch,
        Self::BadSuspension,
        Self::NoCredential,
        Self::ProtocolTooOld,
    ];

    /// The HTTP status this code is always answered with.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::MalformedBody
            | Self::BadLicenceId
            | Self::BadLicenceType
            | Self::BadTime
            | Self::MissingImage
            | Self::BadQuery
            | Self::BadGovBlock => 400,
            Self::Unauthorized => 401,
            Self::ObserverNode
            | Self::InsufficientScope
            | Self::OtherDepartment
            | Self::TypeNotGranted
            | Self::ForeignLicence
            | Self::DepartmentRetired => 403,
            Self::LicenceNotFound | Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::WrongStatus
            | Self::AlreadyRevoked
            | Self::DuplicateIssue
            | Self::LicenceSuspended
            | Self::LicenceRevoked
            | Self::LicenceExpired
            | Self::GovRefused
            | Self::GovEquivocation
            | Self::AlreadyTransferred
            | Self::BadTransfer
            | Self::AnnulMismatch
            | Self::NoCredential => 409,
            Self::BodyTooLarge | Self::BatchTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::InvalidBody
            | Self::InvalidLicence
            | Self::BadValidity
            | Self::CardQrTooDense
            | Self::BadSuspension => 422,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::Unavailable
            | Self::CatchingUp
            | Self::ProducerStopped
            | Self::ClockBehind
            | Self::ProtocolTooOld => 503,
        }
    }

    /// The code as it appears on the wire, e.g. `licence_not_found`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedBody => "malformed_body",
            Self::InvalidBody => "invalid_body",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::BodyTooLarge => "body_too_large",
            Self::BatchTooLarge => "batch_too_large",
            Self::BadLicenceId => "bad_licence_id",
            Self::BadLicenceType => "bad_licence_type",
            Self::BadTime => "bad_time",
            Self::MissingImage => "missing_image",
            Self::BadQuery => "bad_query",
            Self::Unauthorized => "unauthorized",
            Self::ObserverNode => "observer_node",
            Self::InsufficientScope => "insufficient_scope",
            Self::OtherDepartment => "other_department",
            Self::TypeNotGranted => "type_not_granted",
            Self::ForeignLicence => "foreign_licence",
            Self::LicenceNotFound => "licence_not_found",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::WrongStatus => "wrong_status",
            Self::AlreadyRevoked => "already_revoked",
            Self::DuplicateIssue => "duplicate_issue",
            Self::LicenceSuspended => "licence_suspended",
            Self::LicenceRevoked => "licence_revoked",
            Self::LicenceExpired => "licence_expired",
            Self::InvalidLicence => "invalid_licence",
            Self::BadValidity => "bad_validity",
            Self::CardQrTooDense => "card_qr_too_dense",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::CatchingUp => "catching_up",
            Self::ProducerStopped => "producer_stopped",
            Self::ClockBehind => "clock_behind",
            Self::BadGovBlock => "bad_gov_block",
            Self::GovRefused => "gov_refused",
            Self::GovEquivocation => "gov_equivocation",
            Self::DepartmentRetired => "department_retired",
            Self::AlreadyTransferred => "already_transferred",
            Self::BadTransfer => "bad_transfer",
            Self::AnnulMismatch => "annul_mismatch",
            Self::BadSuspension => "bad_suspension",
            Self::NoCredential => "no_credential",
            Self::ProtocolTooOld => "protocol_too_old",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// Why, as a stable code under `code`, where a code has several causes
    /// (`gov_refused`: `no_quorum`, `not_on_head`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ErrorDetail {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
        }
    }
}

impl std::fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/api.md's table of codes names every code the node answers, with its status.
    #[test]
    fn every_code_is_in_the_documented_table() {
        let doc = include_str!("../../docs/api.md");
        for code in ErrorCode::ALL {
            // A row of the table: the code (or codes) in its first cell.
            let row = doc
                .lines()
                .find(|l| {
                    l.split('|')
                        .nth(1)
                        .is_some_and(|c| c.contains(&format!("`{}`", code.as_str())))
                })
                .unwrap_or_else(|| panic!("docs/api.md has no row for `{code}`"));
            assert!(
                row.contains(&format!("| {} |", code.http_status())),
                "docs/api.md gives `{code}` another status: {row}"
            );
        }
    }

    #[test]
    fn every_code_serialises_as_its_name_and_has_an_error_status() {
        let mut names = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).expect("json");
            assert_eq!(json, code.as_str());
            assert_eq!(
                serde_json::from_value::<ErrorCode>(json).expect("parse"),
                code
            );
            assert!((400..600).contains(&code.http_status()), "{code}");
            assert!(names.insert(code.as_str()), "{code} twice");
        }
    }

    #[test]
    fn an_unknown_code_does_not_parse() {
        let body = r#"{"error":{"code":"missing_holder_field","message":"x"}}"#;
        assert!(serde_json::from_str::<ErrorBody>(body).is_err());
        let body = r#"{"error":{"code":"licence_not_found","message":"no such licence"}}"#;
        let parsed: ErrorBody = serde_json::from_str(body).expect("parse");
        assert_eq!(parsed.error.code, ErrorCode::LicenceNotFound);
        assert_eq!(
            parsed.error.to_string(),
            "licence_not_found: no such licence"
        );
    }
}
