//! The app-hosting domain: typed model, pure plan, reconciler, images and
//! labels, logs, operational state and the app RPCs.

pub mod images;
pub mod logs;
pub mod model;
pub mod plan;
pub mod reconcile;

pub mod fake;

pub use reconcile::{
    become_subreaper, AppEvent, AppState, Apphost, ApphostConfig, ApphostError, Status,
};
