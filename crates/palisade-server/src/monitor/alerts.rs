//! Alert evaluation (filled in below).

use super::pipeline::Point;
use crate::AppState;

/// The alert evaluator.
#[derive(Debug, Default)]
pub struct AlertEngine {}

impl AlertEngine {
    /// Evaluates stored points.
    pub async fn observe(&self, _state: &AppState, _points: &[Point]) {}
}
