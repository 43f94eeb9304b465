//! TEMPORARY wiring for the engine branch; the lead replaces it with the clap CLI.
use std::io::IsTerminal;

use cusp::engine::Engine;
use cusp::reflect::ReflectMode;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let engine = match std::env::var("CUSP_LEXICON") {
        Ok(path) => match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|s| Engine::from_lexicon(&s).map_err(|e| e.to_string()))
        {
            Ok(e) => e,
            Err(e) => {
                eprintln!("CUSP_LEXICON {path}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        },
        Err(_) => Engine::builtin(),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let res: Result<(), String> = match args.first().map(String::as_str) {
        Some("eval") => {
            let json = args.iter().any(|a| a == "--json");
            match args.iter().skip(1).find(|a| !a.starts_with("--")) {
                Some(p) => cusp::eval::run(&engine, std::path::Path::new(p), json, &mut out)
                    .map_err(|e| e.to_string()),
                None => Err("usage: cusp eval FILE.jsonl [--json]".into()),
            }
        }
        Some("reflect") => {
            let mode = if args.iter().any(|a| a == "--jsonl") {
                ReflectMode::Jsonl
            } else if args.iter().any(|a| a == "--json") {
                ReflectMode::Json
            } else {
                ReflectMode::Text
            };
            let text = args.iter().skip(1).find(|a| !a.starts_with("--")).cloned();
            let stdin = std::io::stdin();
            if text.is_none() && stdin.is_terminal() {
                Err("no text: pass it as an argument or pipe it in".into())
            } else {
                cusp::reflect::run(&engine, text, mode, &mut stdin.lock(), &mut out)
                    .map_err(|e| e.to_string())
            }
        }
        _ => Err(
            "usage: cusp reflect [--json|--jsonl] [TEXT] | cusp eval FILE.jsonl [--json]".into(),
        ),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
