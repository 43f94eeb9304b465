//! TEMPORARY STUB until the engine branch lands.
use crate::engine::Engine;
pub enum ReflectMode {
    Text,
    Json,
    Jsonl,
}
#[derive(Debug, thiserror::Error)]
pub enum ReflectError {
    #[error("stub")]
    Stub,
}
pub fn run(
    _engine: &Engine,
    _text: Option<String>,
    _mode: ReflectMode,
    _input: &mut dyn std::io::BufRead,
    _out: &mut dyn std::io::Write,
) -> Result<(), ReflectError> {
    Err(ReflectError::Stub)
}
