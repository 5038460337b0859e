//! The app-hosting domain: typed model, pure plan, reconciler, images and
//! labels, logs, operational state and the app RPCs.

pub mod images;
pub mod logs;
pub mod model;
pub mod plan;
