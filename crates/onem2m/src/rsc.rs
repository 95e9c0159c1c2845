//! Response status codes (oneM2M TS-0004 §6.6) and their HTTP mapping (TS-0009 §6.3.2).

use http::StatusCode;

macro_rules! rsc_enum {
    ($( $name:ident = $code:literal => $http:ident, $text:literal; )*) => {
        /// A oneM2M response status code (`rsc`), with the numeric value of TS-0004.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Rsc {
            $( #[doc = $text] $name, )*
        }

        impl Rsc {
            /// Every code this crate knows.
            pub const ALL: &'static [Rsc] = &[$(Rsc::$name,)*];

            /// The numeric value carried in `X-M2M-RSC` / `rsc`.
            pub const fn code(self) -> u16 {
                match self { $( Rsc::$name => $code, )* }
            }

            /// The code for a numeric value, if known.
            pub const fn from_code(code: u16) -> Option<Rsc> {
                match code { $( $code => Some(Rsc::$name), )* _ => None }
            }

            /// The HTTP status line that carries this code (TS-0009 table 6.3.2-1).
            pub fn http_status(self) -> StatusCode {
                match self { $( Rsc::$name => StatusCode::$http, )* }
            }

            /// A short English description.
            pub const fn text(self) -> &'static str {
                match self { $( Rsc::$name => $text, )* }
            }
        }
    };
}

rsc_enum! {
    Accepted = 1000 => ACCEPTED, "accepted";
    AcceptedNonBlockingSync = 1001 => ACCEPTED, "accepted for non-blocking request (synchronous)";
    AcceptedNonBlockingAsync = 1002 => ACCEPTED, "accepted for non-blocking request (asynchronous)";
    Ok = 2000 => OK, "OK";
    Created = 2001 => CREATED, "created";
    Deleted = 2002 => OK, "deleted";
    Updated = 2004 => OK, "updated";
    BadRequest = 4000 => BAD_REQUEST, "bad request";
    ReleaseVersionNotSupported = 4001 => NOT_IMPLEMENTED, "release version not supported";
    NotFound = 4004 => NOT_FOUND, "not found";
    OperationNotAllowed = 4005 => METHOD_NOT_ALLOWED, "operation not allowed";
    RequestTimeout = 4008 => GATEWAY_TIMEOUT, "request timeout";
    UnsupportedMediaType = 4015 => UNSUPPORTED_MEDIA_TYPE, "unsupported media type";
    SubscriptionCreatorHasNoPrivilege = 4101 => FORBIDDEN, "subscription creator has no privilege";
    ContentsUnacceptable = 4102 => BAD_REQUEST, "contents unacceptable";
    OriginatorHasNoPrivilege = 4103 => FORBIDDEN, "originator has no privilege";
    Conflict = 4105 => CONFLICT, "conflict";
    SecurityAssociationRequired = 4107 => FORBIDDEN, "security association required";
    InvalidChildResourceType = 4108 => FORBIDDEN, "invalid child resource type";
    GroupMemberTypeInconsistent = 4110 => BAD_REQUEST, "group member type inconsistent";
    OriginatorHasAlreadyRegistered = 4117 => FORBIDDEN, "originator has already registered";
    AppRuleValidationFailed = 4126 => FORBIDDEN, "app rule validation failed";
    InternalServerError = 5000 => INTERNAL_SERVER_ERROR, "internal server error";
    NotImplemented = 5001 => NOT_IMPLEMENTED, "not implemented";
    TargetNotReachable = 5103 => NOT_FOUND, "target not reachable";
    ReceiverHasNoPrivileges = 5105 => FORBIDDEN, "receiver has no privileges";
    AlreadyExists = 5106 => CONFLICT, "already exists";
    TargetNotSubscribable = 5203 => FORBIDDEN, "target not subscribable";
    SubscriptionVerificationInitiationFailed = 5204 => INTERNAL_SERVER_ERROR, "subscription verification initiation failed";
    SubscriptionHostHasNoPrivilege = 5205 => FORBIDDEN, "subscription host has no privilege";
    NotAcceptable = 5207 => NOT_ACCEPTABLE, "not acceptable";
    MaxNumberOfMemberExceeded = 6010 => BAD_REQUEST, "max number of member exceeded";
    InvalidArguments = 6023 => BAD_REQUEST, "invalid arguments";
    InsufficientArguments = 6024 => BAD_REQUEST, "insufficient arguments";
}

impl Rsc {
    /// True for 1xxx and 2xxx codes.
    pub const fn is_success(self) -> bool {
        self.code() < 4000
    }
}

impl std::fmt::Display for Rsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code(), self.text())
    }
}
