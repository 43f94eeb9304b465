//! TEMPORARY STUB until the engine branch lands.
use crate::engine::Engine;
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("stub")]
    Stub,
}
pub fn run(
    _engine: &Engine,
    _path: &std::path::Path,
    _json: bool,
    _out: &mut dyn std::io::Write,
) -> Result<(), EvalError> {
    Err(EvalError::Stub)
}
