//! Training the model of `model.rs` from labelled messages: deterministic (fixed order,
//! fixed seed, no threads), so the same inputs always give the same weights. Pure: callers
//! read the files (`cusp train`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::classify::signals;
use super::model::{MAGIC, MAX_REPEAT, Model, OUTPUTS, SCALE, Sink, extract};
use super::{Engine, Theme};

/// One labelled message (the fields of the JSON Lines files `cusp eval` reads).
#[derive(Debug, Clone)]
pub struct Example {
    pub text: String,
    pub is_deal_update: bool,
    pub themes: Vec<Theme>,
}

/// How to train. Written into the model file as `param` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: u32,
    /// AdaGrad base learning rate.
    pub rate: f64,
    /// L2 penalty per update.
    pub l2: f64,
    /// A word feature is kept when it occurs in at least this many messages.
    pub min_count: u32,
    /// Probability at which a theme fires.
    pub threshold: f64,
    /// Probability at which a message is a deal update: higher than the themes', because a
    /// false alarm (a team post nudged as a deal) costs more than a miss.
    pub deal_threshold: f64,
    /// Probability a theme needs when the lexicon found no cue of it.
    pub bare_threshold: f64,
    /// Below this probability a theme the lexicon fires on is dropped.
    pub veto_threshold: f64,
    /// Weight of a positive example for the themes (they are rare).
    pub positive_weight: f64,
    /// Seeds the order of each pass.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            rate: 0.1,
            l2: 3e-3,
            min_count: 2,
            threshold: 0.25,
            deal_threshold: 0.4,
            bare_threshold: 0.6,
            veto_threshold: 0.1,
            positive_weight: 3.0,
            seed: 11,
        }
    }
}

impl TrainConfig {
    fn params(&self) -> Vec<String> {
        vec![
            format!("param epochs {}", self.epochs),
            format!("param rate {}", self.rate),
            format!("param l2 {}", self.l2),
            format!("param min_count {}", self.min_count),
            format!("param threshold {}", self.threshold),
            format!("param deal_threshold {}", self.deal_threshold),
            format!("param bare_threshold {}", self.bare_threshold),
            format!("param veto_threshold {}", self.veto_threshold),
            format!("param positive_weight {}", self.positive_weight),
            format!("param seed {}", self.seed),
        ]
    }

    /// The configuration recorded in a model file's `param` lines.
    pub fn from_model_text(src: &str) -> Option<TrainConfig> {
        let mut c = TrainConfig::default();
        let mut seen = 0;
        for l in src.lines().filter_map(|l| l.strip_prefix("param ")) {
            let (k, v) = l.split_once(' ')?;
            match k {
                "epochs" => c.epochs = v.parse().ok()?,
                "rate" => c.rate = v.parse().ok()?,
                "l2" => c.l2 = v.parse().ok()?,
                "min_count" => c.min_count = v.parse().ok()?,
                "threshold" => c.threshold = v.parse().ok()?,
                "deal_threshold" => c.deal_threshold = v.parse().ok()?,
                "bare_threshold" => c.bare_threshold = v.parse().ok()?,
                "veto_threshold" => c.veto_threshold = v.parse().ok()?,
                "positive_weight" => c.positive_weight = v.parse().ok()?,
                "seed" => c.seed = v.parse().ok()?,
                _ => return None,
            }
            seen += 1;
        }
        (seen == 10).then_some(c)
    }
}

/// The `input` lines of a model file: (path as given, sha256 of its contents).
pub fn inputs_of_model_text(src: &str) -> Vec<(String, String)> {
    src.lines()
        .filter_map(|l| l.strip_prefix("input "))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(p, h)| (p.to_string(), h.to_string()))
        .collect()
}

struct Names(Vec<(String, f32)>);

impl Sink for Names {
    fn emit(&mut self, parts: &[&str], value: f32, _span: Option<(usize, usize)>) {
        self.0.push((parts.concat(), value));
    }
}

/// splitmix64: a tiny, well-mixed generator for the pass order.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Trains a model and returns it in the text format of `model.txt`. `inputs` are recorded
/// as `input` lines (path, sha256) so a test can check the weights are current.
pub fn train(examples: &[Example], inputs: &[(String, String)], cfg: &TrainConfig) -> String {
    let model = fit(examples, inputs, cfg);
    model.to_text()
}

/// An engine using a model trained on `examples` (for cross-validation).
pub fn engine_trained_on(examples: &[Example], cfg: &TrainConfig) -> Engine {
    Engine::lexicon_only().with_model(Some(Arc::new(fit(examples, &[], cfg))))
}

// The outputs index several parallel arrays (scores, gradients, weights): plain index
// loops say that best.
#[allow(clippy::needless_range_loop)]
fn fit(examples: &[Example], inputs: &[(String, String)], cfg: &TrainConfig) -> Model {
    // Features come from the lexicon alone: the model learns on top of it.
    let lexicon = Engine::lexicon_only();
    let featured: Vec<Vec<(String, f32)>> = examples
        .iter()
        .map(|e| {
            let sig = signals(&lexicon.inner, &e.text);
            let mut names = Names(Vec::new());
            extract(&sig, &mut names);
            // A repeated feature adds up to `MAX_REPEAT` (as `Model::score` does).
            let mut seen: BTreeMap<String, f32> = BTreeMap::new();
            for (n, v) in names.0 {
                let e = seen.entry(n).or_insert(0.0);
                *e = (*e + v).min(MAX_REPEAT);
            }
            seen.into_iter().collect()
        })
        .collect();
    let mut df: BTreeMap<&str, u32> = BTreeMap::new();
    for f in &featured {
        for (n, _) in f {
            *df.entry(n.as_str()).or_default() += 1;
        }
    }
    // Word features need support; lexicon and shape features (upper-case prefixes, `len:`,
    // `q:`) are few and always kept.
    let is_word = |n: &str| {
        ["w:", "b:", "n:", "s:", "t:"]
            .iter()
            .any(|p| n.starts_with(p))
    };
    let vocab: Vec<&str> = df
        .iter()
        .filter(|(n, c)| !is_word(n) || **c >= cfg.min_count)
        .map(|(n, _)| *n)
        .collect();
    let row: BTreeMap<&str, usize> = vocab.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let data: Vec<Vec<(usize, f64)>> = featured
        .iter()
        .map(|f| {
            f.iter()
                .filter_map(|(n, v)| row.get(n.as_str()).map(|r| (*r, f64::from(*v))))
                .collect()
        })
        .collect();
    let labels: Vec<[bool; OUTPUTS]> = examples
        .iter()
        .map(|e| {
            let mut y = [false; OUTPUTS];
            y[0] = e.is_deal_update;
            for (k, t) in Theme::ALL.iter().enumerate() {
                y[k + 1] = e.themes.contains(t);
            }
            y
        })
        .collect();

    let k_out = OUTPUTS;
    let mut w = vec![0.0f64; vocab.len() * k_out];
    let mut g2 = vec![0.0f64; vocab.len() * k_out];
    let mut b = [0.0f64; OUTPUTS];
    let mut gb = [0.0f64; OUTPUTS];
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut rng = cfg.seed;
    for _ in 0..cfg.epochs {
        // Fisher-Yates with the fixed generator: the same order on every machine.
        for i in (1..order.len()).rev() {
            let j = (splitmix(&mut rng) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        for &i in &order {
            let x = &data[i];
            let y = &labels[i];
            let mut z = b;
            for (r, v) in x {
                for k in 0..k_out {
                    z[k] += v * w[r * k_out + k];
                }
            }
            let mut g = [0.0f64; OUTPUTS];
            for k in 0..k_out {
                let p = 1.0 / (1.0 + (-z[k]).exp());
                let target = if y[k] { 1.0 } else { 0.0 };
                let weight = if y[k] && k > 0 {
                    cfg.positive_weight
                } else {
                    1.0
                };
                g[k] = (p - target) * weight;
            }
            for (r, v) in x {
                for k in 0..k_out {
                    let idx = r * k_out + k;
                    let grad = g[k] * v + cfg.l2 * w[idx];
                    g2[idx] += grad * grad;
                    w[idx] -= cfg.rate * grad / (g2[idx].sqrt() + 1e-8);
                }
            }
            for k in 0..k_out {
                gb[k] += g[k] * g[k];
                b[k] -= cfg.rate * g[k] / (gb[k].sqrt() + 1e-8);
            }
        }
    }

    // Quantise as stored, and drop features whose every weight rounds to zero.
    let quant = |v: f64| (v * f64::from(SCALE)).round() as f32 / SCALE;
    let mut names = Vec::new();
    let mut weights = Vec::new();
    for (i, n) in vocab.iter().enumerate() {
        let ws: Vec<f32> = w[i * k_out..(i + 1) * k_out]
            .iter()
            .map(|v| quant(*v))
            .collect();
        if ws.iter().any(|v| *v != 0.0) {
            names.push((*n).to_string());
            weights.extend(ws);
        }
    }
    let bias = b.map(quant);
    let mut thresholds = [quant(cfg.threshold); OUTPUTS];
    thresholds[0] = quant(cfg.deal_threshold);
    let mut header = cfg.params();
    for (path, sha) in inputs {
        header.push(format!("input {path} {sha}"));
    }
    debug_assert!(MAGIC.starts_with("cusp-model"));
    Model::new(
        header,
        names,
        weights,
        bias,
        thresholds,
        quant(cfg.bare_threshold),
        quant(cfg.veto_threshold),
    )
}
