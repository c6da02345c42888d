//! Exit codes, in one leaf module every error type can name without importing
//! the others.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success, including "up to date" |
//! | 1 | the deployment failed |
//! | 2 | invalid input or usage |
//! | 3 | credentials or permissions |
//! | 4 | refused: the change would replace or delete data, or only part of a retained stage's data survived |
//! | 5 | AWS or the network failed transiently, after every retry; re-running the same command resumes |

pub const DEPLOY_FAILED: u8 = 1;
pub const INVALID_INPUT: u8 = 2;
pub const CREDENTIALS: u8 = 3;
pub const REFUSED_DATA: u8 = 4;
pub const TRANSIENT: u8 = 5;
