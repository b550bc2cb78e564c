//! auth_schema queries (diesel-async), by concern. Each function takes a connection, so a
//! caller can run several in one transaction.

mod admin;
mod audit;
mod email_tokens;
mod sessions;
mod users;

pub use admin::*;
pub use audit::*;
pub use email_tokens::*;
pub use sessions::*;
pub use users::*;
